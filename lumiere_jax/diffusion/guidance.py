"""Classifier-free guidance: text dropout for training, guided model outputs for sampling."""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from lumiere_jax import axes


class NullTextEmbedding(nn.Module):
    """Learned "empty prompt" embedding [length, dim]; zero-initialised, so it starts equal to
    the fixed zero null embedding."""

    length: int
    dim: int

    @nn.compact
    def __call__(self) -> jax.Array:
        init = nn.with_logical_partitioning(nn.initializers.zeros_init(), (axes.POS, axes.EMBED))
        return self.param("embedding", init, (self.length, self.dim), jnp.float32)


def null_text(
    batch: int,
    length: int,
    dim: int,
    null_emb: jax.Array | None = None,
    dtype: Any = jnp.float32,
    mask_dtype: Any = jnp.bool_,
) -> tuple[jax.Array, jax.Array]:
    """The unconditional text input: ``null_emb`` (broadcast to [L, D]; None = zeros) for every
    example, with an all-ones mask (the whole null sequence is attended)."""
    null = (
        jnp.zeros((length, dim), dtype) if null_emb is None else jnp.broadcast_to(null_emb, (length, dim)).astype(dtype)
    )
    return jnp.broadcast_to(null, (batch, length, dim)), jnp.ones((batch, length), mask_dtype)


def drop_text(
    key: jax.Array,
    text_emb: jax.Array,
    text_mask: jax.Array,
    null_emb: jax.Array | None,
    prob: float,
) -> tuple[jax.Array, jax.Array]:
    """Replaces each example's (emb [B, L, D], mask [B, L]) by :func:`null_text` with probability
    ``prob``, independently per example. Gradients flow into a learned ``null_emb``."""
    batch, length, dim = text_emb.shape
    drop = jax.random.bernoulli(key, prob, (batch,))
    null_e, null_m = null_text(batch, length, dim, null_emb, text_emb.dtype, text_mask.dtype)
    emb = jnp.where(drop[:, None, None], null_e, text_emb)
    mask = jnp.where(drop[:, None], null_m, text_mask)
    return emb, mask


def guide(cond_out: jax.Array, uncond_out: jax.Array, guidance_scale: float, channels: int) -> jax.Array:
    """uncond + scale * (cond - uncond). For a learned-variance output (2 * ``channels`` on the
    last axis) only the first ``channels`` are guided and the cond variance half is kept, as in
    diffusers' IF pipeline."""
    if cond_out.shape[-1] == 2 * channels:
        guided = guide(cond_out[..., :channels], uncond_out[..., :channels], guidance_scale, channels)
        return jnp.concatenate([guided, cond_out[..., channels:]], axis=-1)
    return uncond_out + guidance_scale * (cond_out - uncond_out)


def cfg_model_fn(
    model_fn: Callable[[jax.Array, jax.Array, Any], jax.Array],
    cond: Any,
    uncond: Any,
    guidance_scale: float,
    high_noise: tuple[float, int] | None = None,
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Wraps ``model_fn(x, t, context)`` into a guided ``fn(x, t)`` for the samplers.

    ``high_noise`` = (scale, t_from): examples at timesteps t >= t_from are guided with that scale
    instead of ``guidance_scale`` (a guidance interval: strong guidance only where the noise is high).

    ``cond`` and ``uncond`` are context pytrees with leading batch dim B (e.g. (emb, mask) from
    the prompt and from :func:`null_text`). Both branches run in ONE call on a batch of 2B:
    [x; x], [t; t], [cond; uncond]; the output is split and combined with :func:`guide`.
    """
    context = jax.tree.map(lambda c, u: jnp.concatenate([c, u], axis=0), cond, uncond)

    def fn(x: jax.Array, t: jax.Array) -> jax.Array:
        batch = x.shape[0]
        # The 2B batch (both halves) is split over the batch mesh axes when a mesh and rules are
        # active (lumiere_jax.parallel.mesh.activate); otherwise this is a no-op.
        x2 = nn.with_logical_constraint(jnp.concatenate([x, x], axis=0), (axes.BATCH,) + (None,) * (x.ndim - 1))
        out = model_fn(x2, jnp.concatenate([t, t], axis=0), context)
        scale = guidance_scale
        if high_noise is not None:
            high, t_from = high_noise
            scale = jnp.where(t >= t_from, high, guidance_scale).astype(out.dtype)
            scale = scale.reshape((batch,) + (1,) * (x.ndim - 1))
        elif isinstance(scale, jax.Array):  # traced (`traced_scales`): the output's dtype, as a float's
            scale = scale.astype(out.dtype)
        return guide(out[:batch], out[batch:], scale, x.shape[-1])

    return fn


def guided_model_fn(
    model_fn: Callable[[jax.Array, jax.Array, Any], jax.Array],
    cond: Any,
    uncond: Any,
    scales: tuple[float, tuple[float, int] | None],
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``fn(x, t)`` guided by ``scales`` = (guidance_scale, high_noise) as :func:`cfg_model_fn` takes
    them; with no guidance anywhere (scale 1, no high-noise scale) the model runs on ``cond`` alone
    (one branch, half the batch)."""
    scale, high_noise = scales
    if guidance_kind(scales) == "none":
        return lambda x, t: model_fn(x, t, cond)
    return cfg_model_fn(model_fn, cond, uncond, scale, high_noise)


def guidance_kind(scales: tuple) -> str:
    """What a compiled sampling step must know of ``scales`` (the rest are its traced values):
    "none" (scale 1, no high-noise scale: one branch), "cfg", or "cfg_high" (with a high-noise scale).
    A traced scale always guides."""
    scale, high_noise = scales
    if high_noise is not None:
        return "cfg_high"
    return "none" if isinstance(scale, (int, float)) and scale == 1.0 else "cfg"


def scale_values(scales: tuple) -> jax.Array:
    """float32 [3] (scale, high-noise scale, first timestep it applies at) of ``scales``: the traced
    argument of a step compiled for ``guidance_kind(scales)`` (unused entries 0)."""
    scale, high_noise = scales
    high, t_from = high_noise if high_noise is not None else (0.0, 0)
    return jnp.asarray([scale, high, t_from], jnp.float32)


def traced_scales(kind: str, values: jax.Array) -> tuple:
    """The ``scales`` that ``guided_model_fn`` takes, inside a step compiled for ``kind``, from the
    traced ``scale_values``: one compiled step serves every guidance scale (and interval) of its kind.
    Timesteps are integers below 2^24, exact in float32."""
    if kind == "none":
        return 1.0, None
    if kind == "cfg":
        return values[0], None
    return values[0], (values[1], values[2].astype(jnp.int32))
