"""Checkpoints: orbax `CheckpointManager` for training state, plus inference exports.

Training checkpoints live in ``<workdir>/checkpoints/<step>/{state,config}``: the
full `TrainState` and the run's config as JSON; async saves, the last `keep`
retained. An incomplete save (process killed mid-write) is never picked up: orbax
only lists finalised steps.

An *export* is a directory ``{params/, config.json, checksums.json}`` with EMA parameters only
(optionally bf16) and the config, which is all sampling needs. ``checksums.json`` holds the
SHA-256 of every file the export wrote; `load` verifies it (one error naming the damaged file)
and checks the loaded parameters for non-finite values (naming the leaves). A training workdir
always loads its newest finished checkpoint, even if an export was written into it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

CHECKPOINT_DIR = "checkpoints"
CHECKSUMS = "checksums.json"
DAMAGED_DIR = "checkpoints_damaged"  # checkpoints that did not restore, set aside by a resuming run


class DamagedExportError(ValueError):
    """An export whose files do not match the checksums written with it, or whose parameters are
    not finite."""


@functools.cache
def _no_replica_parallel_saves_on_cpu() -> None:
    """On the CPU, orbax's replica-parallel save (each replica of a replicated array writes a slice
    of it, cut on its device) gains nothing (the devices are threads of one host) and costs a compiled
    slice per array shape and device: 162 small compiles, 1.7 s, at the first save of the tiny T2I
    state on 2 host devices. It is turned off there (orbax turns it off on GPUs itself): the handler
    orbax registers for `jax.Array`, without replica parallelism. Other orbax layouts keep theirs.
    Once a process (`functools.cache`)."""
    if jax.default_backend() != "cpu":
        return
    try:
        from orbax.checkpoint._src.metadata import array_metadata_store

        handler = ocp.type_handlers.ArrayHandler(
            array_metadata_store=array_metadata_store.Store(), use_replica_parallel=False
        )
    except (ImportError, AttributeError, TypeError):
        return
    ocp.type_handlers.register_type_handler(jax.Array, handler, override=True)


class Checkpointer:
    def __init__(self, workdir: str, keep: int = 3, async_save: bool = True):
        _no_replica_parallel_saves_on_cpu()
        self.directory = os.path.abspath(os.path.join(workdir, CHECKPOINT_DIR))
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save, create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, config: dict) -> None:
        self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config)),
            force=True,
        )

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restore into the structure/shardings of `abstract_state` (e.g. `jax.eval_shape`)."""
        r = self.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), config=ocp.args.JsonRestore())
        )
        return r["state"], r["config"]

    def restore_ema(self, step: int) -> Any:
        """The EMA parameters of checkpoint `step` only (numpy leaves): a partial restore of the saved
        state, without reading the optimiser state and the raw parameters (0.6 s against 2.9 s for
        the whole state of the 35 M-parameter conditional run; docs/performance.md)."""
        return _restore_numpy(os.path.join(self.directory, str(step), "state"), "ema_params")

    def restore_config(self, step: int) -> dict:
        return self.manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def set_aside(self, step: int) -> str:
        """Move the checkpoint of `step` out of the manager's sight (to <workdir>/checkpoints_damaged/,
        never deleted) so that training can go on past it; returns where it went."""
        self.manager.wait_until_finished()
        dest_dir = os.path.join(os.path.dirname(self.directory), DAMAGED_DIR)
        os.makedirs(dest_dir, exist_ok=True)
        dest = os.path.join(dest_dir, f"{step}_{int(time.time())}")
        os.rename(os.path.join(self.directory, str(step)), dest)
        self.manager.reload()
        return dest

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def export(path: str, params: Any, config: dict, dtype: str = "float32") -> None:
    """Write an inference-only export: `params` cast to `dtype`, and `config`."""
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"export dtype must be float32 or bfloat16, got {dtype!r}")
    path = os.path.abspath(path)
    if os.path.exists(os.path.join(path, "params")):
        raise FileExistsError(f"{path} already holds an export; choose another path or remove it")
    if os.path.isdir(os.path.join(path, CHECKPOINT_DIR)):
        raise FileExistsError(
            f"{path} is a training workdir (it has {CHECKPOINT_DIR}/): export elsewhere, e.g. "
            f"{os.path.join(path, 'export')}"
        )
    check_finite(params, f"the parameters to export to {path}")
    os.makedirs(path, exist_ok=True)
    # cast on the host (ml_dtypes' bfloat16 rounds to nearest even, as XLA's convert): an eager jnp cast
    # would compile one program per leaf shape
    cast = jax.tree_util.tree_map(lambda a: np.asarray(a).astype(jnp.dtype(dtype)), params)
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(os.path.join(path, "params"), cast)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({**config, "export_dtype": dtype}, f, indent=1, sort_keys=True)
    write_checksums(path)


def _files(path: str) -> list[str]:
    """The files of an export that its checksums cover (relative paths, sorted)."""
    out = ["config.json"]
    for root, _, files in os.walk(os.path.join(path, "params")):
        out += [os.path.relpath(os.path.join(root, f), path) for f in files]
    return sorted(out)


def _sha256(file: str) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_checksums(path: str) -> dict[str, str]:
    """Write <path>/checksums.json: the SHA-256 of the export's files (`tools/checksum_export.py`
    adds them to an export written before checksums existed)."""
    sums = {f: _sha256(os.path.join(path, f)) for f in _files(path)}
    tmp = os.path.join(path, CHECKSUMS + ".tmp")
    with open(tmp, "w") as f:
        json.dump(sums, f, indent=1, sort_keys=True)
    os.replace(tmp, os.path.join(path, CHECKSUMS))
    return sums


def verify_checksums(path: str) -> None:
    """Raise DamagedExportError naming the first file of the export at `path` that is missing, was
    added, or differs from its checksum; an export without checksums.json raises too."""
    file = os.path.join(path, CHECKSUMS)
    if not os.path.isfile(file):
        raise DamagedExportError(
            f"export {path} has no {CHECKSUMS}, so it cannot be verified; if you trust it, "
            f"add one with `python tools/checksum_export.py {path}`"
        )
    with open(file) as f:
        want = json.load(f)
    have = _files(path)
    for name in sorted(set(want) | set(have)):
        if name not in have:
            raise DamagedExportError(f"export {path} is damaged: {name} is missing")
        if name not in want:
            raise DamagedExportError(f"export {path} is damaged: {name} is not one of the files it was written with")
        if _sha256(os.path.join(path, name)) != want[name]:
            raise DamagedExportError(
                f"export {path} is damaged: {os.path.join(path, name)} does not match the "
                f"checksum written with it (re-export or restore the file)"
            )


def _restore_numpy(directory: str, key: str | None = None) -> Any:
    """The pytree saved in `directory` (or only its subtree `key`: a partial restore), numpy leaves
    of the stored dtypes, without first opening every array's metadata (`_saved_tree`)."""
    from etils import epath

    directory = epath.Path(directory)
    handler = ocp.PyTreeCheckpointHandler()
    tree = _saved_tree(directory, handler)
    if key is not None:
        if key not in tree:
            raise ValueError(f"checkpoint {directory} holds no {key} (it has {sorted(tree)})")
        tree = {key: tree[key]}
    target = jax.tree_util.tree_map(lambda _: np.zeros((), np.float32), tree)  # structure only
    restore_args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), target)
    with ocp.Checkpointer(handler) as ckptr:
        restored = ckptr.restore(
            directory,
            args=ocp.args.PyTreeRestore(item=target, restore_args=restore_args, partial_restore=key is not None),
        )
    return restored if key is None else restored[key]


def _saved_tree(state_dir, handler) -> dict:
    """The nested structure of the pytree saved in `state_dir` (leaves: per-leaf metadata). Read from
    its `_METADATA` file (about 0.1 s); orbax's public `metadata()` (the fallback, the same structure)
    also opens every array's metadata, about 1 s for the reference models' states."""
    try:
        return _tree_from_metadata_file(state_dir)
    except (ImportError, AttributeError, OSError, KeyError, TypeError, ValueError):  # another orbax layout
        return handler.metadata(state_dir).tree


def _tree_from_metadata_file(state_dir) -> dict:
    from orbax.checkpoint._src.metadata import tree as tree_metadata

    text = (state_dir / "_METADATA").read_text()
    return tree_metadata.InternalTreeMetadata.from_json(json.loads(text)).as_nested_tree()


def check_finite(params: Any, what: str) -> None:
    """Raise DamagedExportError naming the leaves of `params` that hold NaN or infinity."""
    bad = [
        jax.tree_util.keystr(k)
        for k, v in jax.tree_util.tree_leaves_with_path(params)
        if not np.isfinite(np.asarray(v, np.float32)).all()
    ]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DamagedExportError(f"{what}: non-finite values in {shown}")


def is_export(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "config.json")) and os.path.isdir(os.path.join(path, "params"))


def load(path: str) -> tuple[Any, dict]:
    """(params, config) from a training workdir (its newest finished checkpoint's EMA parameters;
    the step is logged) or an export directory (checksums verified). Parameters come back as
    float32 and are checked to be finite."""
    path = os.path.abspath(path)
    if os.path.isdir(os.path.join(path, CHECKPOINT_DIR)):
        ckpt = Checkpointer(path, async_save=False)
        step = ckpt.latest_step()
        if step is None:
            ckpt.close()
            raise FileNotFoundError(f"workdir {path} has no finished checkpoint")
        params, config = ckpt.restore_ema(step), ckpt.restore_config(step)
        ckpt.close()
        logging.info("loaded the EMA parameters of step %d from %s", step, ckpt.directory)
    elif is_export(path):
        verify_checksums(path)
        params = _restore_numpy(os.path.join(path, "params"))
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
    else:
        raise FileNotFoundError(
            f"{path} is neither an export (config.json + params/) nor a workdir with {CHECKPOINT_DIR}/"
        )
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params)
    check_finite(params, f"the parameters loaded from {path}")
    return params, config
