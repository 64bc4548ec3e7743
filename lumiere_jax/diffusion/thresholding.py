"""Clamping of x0 predictions: Imagen dynamic thresholding and static clipping."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def dynamic_threshold(x0: jax.Array, ratio: float = 0.995, max_value: float = 1.0) -> jax.Array:
    """Imagen dynamic thresholding, as diffusers' ``_threshold_sample``.

    Per example, s = clip(quantile(|x0|, ratio), 1, max_value) over all non-batch dims
    (linear interpolation, like ``torch.quantile``); returns clip(x0, -s, s) / s.
    """
    flat = x0.reshape(x0.shape[0], -1).astype(jnp.float32)
    s = jnp.quantile(jnp.abs(flat), ratio, axis=1, keepdims=True)
    s = jnp.clip(s, 1.0, max_value)
    return (jnp.clip(flat, -s, s) / s).reshape(x0.shape).astype(x0.dtype)


def static_clip(x0: jax.Array, clip_range: float = 1.0) -> jax.Array:
    """Clamps x0 to [-clip_range, clip_range] (diffusers' ``clip_sample``)."""
    return jnp.clip(x0, -clip_range, clip_range)
