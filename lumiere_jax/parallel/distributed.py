"""Multi-host start-up: `jax.distributed.initialize` from flags or the environment.

Every process of a multi-controller run executes the same program. Call `initialize` before
anything touches a JAX backend:

* explicit: `--coordinator_address=HOST:PORT --num_processes=N --process_id=I` (any cluster, or
  several processes on one machine; `launch/local.sh`);
* automatic (no flags): on a Cloud TPU VM and under SLURM with more than one task, JAX reads the
  cluster from the environment (`jax.distributed.initialize()` without arguments);
* otherwise: a single process, nothing to do.
"""

from __future__ import annotations

import glob
import logging
import os

import jax

log = logging.getLogger(__name__)


def detect_cluster(environ=os.environ) -> str | None:
    """'slurm' (a SLURM job step with several tasks), 'tpu' (a Cloud TPU VM) or None."""
    if int(environ.get("SLURM_NTASKS", environ.get("SLURM_NPROCS", "1")) or 1) > 1 and "SLURM_JOB_ID" in environ:
        return "slurm"
    if environ.get("TPU_WORKER_HOSTNAMES") or environ.get("TPU_ACCELERATOR_TYPE") or glob.glob("/dev/accel[0-9]*"):
        return "tpu"
    return None


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    mode: str = "auto",
) -> bool:
    """Start the multi-controller runtime; True if it was started.

    mode: "auto" (explicit arguments, else cluster detection, else single process), "on" (always
    call `jax.distributed.initialize`, letting JAX detect the cluster), "off" (never)."""
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"distributed mode must be auto, on or off, got {mode!r}")
    explicit = [coordinator_address, num_processes, process_id]
    if mode == "off":
        if any(v is not None for v in explicit):
            raise ValueError("--distributed=off contradicts --coordinator_address/--num_processes/--process_id")
        return False
    if any(v is not None for v in explicit):
        if any(v is None for v in explicit):
            raise ValueError(
                "multi-process: give all of --coordinator_address, --num_processes and --process_id "
                f"(got {coordinator_address!r}, {num_processes!r}, {process_id!r})"
            )
        if not 0 <= process_id < num_processes:
            raise ValueError(f"--process_id={process_id} must be in [0, --num_processes={num_processes})")
        jax.distributed.initialize(
            coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
        )
    elif mode == "on" or detect_cluster():
        jax.distributed.initialize()
    else:
        return False
    log.info(
        "process %d of %d, %d local / %d global devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )
    return True
