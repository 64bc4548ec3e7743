"""Start `tests.parallel.workers` in fresh processes with a given CPU device count; kill them
(SIGKILL: JAX catches SIGTERM) if they outlive the timeout, so no test leaves processes behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from tests.parallel.workers import ROOT


def worker_env(num_devices: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "force_host_platform_device_count" not in f]
    env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={num_devices}"])
    env.setdefault("LUMIERE_JAX_CACHE", os.path.join(ROOT, ".jax_cache"))
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run_workers(jobs: list[tuple[str, dict, int]], timeout: float = 900.0) -> None:
    """Run (worker name, args, device count) jobs concurrently; raise with their output if one
    fails or times out. All are killed (process group, SIGKILL) before this returns. Each worker writes
    to a file, not a pipe: a worker whose output outgrew a pipe read only after another worker's would
    block on its writes, and workers that meet in collectives would then wait on each other for ever
    (seen with JAX_LOG_COMPILES=1 in the two-process test)."""
    procs, logs = [], []
    try:
        for name, args, num_devices in jobs:
            logs.append(tempfile.TemporaryFile(mode="w+"))
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tests.parallel.workers", name, json.dumps(args)],
                    cwd=ROOT,
                    env=worker_env(num_devices),
                    stdout=logs[-1],
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + timeout
        for p in procs:
            p.wait(timeout=max(deadline - time.monotonic(), 0.0))
    except subprocess.TimeoutExpired:
        _kill(procs)
        raise AssertionError(f"workers {[j[0] for j in jobs]} did not finish in {timeout} s (killed)")
    finally:
        _kill(procs)
    for p, log, job in zip(procs, logs, jobs):
        log.seek(0)
        out = log.read()
        log.close()
        if p.returncode != 0:
            raise AssertionError(f"worker {job[0]} {job[1]} exited with {p.returncode}:\n{out[-6000:]}")


def _kill(procs) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
