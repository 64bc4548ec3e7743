"""DDPM, DDIM and DPM-Solver++(2M) samplers with diffusers' conventions.

Each sampler is a :class:`Sampler`: a pytree holding the int32 ``timesteps`` and per-step float32
coefficients, with two pure functions ``init_state(x_T)`` and
``step(state, i, x, model_output, noise) -> (x_next, state)``. Code that denoises several
overlapping windows (MultiDiffusion) can call ``step`` once per window and average the results.

The per-step scalars are computed once in numpy with the same float32 operations, in the same
order, as ``DDPMScheduler`` / ``DDIMScheduler`` / ``DPMSolverMultistepScheduler``
(transcendentals are rounded from float64); given the same model outputs the trajectories agree
with diffusers to float32 rounding. Diffusers' quirks are kept on purpose, e.g. DDIM's previous
timestep is always ``t - num_train_timesteps // num_steps`` whatever the spacing, and DDPM adds
noise whenever the current timestep is > 0 (also at the last step of a ``trailing`` schedule).
Model outputs with 2*C channels (learned-variance head) are reduced to their first C channels;
DDPM with ``variance_type="learned_range"`` (DeepFloyd IF) uses the other C channels v as
diffusers' ``DDPMScheduler`` does: log-variance = frac * log(beta_t) + (1 - frac) * log(beta~_t),
frac = (v + 1) / 2, with beta_t = 1 - alpha_bar_t / alpha_bar_prev of the sampling step and
beta~_t the posterior variance (clamped at 1e-20); the other samplers ignore the variance half.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from lumiere_jax.diffusion import noising
from lumiere_jax.diffusion import schedules as schedules_lib
from lumiere_jax.diffusion import thresholding as thresholding_lib
from lumiere_jax.diffusion.schedules import Schedule

SAMPLERS = ("ddim", "dpmpp_2m", "ddpm")
VARIANCE_TYPES = ("fixed_small", "learned_range")
FINAL_SIGMAS_TYPES = ("zero", "sigma_min")

ModelFn = Callable[[jax.Array, jax.Array], jax.Array]
_F32 = np.float32


@struct.dataclass
class Sampler:
    """Step object of one sampler; build it with :func:`get_sampler` (outside ``jit``)."""

    timesteps: jax.Array  # int32 [num_steps], descending
    coefs: dict[str, jax.Array]  # float32 [num_steps] each
    name: str = struct.field(pytree_node=False)
    prediction_type: str = struct.field(pytree_node=False)
    eta: float = struct.field(pytree_node=False)
    thresholding: bool = struct.field(pytree_node=False)
    dynamic_thresholding_ratio: float = struct.field(pytree_node=False)
    sample_max_value: float = struct.field(pytree_node=False)
    clip_sample: bool = struct.field(pytree_node=False)
    clip_sample_range: float = struct.field(pytree_node=False)
    variance_type: str = struct.field(pytree_node=False, default="fixed_small")
    use_clipped_model_output: bool = struct.field(pytree_node=False, default=True)

    @property
    def num_steps(self) -> int:
        return self.timesteps.shape[0]

    def padded(self, length: int) -> "Sampler":
        """This sampler with its per-step arrays padded to `length` steps (repeating the last): steps
        0 .. num_steps - 1 are unchanged, and a step compiled for it serves every sampler of the same
        kind and settings with up to `length` steps (the arrays' shapes are all a jitted step sees of
        num_steps). Its own `num_steps` is `length`: loop over the unpadded sampler's."""
        n = self.num_steps
        if length < n:
            raise ValueError(f"cannot pad a {n}-step sampler to {length} steps")
        if length == n:
            return self
        arrays = (self.timesteps, self.coefs)
        if any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(arrays)):  # inside a jit
            xp, host = jnp, arrays
        else:  # on the host: no compile per padded shape
            xp, host = np, jax.device_get(arrays)
        pad = lambda a: jnp.asarray(xp.concatenate([a, xp.repeat(a[-1:], length - n, axis=0)]))  # noqa: E731
        return self.replace(timesteps=pad(host[0]), coefs={k: pad(v) for k, v in host[1].items()})

    @property
    def needs_noise(self) -> bool:
        return self.name == "ddpm" or (self.name == "ddim" and self.eta > 0)

    def init_state(self, x_T: jax.Array) -> Any:
        """Solver state before step 0: DPM-Solver++ keeps the previous x0 prediction."""
        return jnp.zeros_like(x_T) if self.name == "dpmpp_2m" else ()

    def step(
        self,
        state: Any,
        i: jax.Array | int,
        x: jax.Array,
        model_output: jax.Array,
        noise: jax.Array | None,
    ) -> tuple[jax.Array, Any]:
        """Step ``i`` (0-based; may be traced): x at ``timesteps[i]`` -> x at the next timestep."""
        if self.needs_noise and noise is None:
            raise ValueError(f"sampler {self.name!r} (eta={self.eta}) needs a noise array")
        c = {k: v[i] for k, v in self.coefs.items()}
        out = noising.split_learned_variance(model_output, x)
        if self.variance_type == "learned_range":
            if model_output.shape[-1] != 2 * x.shape[-1]:
                raise ValueError(
                    f"variance_type='learned_range' needs a model output with 2 * {x.shape[-1]} "
                    f"channels (epsilon + variance), got {model_output.shape[-1]}"
                )
            frac = (model_output[..., x.shape[-1] :] + 1) / 2
            log_var = frac * c["max_log"] + (1 - frac) * c["min_log"]
            c["std"] = jnp.where(c["noise_on"] > 0, jnp.exp(0.5 * log_var), 0.0)
        x0 = noising.x0_from_output(out, x, c["alpha"], c["sigma"], self.prediction_type)
        x0 = self._clamp(x0)
        if self.name == "ddim":
            if self.use_clipped_model_output and self.clamps:
                # The direction term points at the clamped x0: eps recomputed from it, so x_next stays
                # on the DDIM path of the x0 that the step keeps (diffusers' use_clipped_model_output=True).
                eps = (x - c["alpha"] * x0) / c["sigma"]
            else:
                # diffusers' default (use_clipped_model_output=False): the model's own eps. With a
                # clamped x0 and guidance > 1 this pushes samples to saturation (docs/sampling.md).
                eps = noising.eps_from_output(out, x, c["alpha"], c["sigma"], self.prediction_type)
            x_next = c["alpha_prev"] * x0 + c["dir"] * eps
            if self.eta > 0:
                x_next = x_next + c["std"] * noise
        elif self.name == "ddpm":
            x_next = c["x0_coef"] * x0 + c["x_coef"] * x
            x_next = x_next + c["std"] * noise
        else:
            # First-order steps have d1_coef = d2_coef = 0, which leaves the first-order value exact.
            d1 = c["d1_coef"] * (x0 - state)
            x_next = c["ratio"] * x - c["c1"] * x0 - c["d2_coef"] * d1
            state = x0.astype(x.dtype)
        return x_next.astype(x.dtype), state

    def predict_x0(self, i: jax.Array | int, x: jax.Array, model_output: jax.Array) -> jax.Array:
        """The (clamped) x0 estimate that step ``i`` moves towards (previews, early stopping)."""
        c = {k: v[i] for k, v in self.coefs.items()}
        out = noising.split_learned_variance(model_output, x)
        return self._clamp(noising.x0_from_output(out, x, c["alpha"], c["sigma"], self.prediction_type))

    @property
    def clamps(self) -> bool:
        """Whether the step clamps its x0 prediction (dynamic thresholding or static clipping)."""
        return self.thresholding or self.clip_sample

    def _clamp(self, x0: jax.Array) -> jax.Array:
        if self.thresholding:
            return thresholding_lib.dynamic_threshold(x0, self.dynamic_thresholding_ratio, self.sample_max_value)
        if self.clip_sample:
            return thresholding_lib.static_clip(x0, self.clip_sample_range)
        return x0


def _sqrt(x: np.ndarray) -> np.ndarray:
    return np.sqrt(x.astype(_F32))


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x.astype(np.float64)).astype(_F32)


def _exp(x: np.ndarray) -> np.ndarray:
    return np.exp(x.astype(np.float64)).astype(_F32)


def _ddim_coefs(
    ac: np.ndarray, ts: np.ndarray, n_train: int, eta: float, set_alpha_to_one: bool
) -> dict[str, np.ndarray]:
    prev = ts - n_train // len(ts)
    final = _F32(1.0) if set_alpha_to_one else ac[0]
    a_t = ac[ts]
    a_prev = np.where(prev >= 0, ac[np.maximum(prev, 0)], final).astype(_F32)
    beta_t = _F32(1) - a_t
    beta_prev = _F32(1) - a_prev
    variance = (beta_prev / beta_t) * (_F32(1) - a_t / a_prev)
    std = _F32(eta) * _sqrt(variance)
    with np.errstate(invalid="ignore"):
        direction = _sqrt(_F32(1) - a_prev - std * std)
    return dict(alpha=_sqrt(a_t), sigma=_sqrt(beta_t), alpha_prev=_sqrt(a_prev), dir=direction, std=std)


def _ddpm_coefs(ac: np.ndarray, ts: np.ndarray) -> dict[str, np.ndarray]:
    prev = np.append(ts[1:], -1)
    a_t = ac[ts]
    a_prev = np.where(prev >= 0, ac[np.maximum(prev, 0)], _F32(1)).astype(_F32)
    beta_t = _F32(1) - a_t
    beta_prev = _F32(1) - a_prev
    cur_alpha = a_t / a_prev
    cur_beta = _F32(1) - cur_alpha
    variance = np.maximum((_F32(1) - a_prev) / (_F32(1) - a_t) * cur_beta, _F32(1e-20))
    std = np.where(ts > 0, _sqrt(variance), _F32(0)).astype(_F32)
    return dict(
        alpha=_sqrt(a_t),
        sigma=_sqrt(beta_t),
        x0_coef=(_sqrt(a_prev) * cur_beta) / beta_t,
        x_coef=_sqrt(cur_alpha) * beta_prev / beta_t,
        std=std,
        min_log=_log(variance),
        max_log=_log(cur_beta),
        noise_on=(ts > 0).astype(_F32),
    )


def _dpm_coefs(
    ac: np.ndarray, ts: np.ndarray, lower_order_final: bool, final_sigmas_type: str
) -> dict[str, np.ndarray]:
    n = len(ts)
    all_sigmas = _sqrt((_F32(1) - ac) / ac)
    last = all_sigmas[0] if final_sigmas_type == "sigma_min" else _F32(0)
    sig = np.append(all_sigmas[ts], last).astype(_F32)
    alpha = _F32(1) / _sqrt(sig * sig + _F32(1))
    sigma = sig * alpha
    lam = _log(alpha) - _log(sigma)
    s0, t1 = np.arange(n), np.arange(n) + 1
    h = lam[t1] - lam[s0]
    c1 = alpha[t1] * (_exp(-h) - _F32(1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = sigma[t1] / sigma[s0]
        r0 = (lam[s0] - lam[np.maximum(s0 - 1, 0)]) / h
        inv_r0 = _F32(1.0) / r0
    final_first_order = (lower_order_final and n < 15) or final_sigmas_type == "zero"
    second = (s0 >= 1) & ~((s0 == n - 1) & final_first_order)
    return dict(
        alpha=alpha[:n],
        sigma=sigma[:n],
        ratio=ratio,
        c1=c1,
        d1_coef=np.where(second, inv_r0, _F32(0)).astype(_F32),
        d2_coef=np.where(second, _F32(0.5) * c1, _F32(0)).astype(_F32),
    )


def get_sampler(
    name: str,
    sched: Schedule,
    num_steps: int,
    *,
    timestep_spacing: str = "leading",
    prediction_type: str = "epsilon",
    eta: float = 0.0,
    thresholding: bool = False,
    dynamic_thresholding_ratio: float = 0.995,
    sample_max_value: float = 1.0,
    clip_sample: bool = False,
    clip_sample_range: float = 1.0,
    set_alpha_to_one: bool = False,
    steps_offset: int = 0,
    lower_order_final: bool = True,
    final_sigmas_type: str = "zero",
    variance_type: str = "fixed_small",
    use_clipped_model_output: bool = True,
) -> Sampler:
    """Builds the step object of sampler ``name`` (``ddim``, ``dpmpp_2m`` or ``ddpm``).

    Options carry diffusers' names and meanings. ``eta`` and ``set_alpha_to_one`` are DDIM only;
    ``lower_order_final`` and ``final_sigmas_type`` are DPM-Solver++ only; ``variance_type``
    ``"learned_range"`` is DDPM only (the model outputs 2*C channels); DPM-Solver++ has no
    ``clip_sample``. Note that diffusers' DDIM/DDPM default ``clip_sample=True`` (and DDIM
    ``set_alpha_to_one=True``) while here both default to False.

    ``use_clipped_model_output`` (DDIM with thresholding or clip_sample; default True, unlike
    diffusers' DDIMScheduler.step): the direction term uses the eps recomputed from the clamped x0.
    With False (diffusers' default) it uses the model's unclamped eps, which, with guidance > 1,
    drives colours to saturation; kept for parity with diffusers.
    """
    if name not in SAMPLERS:
        raise ValueError(f"Unknown sampler {name!r}; valid samplers: {', '.join(SAMPLERS)}")
    noising.check_prediction_type(prediction_type)
    if eta < 0 or (eta != 0 and name != "ddim"):
        raise ValueError(f"eta must be >= 0 and is only used by 'ddim'; got eta={eta} for {name!r}")
    if variance_type not in VARIANCE_TYPES:
        raise ValueError(f"Unknown variance_type {variance_type!r}; valid: {', '.join(VARIANCE_TYPES)}")
    if variance_type == "learned_range" and name != "ddpm":
        raise ValueError(f"variance_type='learned_range' is only used by 'ddpm', not {name!r}")
    if set_alpha_to_one and name != "ddim":
        raise ValueError("set_alpha_to_one is only used by 'ddim'")
    if clip_sample and name == "dpmpp_2m":
        raise ValueError("clip_sample is not supported by 'dpmpp_2m' (use thresholding)")
    if final_sigmas_type not in FINAL_SIGMAS_TYPES:
        raise ValueError(f"Unknown final_sigmas_type {final_sigmas_type!r}; valid: {', '.join(FINAL_SIGMAS_TYPES)}")
    ts = schedules_lib.timesteps(sched, num_steps, timestep_spacing, steps_offset, dpm_solver=name == "dpmpp_2m")
    ac = np.asarray(sched.alphas_cumprod, dtype=_F32)
    if name == "ddim":
        coefs = _ddim_coefs(ac, ts, sched.num_train_timesteps, eta, set_alpha_to_one)
    elif name == "ddpm":
        coefs = _ddpm_coefs(ac, ts)
    else:
        coefs = _dpm_coefs(ac, ts, lower_order_final, final_sigmas_type)
    return Sampler(
        timesteps=jnp.asarray(ts, jnp.int32),
        coefs={k: jnp.asarray(v, jnp.float32) for k, v in coefs.items()},
        name=name,
        prediction_type=prediction_type,
        eta=float(eta),
        thresholding=thresholding,
        dynamic_thresholding_ratio=dynamic_thresholding_ratio,
        sample_max_value=sample_max_value,
        clip_sample=clip_sample,
        clip_sample_range=clip_sample_range,
        variance_type=variance_type,
        use_clipped_model_output=bool(use_clipped_model_output),
    )


def start_index(sampler: Sampler, strength: float, num_train_timesteps: int) -> int:
    """SDEdit: the first step whose timestep is <= strength * num_train_timesteps (strength in
    [0, 1]; 1 = every step, from pure noise; a strength below the last timestep = no step)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    ts = np.asarray(sampler.timesteps)
    below = np.nonzero(ts <= strength * num_train_timesteps)[0]
    return int(below[0]) if len(below) else len(ts)


def tail(sampler: Sampler, start: int) -> Sampler:
    """The sampler from step `start` on (SDEdit starts part-way down the schedule). Its step 0 is the
    original step `start`; a multistep solver's first step falls back to first order (it has no
    previous prediction), which keeps it exact."""
    if not 0 <= start < sampler.num_steps:
        raise ValueError(f"start step {start} outside [0, {sampler.num_steps})")
    coefs = {k: v[start:] for k, v in sampler.coefs.items()}
    if sampler.name == "dpmpp_2m":
        coefs["d1_coef"] = coefs["d1_coef"].at[0].set(0.0)
        coefs["d2_coef"] = coefs["d2_coef"].at[0].set(0.0)
    return sampler.replace(timesteps=sampler.timesteps[start:], coefs=coefs)
