"""The low-resolution input of a spatial super-resolution (SSR) model.

Training degrades a high-resolution frame or video to `low_resolution` (area averaging), sampling
takes the base model's output; either way the low-resolution input is up-sampled to the output
size (bilinear) and noise-augmented at a timestep `aug_level` of the diffusion schedule (Imagen /
Video LDM §3.4 / DeepFloyd IF stage II: the model sees how noisy its conditioning is through an
extra embedding, which makes it robust to the base model's artefacts). All functions work on
channels-last arrays [..., H, W, C] with any leading dims.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lumiere_jax.diffusion import noising
from lumiere_jax.diffusion.schedules import Schedule

UPSAMPLE_METHODS = ("linear", "cubic", "nearest")


def _check_square(x: jax.Array, what: str) -> int:
    if x.ndim < 3 or x.shape[-3] != x.shape[-2]:
        raise ValueError(f"{what} must be square frames [..., H, W, C], got shape {x.shape}")
    return x.shape[-2]


def downsample(x: jax.Array, size: int) -> jax.Array:
    """[..., H, W, C] -> [..., size, size, C]: exact area (box) averaging when `size` divides H,
    anti-aliased linear resizing otherwise."""
    h = _check_square(x, "the high-resolution input")
    if size > h:
        raise ValueError(f"cannot down-sample {h}x{h} frames to a larger size {size}")
    if h % size == 0:
        f = h // size
        y = x.reshape(*x.shape[:-3], size, f, size, f, x.shape[-1])
        return y.astype(jnp.float32).mean(axis=(-4, -2))
    return jax.image.resize(x.astype(jnp.float32), (*x.shape[:-3], size, size, x.shape[-1]), "linear", antialias=True)


def upsample(x: jax.Array, size: int, method: str = "linear") -> jax.Array:
    """[..., h, w, C] -> [..., size, size, C] (bilinear by default, half-pixel centres)."""
    if method not in UPSAMPLE_METHODS:
        raise ValueError(f"upsample method must be one of {UPSAMPLE_METHODS}, got {method!r}")
    h = _check_square(x, "the low-resolution input")
    if size < h:
        raise ValueError(f"cannot up-sample {h}x{h} frames to a smaller size {size}")
    return jax.image.resize(x.astype(jnp.float32), (*x.shape[:-3], size, size, x.shape[-1]), method)


def augment(sched: Schedule, x: jax.Array, aug_level: jax.Array, key: jax.Array) -> jax.Array:
    """Forward-noise `x` [B, ...] to timesteps `aug_level` [B] (0 = almost clean)."""
    noise = jax.random.normal(key, x.shape, jnp.float32)
    return noising.add_noise(sched, x.astype(jnp.float32), noise, aug_level)


def condition(
    sched: Schedule, low_res: jax.Array, size: int, aug_level: jax.Array, key: jax.Array, method: str = "linear"
) -> jax.Array:
    """The SSR model's conditioning channels: `low_res` [B, ..., h, h, 3] in [-1, 1] up-sampled to
    `size` and noise-augmented at `aug_level` [B]."""
    return augment(sched, upsample(low_res, size, method), aug_level, key)


def random_levels(key: jax.Array, batch: int, max_level: int) -> jax.Array:
    """Training augmentation levels, uniform over the integers [0, max_level], int32 [batch]."""
    return jax.random.randint(key, (batch,), 0, max_level + 1, dtype=jnp.int32)
