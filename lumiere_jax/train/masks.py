"""Training masks of the conditional model (Lumiere §4.2): M [B, T, H, W, 1], ones = known content.

Kinds (each a pure function of a PRNG key, jit-friendly):
  ``i2v``          first frame known, the rest generated (image-to-video);
  ``inpaint``      everything known except one random box, the same box in every frame;
  ``outpaint``     a random centre rectangle known, the borders around it generated;
  ``cinemagraph``  first frame fully known; later frames known outside one random box;
  ``none``         nothing known (unconditional generation; also what classifier-free guidance
                   drops to).
`sample_masks` draws one kind per example from a configurable mixture. The conditioning video of
an example is ``C = x0 * M``.
"""
from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp

KINDS = ("i2v", "inpaint", "outpaint", "cinemagraph", "none")
DEFAULT_MIXTURE = {"i2v": 0.3, "inpaint": 0.2, "outpaint": 0.2, "cinemagraph": 0.1, "none": 0.2}


def _box(key: jax.Array, height: int, width: int, min_frac: float, max_frac: float) -> jax.Array:
    """[H, W] bool: one axis-aligned box with sides in [min_frac, max_frac] of the frame."""
    k_h, k_w, k_y, k_x = jax.random.split(key, 4)
    bh = jnp.round(jax.random.uniform(k_h, (), minval=min_frac, maxval=max_frac) * height).astype(jnp.int32)
    bw = jnp.round(jax.random.uniform(k_w, (), minval=min_frac, maxval=max_frac) * width).astype(jnp.int32)
    bh, bw = jnp.clip(bh, 1, height), jnp.clip(bw, 1, width)
    y0 = jax.random.randint(k_y, (), 0, height - bh + 1)
    x0 = jax.random.randint(k_x, (), 0, width - bw + 1)
    ys, xs = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
    return (ys >= y0) & (ys < y0 + bh) & (xs >= x0) & (xs < x0 + bw)


def mask(kind: str, key: jax.Array, num_frames: int, height: int, width: int) -> jax.Array:
    """One example's mask [T, H, W, 1] float32 of the given kind."""
    frames = jnp.arange(num_frames)[:, None, None]
    if kind == "i2v":
        m = jnp.broadcast_to(frames == 0, (num_frames, height, width))
    elif kind == "inpaint":
        m = jnp.broadcast_to(~_box(key, height, width, 0.25, 0.6), (num_frames, height, width))
    elif kind == "outpaint":
        m = jnp.broadcast_to(_box(key, height, width, 0.4, 0.8), (num_frames, height, width))
    elif kind == "cinemagraph":
        region = _box(key, height, width, 0.25, 0.6)
        m = (frames == 0) | ~region[None]
    elif kind == "none":
        m = jnp.zeros((num_frames, height, width), bool)
    else:
        raise ValueError(f"unknown mask kind {kind!r}; choose from {KINDS}")
    return m.astype(jnp.float32)[..., None]


def check_mixture(mixture: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(mixture) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown mask kinds {unknown} in the mixture; valid: {KINDS}")
    if any(w < 0 for w in mixture.values()) or sum(mixture.values()) <= 0:
        raise ValueError(f"mask mixture weights must be >= 0 with a positive sum, got {dict(mixture)}")
    return {k: float(mixture.get(k, 0.0)) for k in KINDS}


def sample_masks(key: jax.Array, batch: int, num_frames: int, height: int, width: int,
                 mixture: Mapping[str, float] = DEFAULT_MIXTURE) -> tuple[jax.Array, jax.Array]:
    """(masks [B, T, H, W, 1] float32, kind index [B] into KINDS), kinds drawn from `mixture`."""
    weights = check_mixture(mixture)
    probs = jnp.array([weights[k] for k in KINDS]) / sum(weights.values())
    k_kind, k_masks = jax.random.split(key)
    kinds = jax.random.choice(k_kind, len(KINDS), (batch,), p=probs)

    def one(k, kind):
        per_kind = jnp.stack([mask(name, k, num_frames, height, width) for name in KINDS])
        return per_kind[kind]

    return jax.vmap(one)(jax.random.split(k_masks, batch), kinds), kinds
