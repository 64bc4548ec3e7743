"""Agreement with diffusers' DDIM / DDPM / DPM-Solver++ schedulers (fixture from
tools/make_sampler_fixtures.py). Every step of every trajectory must satisfy
|ours - diffusers| <= RTOL * |diffusers| + ATOL * max(1, max |diffusers at that step|):
relative 1e-5, with an absolute floor for near-zero entries scaled to the step's magnitude
(they come out of cancellations between terms of that magnitude)."""

import json
import math
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.diffusion import samplers, schedules
from lumiere_jax.sampling import loop

RTOL = 1e-5
ATOL = 1e-6


def assert_close(actual, desired, err_msg=""):
    desired = np.asarray(desired)
    atol = ATOL * max(1.0, float(np.abs(desired).max()))
    np.testing.assert_allclose(np.asarray(actual), desired, rtol=RTOL, atol=atol, err_msg=err_msg)


FIXTURE = np.load(pathlib.Path(__file__).parents[1] / "fixtures" / "diffusers_samplers.npz")
META = json.loads(FIXTURE["meta"].tobytes().decode())
CONFIGS = META["configs"]

# The fixture's fake model: out = a(t) x + b(t) x / (1 + x^2), per-timestep float32 constants.
_A = np.array([np.float32(0.3 * math.cos(t / 137.0)) for t in range(1000)], np.float32)
_B = np.array([np.float32(0.1 * (1.0 + t / 500.0)) for t in range(1000)], np.float32)


def fake_model(x, t):
    shape = (-1,) + (1,) * (x.ndim - 1)
    a, b = jnp.asarray(_A)[t].reshape(shape), jnp.asarray(_B)[t].reshape(shape)
    return a * x + b * x / (1 + x * x)


def _sampler(cfg):
    return samplers.get_sampler(
        cfg["sampler"],
        schedules.get_schedule(cfg["schedule"]),
        cfg["num_steps"],
        timestep_spacing=cfg["spacing"],
        prediction_type=cfg["prediction_type"],
        eta=cfg["eta"],
        thresholding=cfg["thresholding"],
        sample_max_value=cfg["sample_max_value"],
        clip_sample=cfg["clip_sample"],
        clip_sample_range=cfg["clip_sample_range"],
        set_alpha_to_one=cfg["set_alpha_to_one"],
        final_sigmas_type=cfg["final_sigmas_type"],
        use_clipped_model_output=False,
    )  # what the fixture's DDIMScheduler.step did


def _name(cfg):
    flags = [k for k in ("thresholding", "set_alpha_to_one", "clip_sample") if cfg[k]]
    return "-".join(
        [
            cfg["sampler"],
            f"eta{cfg['eta']}",
            cfg["schedule"],
            cfg["spacing"],
            cfg["prediction_type"],
            f"n{cfg['num_steps']}",
            cfg["final_sigmas_type"],
        ]
        + flags
    )


def test_fixture_covers_grid():
    covered = {
        (c["sampler"], c["eta"], c["spacing"], c["prediction_type"])
        for c in CONFIGS
        if c["schedule"] == "squaredcos_cap_v2"
    }
    assert len(covered) == 4 * 3 * 3
    assert {c["schedule"] for c in CONFIGS} == set(schedules.SCHEDULES)
    assert any(c["thresholding"] for c in CONFIGS) and any(c["set_alpha_to_one"] for c in CONFIGS)


@pytest.mark.parametrize("name", schedules.SCHEDULES)
def test_alphas_cumprod_bit_exact(name):
    np.testing.assert_array_equal(
        np.asarray(schedules.get_schedule(name).alphas_cumprod), FIXTURE[f"alphas_cumprod_{name}"]
    )


@pytest.mark.parametrize("k", range(len(CONFIGS)), ids=[_name(c) for c in CONFIGS])
def test_step_api_trajectory(k):
    """Drives the step object eagerly with diffusers' noise and compares every step."""
    s = _sampler(CONFIGS[k])
    np.testing.assert_array_equal(np.asarray(s.timesteps), FIXTURE[f"timesteps_{k:03d}"])
    ref, noise = FIXTURE[f"traj_{k:03d}"], jnp.asarray(FIXTURE["noise"])
    x = jnp.asarray(FIXTURE["x_T"])
    state = s.init_state(x)
    for i, t in enumerate(np.asarray(s.timesteps)):
        out = fake_model(x, jnp.full((x.shape[0],), t, jnp.int32))
        x, state = s.step(state, i, x, out, noise[i])
        assert_close(x, ref[i + 1], err_msg=f"step {i} (t={t})")


_DETERMINISTIC = [k for k, c in enumerate(CONFIGS) if c["sampler"] != "ddpm" and c["eta"] == 0]


@pytest.mark.parametrize("k", _DETERMINISTIC, ids=[_name(CONFIGS[k]) for k in _DETERMINISTIC])
def test_jitted_sample_trajectory(k):
    cfg = CONFIGS[k]
    x0, traj = loop.sample(
        fake_model,
        jnp.asarray(FIXTURE["x_T"]),
        schedules.get_schedule(cfg["schedule"]),
        sampler=cfg["sampler"],
        num_steps=cfg["num_steps"],
        timestep_spacing=cfg["spacing"],
        prediction_type=cfg["prediction_type"],
        thresholding=cfg["thresholding"],
        sample_max_value=cfg["sample_max_value"],
        set_alpha_to_one=cfg["set_alpha_to_one"],
        final_sigmas_type=cfg["final_sigmas_type"],
        clip_sample=cfg["clip_sample"],
        clip_sample_range=cfg["clip_sample_range"],
        use_clipped_model_output=False,
        record=True,
    )
    for i, ref in enumerate(FIXTURE[f"traj_{k:03d}"]):
        assert_close(traj[i], ref, err_msg=f"trajectory entry {i}")
    np.testing.assert_array_equal(np.asarray(x0), np.asarray(traj[-1]))


def test_timesteps_match_set_timesteps():
    cases = META["timestep_cases"]
    assert len(cases) > 100
    for case in cases:
        sched = schedules.get_schedule("linear", num_train_timesteps=case["num_train_timesteps"])
        ts = schedules.timesteps(
            sched, case["num_steps"], case["spacing"], case["steps_offset"], dpm_solver=case["sampler"] == "dpmpp_2m"
        )
        assert ts.dtype == np.int32
        np.testing.assert_array_equal(ts, np.asarray(case["timesteps"]), err_msg=str(case)[:200])
