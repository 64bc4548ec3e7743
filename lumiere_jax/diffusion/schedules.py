"""Noise schedules and inference timestep spacings, following diffusers' conventions.

The schedules are built in numpy with the same float32 arithmetic as diffusers
(``torch.linspace`` in float32, ``torch.cumprod`` with a float64 accumulator), so
``alphas_cumprod`` is bit-identical to ``DDIMScheduler(...).alphas_cumprod``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear")
SPACINGS = ("leading", "linspace", "trailing")


@struct.dataclass
class Schedule:
    """A discrete variance-preserving schedule; arrays are float32 of shape [num_train_timesteps]."""

    betas: jax.Array
    alphas: jax.Array
    alphas_cumprod: jax.Array
    num_train_timesteps: int = struct.field(pytree_node=False)


def _torch_linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps, dtype=torch.float32)`` reproduced bit for bit."""
    start32, end32 = np.float32(start), np.float32(end)
    step = (end32 - start32) / np.float32(steps - 1) if steps > 1 else np.float32(0)
    i = np.arange(steps, dtype=np.float64)
    out = np.where(
        i < steps // 2,
        np.float64(start32) + np.float64(step) * i,
        np.float64(end32) - np.float64(step) * (steps - 1 - i),
    )
    return out.astype(np.float32)


def _cosine_betas(num_train_timesteps: int, max_beta: float = 0.999) -> np.ndarray:
    """Betas discretising alpha_bar(t) = cos((t + 0.008) / 1.008 * pi / 2)^2 (Nichol & Dhariwal)."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    n = num_train_timesteps
    betas = [min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), max_beta) for i in range(n)]
    return np.asarray(betas, dtype=np.float32)


def get_schedule(
    name: str,
    num_train_timesteps: int = 1000,
    beta_start: float = 0.0001,
    beta_end: float = 0.02,
) -> Schedule:
    """Builds the named schedule (diffusers' ``beta_schedule`` names)."""
    if name == "squaredcos_cap_v2":
        betas = _cosine_betas(num_train_timesteps)
    elif name == "linear":
        betas = _torch_linspace_f32(beta_start, beta_end, num_train_timesteps)
    elif name == "scaled_linear":
        root = _torch_linspace_f32(beta_start**0.5, beta_end**0.5, num_train_timesteps)
        betas = root * root
    else:
        raise ValueError(f"Unknown schedule {name!r}; valid names: {', '.join(SCHEDULES)}")
    alphas = np.float32(1.0) - betas
    alphas_cumprod = np.cumprod(alphas.astype(np.float64)).astype(np.float32)
    return Schedule(
        betas=jnp.asarray(betas),
        alphas=jnp.asarray(alphas),
        alphas_cumprod=jnp.asarray(alphas_cumprod),
        num_train_timesteps=num_train_timesteps,
    )


def snr(sched: Schedule, t: jax.Array) -> jax.Array:
    """Signal-to-noise ratio alpha_bar_t / (1 - alpha_bar_t) at integer timesteps ``t``."""
    a = sched.alphas_cumprod[t]
    return a / (1.0 - a)


def timesteps(
    sched: Schedule,
    num_steps: int,
    spacing: str = "leading",
    steps_offset: int = 0,
    dpm_solver: bool = False,
) -> np.ndarray:
    """Inference timesteps (descending, int32) exactly as diffusers' ``set_timesteps``.

    ``dpm_solver=False`` follows DDPMScheduler / DDIMScheduler; ``dpm_solver=True`` follows
    DPMSolverMultistepScheduler, which spaces ``num_steps + 1`` points and drops the last one for
    ``linspace`` and ``leading``. See Table 2 of arXiv:2305.08891 for the spacings.
    """
    n_train = sched.num_train_timesteps
    if spacing not in SPACINGS:
        raise ValueError(f"Unknown timestep spacing {spacing!r}; valid spacings: {', '.join(SPACINGS)}")
    if not 1 <= num_steps <= n_train:
        raise ValueError(f"num_steps must be in [1, num_train_timesteps={n_train}], got {num_steps}")
    extra = 1 if dpm_solver else 0
    if spacing == "linspace":
        ts = np.linspace(0, n_train - 1, num_steps + extra).round()[::-1][:num_steps]
    elif spacing == "leading":
        step_ratio = n_train // (num_steps + extra)
        ts = (np.arange(0, num_steps + extra) * step_ratio).round()[::-1][:num_steps] + steps_offset
    else:
        ts = np.round(np.arange(n_train, 0, -n_train / num_steps)) - 1
    return ts.astype(np.int64).astype(np.int32)
