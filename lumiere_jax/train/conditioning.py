"""Training-time construction of a conditional model's inputs from a clean batch.

`ssr_inputs`: a super-resolution model learns to recover the clean high-resolution batch from its
own degraded copy: area down-sampled to `low_resolution`, up-sampled back, noise-augmented at a
random level (`noise_aug_max` bounds it). Video clips longer than the model's window are cropped
to a random window of `num_frames`; with `patch_size` > 0 a random square patch (the same for
sample and conditioning) is trained on instead of the whole frame.

`masked_inputs`: the conditional model (Lumiere §4.2) sees <C, M>, the clean video masked by a
random training mask (ones = known) and the mask itself.
"""
from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp

from lumiere_jax.diffusion import low_res
from lumiere_jax.diffusion.schedules import Schedule
from lumiere_jax.models.diffusion_model import DiffusionModelConfig
from lumiere_jax.train import masks as masks_lib


def _random_crop(key: jax.Array, xs: tuple[jax.Array, ...], axes: tuple[int, ...], sizes: tuple[int, ...]):
    """The same random crop (per example) of every array in `xs` along `axes` (batch is axis 0)."""
    batch = xs[0].shape[0]
    starts = [jax.random.randint(k, (batch,), 0, xs[0].shape[a] - s + 1)
              for k, a, s in zip(jax.random.split(key, len(axes)), axes, sizes)]

    def crop(x, *st):
        idx = [0] * x.ndim
        shape = list(x.shape)
        for a, s, st_a in zip(axes, sizes, st):
            idx[a - 1], shape[a - 1] = st_a, s
        return jax.lax.dynamic_slice(x, idx, shape)

    return tuple(jax.vmap(crop)(x, *starts) for x in xs)


def ssr_inputs(model_cfg: DiffusionModelConfig, sched: Schedule, ssr: Mapping[str, Any], x0: jax.Array,
               key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(x0 [B, (T,) H, W, 3] high-resolution) -> (target x0, conditioning, aug_level [B])."""
    k_win, k_lvl, k_aug, k_patch = jax.random.split(key, 4)
    size = model_cfg.resolution
    if x0.shape[-2] != size:
        raise ValueError(f"SSR training data has {x0.shape[-2]}px frames, the model's resolution is {size}")
    if model_cfg.kind == "video" and x0.shape[1] != model_cfg.num_frames:
        if x0.shape[1] < model_cfg.num_frames:
            raise ValueError(f"clips of {x0.shape[1]} frames are shorter than the SSR window "
                             f"model.num_frames={model_cfg.num_frames}")
        (x0,) = _random_crop(k_win, (x0,), (1,), (model_cfg.num_frames,))
    levels = low_res.random_levels(k_lvl, x0.shape[0], int(ssr["noise_aug_max"]))
    small = low_res.downsample(x0, model_cfg.low_resolution)
    cond = low_res.condition(sched, small, size, levels, k_aug, ssr["upsample"])
    patch = int(ssr["patch_size"])
    if patch:
        if patch > size:
            raise ValueError(f"ssr.patch_size={patch} exceeds the resolution {size}")
        h_axis = x0.ndim - 3
        x0, cond = _random_crop(k_patch, (x0, cond), (h_axis, h_axis + 1), (patch, patch))
    return x0, cond.astype(jnp.float32), levels


def masked_conditioning(known: jax.Array, mask: jax.Array) -> jax.Array:
    """<C, M> [..., 4]: C = known * M (unknown pixels zero, i.e. mid-grey in [-1, 1]), M in {0, 1}."""
    mask = mask.astype(jnp.float32)
    return jnp.concatenate([known.astype(jnp.float32) * mask, mask], axis=-1)


def masked_inputs(x0: jax.Array, key: jax.Array, mixture: Mapping[str, float]) -> jax.Array:
    """x0 [B, T, H, W, 3] -> <x0 * M, M> [B, T, H, W, 4], one mask kind per example from `mixture`."""
    b, t, h, w, _ = x0.shape
    m, _ = masks_lib.sample_masks(key, b, t, h, w, mixture)
    return masked_conditioning(x0, m)
