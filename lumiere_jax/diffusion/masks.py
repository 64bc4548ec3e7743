"""Training masks of the conditional model (Lumiere §4.2): M [B, T, H, W, 1], ones = known content.

Kinds (each a pure function of a PRNG key, jit-friendly):
  ``i2v``          first frame known, the rest generated (image-to-video);
  ``inpaint``      everything known except one random box, the same box in every frame;
  ``strokes``      free-form inpainting (LaMa / DeepFill-style irregular holes): everything known
                   except the union of 1-4 thick random brush strokes, the same hole in every
                   frame (see `_strokes`);
  ``outpaint``     a random centre rectangle known, the borders around it generated;
  ``cinemagraph``  first frame fully known; later frames known outside one random box;
  ``none``         nothing known (unconditional generation; also what classifier-free guidance
                   drops to).
`sample_masks` draws one kind per example from a configurable mixture. The conditioning video of
an example is ``C = x0 * M``.
"""

from __future__ import annotations

from functools import partial
from typing import Mapping

import jax
import jax.numpy as jnp

from lumiere_jax import config as config_lib

KINDS = config_lib.MASK_KINDS
DEFAULT_MIXTURE = config_lib.DEFAULT_MASK_MIXTURE

# Brush strokes of the "strokes" kind; lengths are fractions of the frame's short side.
MAX_STROKES = 4  # 1..MAX_STROKES strokes per mask
MIN_SEGMENTS, MAX_SEGMENTS = 2, 5  # segments per stroke (a polyline)
SEGMENT_LENGTH = (0.1, 0.5)
BRUSH_RADIUS = (0.04, 0.12)
MIN_BRUSH_RADIUS_PX = 0.75  # > sqrt(2)/2: every stroke covers at least one pixel centre


@partial(jax.jit, static_argnums=(1, 2, 3, 4))
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


@partial(jax.jit, static_argnums=(1, 2))  # one compiled program, also when called eagerly
def _strokes(key: jax.Array, height: int, width: int) -> jax.Array:
    """[H, W] bool hole: pixels within the brush radius of any segment of 1-4 random polylines.

    Each stroke starts at a uniform random point of the frame and takes 2-5 segments of uniform
    random direction and length ``SEGMENT_LENGTH`` x the short side; every vertex is clipped to the
    frame (the next segment continues from the clipped vertex). A stroke's brush radius is uniform
    in ``BRUSH_RADIUS`` x the short side, at least ``MIN_BRUSH_RADIUS_PX``. Fixed-size arrays of
    ``MAX_STROKES`` x ``MAX_SEGMENTS`` segments with on/off flags keep it jit / vmap friendly; the
    pixel test is a vectorised point-to-segment distance at pixel centres. Should the union cover
    the whole frame (only possible on tiny frames), the first stroke alone is the hole.
    """
    side = float(min(height, width))
    k_n, k_seg, k_start, k_ang, k_len, k_rad = jax.random.split(key, 6)
    s, k = MAX_STROKES, MAX_SEGMENTS
    n_strokes = jax.random.randint(k_n, (), 1, MAX_STROKES + 1)
    n_segments = jax.random.randint(k_seg, (s,), MIN_SEGMENTS, MAX_SEGMENTS + 1)
    stroke_on = jnp.arange(s) < n_strokes  # [S]
    segment_on = stroke_on[:, None] & (jnp.arange(k)[None, :] < n_segments[:, None])  # [S, K]
    hi = jnp.array([height, width], jnp.float32)  # (y, x)
    start = jax.random.uniform(k_start, (s, 2)) * hi
    angle = jax.random.uniform(k_ang, (s, k), minval=0.0, maxval=2 * jnp.pi)
    length = jax.random.uniform(k_len, (s, k), minval=SEGMENT_LENGTH[0], maxval=SEGMENT_LENGTH[1]) * side
    step = length[..., None] * jnp.stack([jnp.sin(angle), jnp.cos(angle)], -1)  # [S, K, 2]
    radius = jnp.maximum(
        jax.random.uniform(k_rad, (s,), minval=BRUSH_RADIUS[0], maxval=BRUSH_RADIUS[1]) * side, MIN_BRUSH_RADIUS_PX
    )
    vertices = [start]
    for j in range(k):  # a fixed, tiny number of segments (not pixels)
        vertices.append(jnp.clip(vertices[-1] + step[:, j], 0.0, hi))
    vertices = jnp.stack(vertices, 1)  # [S, K+1, 2]
    a, b = vertices[:, :-1], vertices[:, 1:]  # [S, K, 2]
    ys, xs = jnp.meshgrid(jnp.arange(height) + 0.5, jnp.arange(width) + 0.5, indexing="ij")
    p = jnp.stack([ys, xs], -1)  # [H, W, 2]
    ab = (b - a)[:, :, None, None]  # [S, K, 1, 1, 2]
    ap = p[None, None] - a[:, :, None, None]  # [S, K, H, W, 2]
    t = jnp.clip(jnp.sum(ap * ab, -1) / jnp.maximum(jnp.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    dist2 = jnp.sum((ap - t[..., None] * ab) ** 2, -1)  # [S, K, H, W]
    covered = (dist2 <= radius[:, None, None, None] ** 2) & segment_on[:, :, None, None]
    per_stroke = covered.any(1)  # [S, H, W]
    hole = per_stroke.any(0)
    return jnp.where(hole.all(), per_stroke[0], hole)


def mask(kind: str, key: jax.Array, num_frames: int, height: int, width: int) -> jax.Array:
    """One example's mask [T, H, W, 1] float32 of the given kind."""
    frames = jnp.arange(num_frames)[:, None, None]
    if kind == "i2v":
        m = jnp.broadcast_to(frames == 0, (num_frames, height, width))
    elif kind == "inpaint":
        m = jnp.broadcast_to(~_box(key, height, width, 0.25, 0.6), (num_frames, height, width))
    elif kind == "strokes":
        m = jnp.broadcast_to(~_strokes(key, height, width), (num_frames, height, width))
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


def sample_masks(
    key: jax.Array, batch: int, num_frames: int, height: int, width: int, mixture: Mapping[str, float] = DEFAULT_MIXTURE
) -> tuple[jax.Array, jax.Array]:
    """(masks [B, T, H, W, 1] float32, kind index [B] into KINDS), kinds drawn from `mixture`."""
    weights = check_mixture(mixture)
    probs = jnp.array([weights[k] for k in KINDS]) / sum(weights.values())
    k_kind, k_masks = jax.random.split(key)
    kinds = jax.random.choice(k_kind, len(KINDS), (batch,), p=probs)

    def one(k, kind):
        per_kind = jnp.stack([mask(name, k, num_frames, height, width) for name in KINDS])
        return per_kind[kind]

    return jax.vmap(one)(jax.random.split(k_masks, batch), kinds), kinds
