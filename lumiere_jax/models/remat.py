"""Rematerialisation (gradient checkpointing) of the U-Net / STUNet blocks, chosen by name.

`config.model.remat` names a policy; every ResNet block, spatial attention block, temporal
convolution block and temporal attention block is then wrapped in `nn.remat` with it. Inside a
rematerialised block only what the policy saves is kept for the backward pass; the rest is
recomputed from the block's input. Parameter names and shapes are unchanged, so checkpoints
load whatever the policy.

  ``none``                              no rematerialisation (keep every activation)
  ``full``                              keep only block inputs; recompute everything inside
  ``dots_saveable``                     keep matmul (dot_general) outputs, recompute the rest
  ``dots_with_no_batch_dims_saveable``  keep matmuls without batch dims (dense layers; not attention
                                        logits), recompute the rest
  ``dots_and_convs_saveable``           keep matmul and convolution outputs (norms, activations and
                                        softmax are recomputed): the U-Net is mostly convolutions,
                                        which `dots_saveable` does not keep
  ``everything_saveable``               remat wrapper that keeps everything (for debugging)
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax


def _dots_and_convs(prim, *_, **__) -> bool:
    return prim.name in ("dot_general", "conv_general_dilated")


REMAT_POLICIES: dict[str, Callable | None] = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots_saveable": jax.checkpoint_policies.dots_saveable,
    "dots_with_no_batch_dims_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "dots_and_convs_saveable": _dots_and_convs,
    "everything_saveable": jax.checkpoint_policies.everything_saveable,
}


def check_policy(name: str) -> None:
    if name not in REMAT_POLICIES:
        raise ValueError(f"unknown remat policy {name!r} (config.model.remat); choose one of {tuple(REMAT_POLICIES)}")


def wrap(module_cls: type[nn.Module], policy: str, static_argnums: tuple[int, ...] = ()) -> type[nn.Module]:
    """`module_cls`, or its `nn.remat` version under `policy`. `static_argnums` index the
    module's `__call__` arguments with `self` as 0 (Python values such as `deterministic`
    must be passed positionally there)."""
    check_policy(policy)
    if policy == "none":
        return module_cls
    return nn.remat(module_cls, policy=REMAT_POLICIES[policy], prevent_cse=True, static_argnums=static_argnums)
