"""Denoising training loss with optional SNR weighting."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from lumiere_jax.diffusion import noising
from lumiere_jax.diffusion import schedules as schedules_lib
from lumiere_jax.diffusion.schedules import Schedule

SNR_WEIGHTINGS = (None, "min_snr")


def sample_timesteps(key: jax.Array, batch: int, sched: Schedule) -> jax.Array:
    """Uniform training timesteps in [0, num_train_timesteps), int32 [batch]."""
    return jax.random.randint(key, (batch,), 0, sched.num_train_timesteps, dtype=jnp.int32)


def snr_weights(
    sched: Schedule, t: jax.Array, prediction_type: str, snr_weighting: str | None,
    snr_gamma: float = 5.0,
) -> jax.Array:
    """Per-example loss weights [B].

    ``"min_snr"`` is Min-SNR-gamma (Hang et al. 2023): the x0-space weight is min(SNR, gamma).
    The MSE of an eps (v) prediction equals SNR (SNR + 1) times the MSE of the implied x0, so
    the weight applied to the MSE in the model's own space is
        epsilon: min(SNR, gamma) / SNR,   v_prediction: min(SNR, gamma) / (SNR + 1),
        sample:  min(SNR, gamma),
    with SNR = alpha_bar_t / (1 - alpha_bar_t). ``None`` gives weight 1.
    """
    noising.check_prediction_type(prediction_type)
    if snr_weighting not in SNR_WEIGHTINGS:
        raise ValueError(f"Unknown snr_weighting {snr_weighting!r}; valid: {SNR_WEIGHTINGS}")
    if snr_weighting is None:
        return jnp.ones(t.shape, jnp.float32)
    s = schedules_lib.snr(sched, t)
    clipped = jnp.minimum(s, snr_gamma)
    if prediction_type == "epsilon":
        return clipped / s
    if prediction_type == "v_prediction":
        return clipped / (s + 1.0)
    return clipped


def diffusion_loss(
    model_output: jax.Array,
    x0: jax.Array,
    noise: jax.Array,
    t: jax.Array,
    sched: Schedule,
    prediction_type: str = "epsilon",
    snr_weighting: str | None = None,
    snr_gamma: float = 5.0,
    mask: jax.Array | None = None,
) -> jax.Array:
    """Weighted MSE against the prediction-type target; scalar float32.

    loss = mean_b [ w_b * sum(m * (out - target)^2)_b / sum(m)_b ], where the sums run over the
    non-batch dims, ``mask`` m (broadcastable to x0, e.g. [B, T, 1, 1, 1] for valid frames)
    defaults to ones, and w_b comes from :func:`snr_weights`. An example whose mask is all zero
    contributes 0. Model outputs with 2*C channels use their first C channels.
    """
    out = noising.split_learned_variance(model_output, x0).astype(jnp.float32)
    target = noising.get_target(sched, x0, noise, t, prediction_type).astype(jnp.float32)
    se = jnp.square(out - target)
    axes = tuple(range(1, x0.ndim))
    if mask is None:
        per_example = jnp.mean(se, axis=axes)
    else:
        m = jnp.broadcast_to(mask, x0.shape).astype(jnp.float32)
        m_sum = jnp.sum(m, axis=axes)
        per_example = jnp.sum(se * m, axis=axes) / jnp.where(m_sum > 0, m_sum, 1.0)
    w = snr_weights(sched, t, prediction_type, snr_weighting, snr_gamma)
    return jnp.mean(w * per_example)
