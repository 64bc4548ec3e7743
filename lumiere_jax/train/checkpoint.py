"""Checkpoints: orbax `CheckpointManager` for training state, plus inference exports.

Training checkpoints live in ``<workdir>/checkpoints/<step>/{state,config}``: the
full `TrainState` and the run's config as JSON; async saves, the last `keep`
retained. An incomplete save (process killed mid-write) is never picked up: orbax
only lists finalised steps.

An *export* is a directory ``{params/, config.json}`` with EMA parameters only
(optionally bf16) and the config, which is all sampling needs.
"""
from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"


class Checkpointer:
    def __init__(self, workdir: str, keep: int = 3, async_save: bool = True):
        self.directory = os.path.abspath(os.path.join(workdir, CHECKPOINT_DIR))
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save, create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, config: dict) -> None:
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                        config=ocp.args.JsonSave(config)), force=True)

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
        """Restore into the structure/shardings of `abstract_state` (e.g. `jax.eval_shape`)."""
        r = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), config=ocp.args.JsonRestore()))
        return r["state"], r["config"]

    def restore_config(self, step: int) -> dict:
        return self.manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

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
    os.makedirs(path, exist_ok=True)
    cast = jax.tree_util.tree_map(lambda a: jnp.asarray(a).astype(jnp.dtype(dtype)), params)
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(os.path.join(path, "params"), cast)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({**config, "export_dtype": dtype}, f, indent=1, sort_keys=True)


def is_export(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "config.json")) and os.path.isdir(os.path.join(path, "params"))


def load(path: str) -> tuple[Any, dict]:
    """(params, config) from an export directory or a training workdir (latest
    checkpoint's EMA parameters). Parameters come back as float32."""
    path = os.path.abspath(path)
    if is_export(path):
        with ocp.StandardCheckpointer() as ckptr:
            params = ckptr.restore(os.path.join(path, "params"))
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
    elif os.path.isdir(os.path.join(path, CHECKPOINT_DIR)):
        ckpt = Checkpointer(path, async_save=False)
        step = ckpt.latest_step()
        if step is None:
            raise FileNotFoundError(f"workdir {path} has no finished checkpoint")
        restored = ckpt.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(), config=ocp.args.JsonRestore()))
        ckpt.close()
        params, config = restored["state"]["ema_params"], restored["config"]
    else:
        raise FileNotFoundError(f"{path} is neither an export (config.json + params/) nor a workdir "
                                f"with {CHECKPOINT_DIR}/")
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params), config
