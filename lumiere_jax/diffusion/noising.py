"""Forward noising and conversions between prediction types.

With a = alpha_bar_t, alpha = sqrt(a), sigma = sqrt(1 - a):
    x_t = alpha * x0 + sigma * eps
    v   = alpha * eps - sigma * x0           (Salimans & Ho, "v_prediction")
The model output is one of eps ("epsilon"), v ("v_prediction") or x0 ("sample").
Operation order mirrors diffusers so float32 results agree to rounding.
"""

from __future__ import annotations

import jax

from lumiere_jax.diffusion.schedules import Schedule

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def check_prediction_type(prediction_type: str) -> None:
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"Unknown prediction_type {prediction_type!r}; valid types: {', '.join(PREDICTION_TYPES)}")


def _per_example(v: jax.Array, like: jax.Array) -> jax.Array:
    """Reshapes a [B] vector to broadcast against ``like`` ([B, ...])."""
    return v.reshape(v.shape + (1,) * (like.ndim - v.ndim))


def _alpha_sigma(sched: Schedule, t: jax.Array, like: jax.Array) -> tuple[jax.Array, jax.Array]:
    a = sched.alphas_cumprod[t]
    return _per_example(a**0.5, like), _per_example((1 - a) ** 0.5, like)


def add_noise(sched: Schedule, x0: jax.Array, noise: jax.Array, t: jax.Array) -> jax.Array:
    """q(x_t | x0): ``t`` is int32 [B]; broadcasts over any trailing dims of ``x0``."""
    alpha, sigma = _alpha_sigma(sched, t, x0)
    return alpha * x0 + sigma * noise


def get_target(sched: Schedule, x0: jax.Array, noise: jax.Array, t: jax.Array, prediction_type: str) -> jax.Array:
    """The regression target of a model of the given prediction type."""
    check_prediction_type(prediction_type)
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return x0
    alpha, sigma = _alpha_sigma(sched, t, x0)
    return alpha * noise - sigma * x0


def x0_from_output(
    model_output: jax.Array, x_t: jax.Array, alpha: jax.Array, sigma: jax.Array, prediction_type: str
) -> jax.Array:
    """x0 estimate given alpha = sqrt(alpha_bar), sigma = sqrt(1 - alpha_bar) (broadcastable)."""
    check_prediction_type(prediction_type)
    if prediction_type == "epsilon":
        return (x_t - sigma * model_output) / alpha
    if prediction_type == "sample":
        return model_output
    return alpha * x_t - sigma * model_output


def eps_from_output(
    model_output: jax.Array, x_t: jax.Array, alpha: jax.Array, sigma: jax.Array, prediction_type: str
) -> jax.Array:
    """Noise estimate given alpha = sqrt(alpha_bar), sigma = sqrt(1 - alpha_bar) (broadcastable)."""
    check_prediction_type(prediction_type)
    if prediction_type == "epsilon":
        return model_output
    if prediction_type == "sample":
        return (x_t - alpha * model_output) / sigma
    return alpha * model_output + sigma * x_t


def predict_x0(
    sched: Schedule, x_t: jax.Array, model_output: jax.Array, t: jax.Array, prediction_type: str
) -> jax.Array:
    """x0 estimate from a model output at int32 timesteps ``t`` [B]."""
    alpha, sigma = _alpha_sigma(sched, t, x_t)
    return x0_from_output(model_output, x_t, alpha, sigma, prediction_type)


def predict_eps(
    sched: Schedule, x_t: jax.Array, model_output: jax.Array, t: jax.Array, prediction_type: str
) -> jax.Array:
    """Noise estimate from a model output at int32 timesteps ``t`` [B]."""
    alpha, sigma = _alpha_sigma(sched, t, x_t)
    return eps_from_output(model_output, x_t, alpha, sigma, prediction_type)


def split_learned_variance(model_output: jax.Array, x: jax.Array) -> jax.Array:
    """Drops the variance half of a learned-variance head (2*C channels, last axis) if present."""
    channels = x.shape[-1]
    if model_output.shape[-1] == 2 * channels:
        return model_output[..., :channels]
    if model_output.shape[-1] != channels:
        raise ValueError(f"model output has {model_output.shape[-1]} channels; expected {channels} or {2 * channels}")
    return model_output
