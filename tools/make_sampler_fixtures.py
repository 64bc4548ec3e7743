"""Records diffusers sampler trajectories as the reference for tests/diffusion/test_diffusers_agreement.py.

Not a dependency of the package: run once in a throwaway virtualenv outside the repo.
The committed tests/fixtures/diffusers_samplers.npz was made with Python 3.11.7,
torch 2.13.0+cpu, diffusers 0.42.1, numpy 2.4.6:

    python3 -m venv /tmp/dvenv
    /tmp/dvenv/bin/pip install torch==2.13.0 diffusers==0.42.1 numpy
    /tmp/dvenv/bin/python tools/make_sampler_fixtures.py tests/fixtures/diffusers_samplers.npz

The fake model is closed-form and uses only + - * / on x, with per-timestep float32 constants
rounded from float64, so numpy / JAX reproduce it bit for bit (see ``fake_model_coefs``):

    out = a(t) * x + b(t) * x / (1 + x * x),  a(t) = 0.3 cos(t / 137),  b(t) = 0.1 (1 + t / 500).

Noise: one bank ``noise`` [MAX_STEPS, *shape] is fed at step i to every stochastic sampler:
to DDIMScheduler.step as ``variance_noise`` and to DDPMScheduler.step by replacing the
``randn_tensor`` it draws from (only called when t > 0).

Contents: ``x_T``, ``noise``, ``alphas_cumprod_<schedule>``, ``traj_<k>`` [n + 1, *shape] and
``timesteps_<k>`` for each trajectory config k, and ``meta``: UTF-8 JSON bytes (uint8) with the trajectory
configs and the diffusers ``set_timesteps`` results for a grid of (scheduler, spacing, n).
"""

from __future__ import annotations

import json
import math
import sys

import diffusers
import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from diffusers.schedulers import scheduling_ddpm

SHAPE = (2, 2, 3, 4, 3)  # [B, T, H, W, C]
MAX_STEPS = 16
SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear")
SPACINGS = ("leading", "linspace", "trailing")
PREDICTIONS = ("epsilon", "v_prediction", "sample")
SAMPLER_VARIANTS = (("ddim", 0.0), ("ddim", 1.0), ("dpmpp_2m", 0.0), ("ddpm", 0.0))


def fake_model_coefs(t: int) -> tuple[np.float32, np.float32]:
    return np.float32(0.3 * math.cos(t / 137.0)), np.float32(0.1 * (1.0 + t / 500.0))


def fake_model(x: torch.Tensor, t: int) -> torch.Tensor:
    a, b = (torch.tensor(c) for c in fake_model_coefs(t))
    return a * x + b * x / (1 + x * x)


def config(sampler, eta, schedule, spacing, prediction, num_steps=7, **extra):
    cfg = dict(
        sampler=sampler,
        eta=eta,
        schedule=schedule,
        spacing=spacing,
        prediction_type=prediction,
        num_steps=num_steps,
        thresholding=False,
        sample_max_value=1.0,
        set_alpha_to_one=False,
        clip_sample=False,
        clip_sample_range=1.0,
        final_sigmas_type="zero",
    )
    cfg.update(extra)
    return cfg


def trajectory_configs() -> list[dict]:
    cfgs = []
    for sampler, eta in SAMPLER_VARIANTS:
        for pred in PREDICTIONS:
            for spacing in SPACINGS:
                cfgs.append(config(sampler, eta, "squaredcos_cap_v2", spacing, pred))
            cfgs.append(config(sampler, eta, "linear", "linspace", pred))
            cfgs.append(config(sampler, eta, "scaled_linear", "trailing", pred))
        cfgs.append(
            config(sampler, eta, "squaredcos_cap_v2", "leading", "epsilon", thresholding=True, sample_max_value=3.0)
        )
        cfgs.append(
            config(sampler, eta, "scaled_linear", "trailing", "v_prediction", thresholding=True, sample_max_value=1.5)
        )
    for eta in (0.0, 1.0):
        cfgs.append(config("ddim", eta, "squaredcos_cap_v2", "leading", "epsilon", set_alpha_to_one=True))
        cfgs.append(config("ddim", eta, "linear", "trailing", "v_prediction", set_alpha_to_one=True))
    for sampler, eta in (("ddim", 0.0), ("ddpm", 0.0)):
        cfgs.append(
            config(sampler, eta, "squaredcos_cap_v2", "leading", "epsilon", clip_sample=True, clip_sample_range=1.5)
        )
    for n in (7, 16):
        cfgs.append(
            config(
                "dpmpp_2m", 0.0, "squaredcos_cap_v2", "linspace", "epsilon", num_steps=n, final_sigmas_type="sigma_min"
            )
        )
    cfgs.append(config("dpmpp_2m", 0.0, "linear", "leading", "v_prediction", num_steps=16))
    return cfgs


def make_scheduler(cfg: dict):
    common = dict(
        num_train_timesteps=1000,
        beta_schedule=cfg["schedule"],
        prediction_type=cfg["prediction_type"],
        thresholding=cfg["thresholding"],
        dynamic_thresholding_ratio=0.995,
        sample_max_value=cfg["sample_max_value"],
        timestep_spacing=cfg["spacing"],
    )
    if cfg["sampler"] == "ddim":
        return DDIMScheduler(
            clip_sample=cfg["clip_sample"],
            clip_sample_range=cfg["clip_sample_range"],
            set_alpha_to_one=cfg["set_alpha_to_one"],
            **common,
        )
    if cfg["sampler"] == "ddpm":
        return DDPMScheduler(clip_sample=cfg["clip_sample"], clip_sample_range=cfg["clip_sample_range"], **common)
    return DPMSolverMultistepScheduler(
        solver_order=2,
        algorithm_type="dpmsolver++",
        lower_order_final=True,
        final_sigmas_type=cfg["final_sigmas_type"],
        **common,
    )


def run(cfg: dict, x_T: torch.Tensor, bank: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    sched = make_scheduler(cfg)
    sched.set_timesteps(cfg["num_steps"])
    step_index = [0]

    def drawn_noise(shape, generator=None, device=None, dtype=None, **_):
        assert tuple(shape) == tuple(x_T.shape)
        return bank[step_index[0]].clone()

    scheduling_ddpm.randn_tensor = drawn_noise
    x, traj = x_T.clone(), [x_T.numpy().copy()]
    for i, t in enumerate(sched.timesteps):
        step_index[0] = i
        out = fake_model(x, int(t))
        if cfg["sampler"] == "ddim":
            noise = bank[i] if cfg["eta"] > 0 else None
            x = sched.step(out, t, x, eta=cfg["eta"], variance_noise=noise).prev_sample
        else:
            x = sched.step(out, t, x).prev_sample
        traj.append(x.numpy().copy())
    return sched.timesteps.numpy().astype(np.int32), np.stack(traj).astype(np.float32)


def timestep_cases() -> list[dict]:
    cases = []
    classes = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler, "dpmpp_2m": DPMSolverMultistepScheduler}
    for n_train in (1000, 250):
        for name, cls in classes.items():
            for spacing in SPACINGS:
                for offset in (0, 1) if spacing == "leading" else (0,):
                    for n in sorted({1, 2, 3, 7, 10, 25, 50, 99, 333, 999, 1000, n_train - 1, n_train}):
                        if n > n_train:
                            continue
                        s = cls(num_train_timesteps=n_train, timestep_spacing=spacing, steps_offset=offset)
                        s.set_timesteps(n)
                        cases.append(
                            dict(
                                sampler=name,
                                num_train_timesteps=n_train,
                                spacing=spacing,
                                steps_offset=offset,
                                num_steps=n,
                                timesteps=s.timesteps.tolist(),
                            )
                        )
    return cases


def main(path: str) -> None:
    rng = np.random.default_rng(0)
    x_T = torch.from_numpy(rng.standard_normal(SHAPE).astype(np.float32))
    bank = torch.from_numpy(rng.standard_normal((MAX_STEPS,) + SHAPE).astype(np.float32))
    arrays = {"x_T": x_T.numpy(), "noise": bank.numpy()}
    for name in SCHEDULES:
        arrays[f"alphas_cumprod_{name}"] = DDIMScheduler(beta_schedule=name).alphas_cumprod.numpy()
    cfgs = trajectory_configs()
    for k, cfg in enumerate(cfgs):
        arrays[f"timesteps_{k:03d}"], arrays[f"traj_{k:03d}"] = run(cfg, x_T, bank)
    meta = dict(
        diffusers=diffusers.__version__,
        torch=torch.__version__,
        shape=SHAPE,
        configs=cfgs,
        timestep_cases=timestep_cases(),
    )
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez_compressed(path, **arrays)
    print(f"wrote {len(cfgs)} trajectories to {path}")


if __name__ == "__main__":
    main(sys.argv[1])
