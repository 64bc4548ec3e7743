"""Denoising training loss with optional SNR weighting, and the learned-range variance term
(improved DDPM's hybrid loss, as DeepFloyd IF trains its 6-channel output)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lumiere_jax.diffusion import noising
from lumiere_jax.diffusion import schedules as schedules_lib
from lumiere_jax.diffusion.schedules import Schedule

SNR_WEIGHTINGS = (None, "min_snr")
VARIANCE_TYPES = ("fixed_small", "learned_range")
VLB_WEIGHT = 0.001  # improved DDPM's lambda


TIMESTEP_SAMPLINGS = ("uniform", "logit_normal", "logit_normal_mixture")


def sample_timesteps(
    key: jax.Array,
    batch: int,
    sched: Schedule,
    sampling: str = "uniform",
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
    logit_mean2: float = 0.0,
    mixture_weight: float = 0.0,
) -> jax.Array:
    """Training timesteps in [0, num_train_timesteps), int32 [batch].

    ``"uniform"``: every timestep equally often. ``"logit_normal"`` (SD3's density over t / T):
    t = floor(T * sigmoid(m + s * n)), n ~ N(0, 1); ``logit_mean`` m > 0 puts more of the batch at
    high noise, where a video's layout and motion are decided. ``"logit_normal_mixture"``: each
    example's m is ``logit_mean2`` with probability ``mixture_weight``, else ``logit_mean`` (one run
    that trains both the top of the noise range and mid noise).
    """
    n = sched.num_train_timesteps
    if sampling == "uniform":
        return jax.random.randint(key, (batch,), 0, n, dtype=jnp.int32)
    if sampling in ("logit_normal", "logit_normal_mixture"):
        if not logit_std > 0:
            raise ValueError(f"{sampling} timestep sampling needs logit_std > 0, got {logit_std}")
        k_n, mean = key, jnp.float32(logit_mean)  # logit_normal: the key as it always was (same draws)
        if sampling == "logit_normal_mixture":
            if not 0.0 <= mixture_weight <= 1.0:
                raise ValueError(f"timestep mixture weight must be in [0, 1], got {mixture_weight}")
            k_n, k_c = jax.random.split(key)
            second = jax.random.uniform(k_c, (batch,)) < mixture_weight
            mean = jnp.where(second, jnp.float32(logit_mean2), mean)
        u = jax.nn.sigmoid(mean + logit_std * jax.random.normal(k_n, (batch,), jnp.float32))
        return jnp.clip(jnp.floor(u * n), 0, n - 1).astype(jnp.int32)
    raise ValueError(f"unknown timestep sampling {sampling!r}; valid: {TIMESTEP_SAMPLINGS}")


def snr_weights(
    sched: Schedule,
    t: jax.Array,
    prediction_type: str,
    snr_weighting: str | None,
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
    variance_type: str = "fixed_small",
    vlb_weight: float = VLB_WEIGHT,
) -> jax.Array:
    """Weighted MSE against the prediction-type target; scalar float32.

    ``variance_type="learned_range"`` (a 2*C-channel output: prediction + variance value v) adds
    ``vlb_weight`` times :func:`learned_range_vlb` (improved DDPM's L_hybrid = L_simple + lambda
    L_vlb; the mean enters the VLB term through a stop-gradient, so it trains only the variance).

    loss = mean_b [ w_b * sum(m * (out - target)^2)_b / sum(m)_b ], where the sums run over the
    non-batch dims, ``mask`` m (broadcastable to x0, e.g. [B, T, 1, 1, 1] for valid frames)
    defaults to ones, and w_b comes from :func:`snr_weights`. An example whose mask is all zero
    contributes 0. Model outputs with 2*C channels use their first C channels in the MSE.
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
    loss = jnp.mean(w * per_example)
    if variance_type not in VARIANCE_TYPES:
        raise ValueError(f"Unknown variance_type {variance_type!r}; valid: {VARIANCE_TYPES}")
    if variance_type == "learned_range":
        vlb = learned_range_vlb(model_output, x0, noise, t, sched, prediction_type)
        if mask is not None:
            m = jnp.broadcast_to(mask, x0.shape).astype(jnp.float32)
            m_sum = jnp.sum(m, axis=axes)
            vlb = jnp.sum(vlb * m, axis=axes) / jnp.where(m_sum > 0, m_sum, 1.0)
        else:
            vlb = jnp.mean(vlb, axis=axes)
        loss = loss + vlb_weight * jnp.mean(vlb)
    return loss


def posterior_log_variance_clipped(sched: Schedule) -> jax.Array:
    """log beta~_t, beta~_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t, with t = 0 using
    beta~_1 (beta~_0 = 0), float32 [num_train_timesteps]."""
    ac = sched.alphas_cumprod
    prev = jnp.concatenate([jnp.ones((1,), ac.dtype), ac[:-1]])
    post = sched.betas * (1.0 - prev) / (1.0 - ac)
    return jnp.log(jnp.concatenate([post[1:2], post[1:]]))


def learned_range_log_variance(v: jax.Array, t: jax.Array, sched: Schedule) -> jax.Array:
    """The model's log-variance of p(x_{t-1} | x_t): frac log(beta_t) + (1 - frac) log(beta~_t), frac = (v+1)/2."""
    min_log = noising._per_example(posterior_log_variance_clipped(sched)[t], v)
    max_log = noising._per_example(jnp.log(sched.betas[t]), v)
    frac = (v + 1.0) / 2.0
    return frac * max_log + (1.0 - frac) * min_log


def _normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + jnp.exp(logvar1 - logvar2) + jnp.square(mean1 - mean2) * jnp.exp(-logvar2))


def _discretized_gaussian_log_likelihood(x, mean, log_scale):
    """log P(x) of 8-bit data in [-1, 1] (bins of width 2/255) under N(mean, exp(log_scale)^2)."""
    centered = x - mean
    inv_std = jnp.exp(-log_scale)
    cdf_plus = jax.scipy.stats.norm.cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = jax.scipy.stats.norm.cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = jnp.log(jnp.maximum(cdf_plus, 1e-12))
    log_one_minus_cdf_min = jnp.log(jnp.maximum(1.0 - cdf_min, 1e-12))
    log_delta = jnp.log(jnp.maximum(cdf_plus - cdf_min, 1e-12))
    return jnp.where(x < -0.999, log_cdf_plus, jnp.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def learned_range_vlb(
    model_output: jax.Array,
    x0: jax.Array,
    noise: jax.Array,
    t: jax.Array,
    sched: Schedule,
    prediction_type: str = "epsilon",
) -> jax.Array:
    """Per-element variational bound term, in bits (improved DDPM, Nichol & Dhariwal 2021):
    KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t)) for t > 0 and the decoder NLL -log p(x0 | x_1) at
    t = 0. The model mean comes from the stop-gradient prediction (first C channels), the variance
    from the last C channels (learned range). Same shape as x0."""
    c = x0.shape[-1]
    if model_output.shape[-1] != 2 * c:
        raise ValueError(
            f"variance_type='learned_range' needs a model output with 2 * {c} channels "
            f"(prediction + variance), got {model_output.shape[-1]}"
        )
    out = jax.lax.stop_gradient(model_output[..., :c].astype(jnp.float32))
    v = model_output[..., c:].astype(jnp.float32)
    x0 = x0.astype(jnp.float32)
    x_t = noising.add_noise(sched, x0, noise, t)
    ac = sched.alphas_cumprod
    a_t = noising._per_example(ac[t], x0)
    a_prev = noising._per_example(jnp.where(t > 0, ac[jnp.maximum(t - 1, 0)], 1.0), x0)
    beta = noising._per_example(sched.betas[t], x0)
    coef_x0 = beta * jnp.sqrt(a_prev) / (1.0 - a_t)
    coef_xt = (1.0 - a_prev) * jnp.sqrt(1.0 - beta) / (1.0 - a_t)
    true_mean = coef_x0 * x0 + coef_xt * x_t
    true_log_var = noising._per_example(posterior_log_variance_clipped(sched)[t], x0)
    x0_pred = noising.x0_from_output(out, x_t, jnp.sqrt(a_t), jnp.sqrt(1.0 - a_t), prediction_type)
    model_mean = coef_x0 * x0_pred + coef_xt * x_t
    model_log_var = learned_range_log_variance(v, t, sched)
    kl = _normal_kl(true_mean, true_log_var, model_mean, model_log_var) / math.log(2.0)
    nll = -_discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var) / math.log(2.0)
    return jnp.where(noising._per_example(t, x0) == 0, nll, kl)
