"""Learned-range variance (DeepFloyd IF): the DDPM sampler against diffusers'
DDPMScheduler(variance_type="learned_range") trajectories (fixture from tools/make_if_fixtures.py),
and the hybrid loss's variational-bound term."""

import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from lumiere_jax.diffusion import losses, samplers, schedules
from tests.diffusion.test_diffusers_agreement import assert_close

FIXTURE = np.load(pathlib.Path(__file__).parents[1] / "fixtures" / "learned_range_ddpm.npz")
CONFIGS = json.loads(FIXTURE["meta"].tobytes().decode())["configs"]
_COEFS = np.array(
    [
        [
            np.float32(0.3 * math.cos(t / 137.0)),
            np.float32(0.1 * (1.0 + t / 500.0)),
            np.float32(0.9 * math.cos(t / 91.0)),
        ]
        for t in range(1000)
    ],
    np.float32,
)


def fake_output(x, t):
    a, b, d = (jnp.asarray(_COEFS[t, i]) for i in range(3))
    r = x / (1 + x * x)
    return jnp.concatenate([a * x + b * r, d * r], axis=-1)


nhwc = lambda a: jnp.asarray(np.moveaxis(np.asarray(a), -3, -1))


@pytest.mark.parametrize("k", range(len(CONFIGS)))
def test_learned_range_ddpm_matches_diffusers(k):
    cfg = CONFIGS[k]
    s = samplers.get_sampler(
        "ddpm",
        schedules.get_schedule(cfg["schedule"]),
        cfg["num_steps"],
        timestep_spacing=cfg["spacing"],
        thresholding=cfg["thresholding"],
        dynamic_thresholding_ratio=cfg["dynamic_thresholding_ratio"],
        sample_max_value=cfg["sample_max_value"],
        variance_type="learned_range",
    )
    np.testing.assert_array_equal(np.asarray(s.timesteps), FIXTURE[f"timesteps_{k:03d}"])
    ref, noise = FIXTURE[f"traj_{k:03d}"], nhwc(FIXTURE["noise"])
    x = nhwc(FIXTURE["x_T"])
    fixed = samplers.get_sampler(
        "ddpm", schedules.get_schedule(cfg["schedule"]), cfg["num_steps"], timestep_spacing=cfg["spacing"]
    )
    for i, t in enumerate(np.asarray(s.timesteps)):
        out = fake_output(x, int(t))
        x_next, _ = s.step((), i, x, out, noise[i])
        assert_close(x_next, nhwc(ref[i + 1]), err_msg=f"step {i} (t={t})")
        if 0 < i < len(s.timesteps) - 1:  # the learned variance changes the step
            x_fixed, _ = fixed.step((), i, x, out, noise[i])
            assert float(jnp.max(jnp.abs(x_fixed - x_next))) > 1e-4
        x = x_next


def test_learned_range_validation():
    sched = schedules.get_schedule("squaredcos_cap_v2")
    with pytest.raises(ValueError, match="only used by 'ddpm'"):
        samplers.get_sampler("ddim", sched, 4, variance_type="learned_range")
    with pytest.raises(ValueError, match="Unknown variance_type"):
        samplers.get_sampler("ddpm", sched, 4, variance_type="learned")
    s = samplers.get_sampler("ddpm", sched, 4, variance_type="learned_range")
    x = jnp.zeros((1, 2, 2, 3))
    with pytest.raises(ValueError, match="2 \\* 3 channels"):
        s.step((), 0, x, x, x)


def _case(seed=0, shape=(4, 3, 4, 3)):
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    x0 = jnp.clip(jax.random.normal(k[0], shape) * 0.5, -1, 1)
    noise = jax.random.normal(k[1], shape)
    out = jax.random.normal(k[2], shape[:-1] + (2 * shape[-1],)) * 0.5
    return x0, noise, out


def test_vlb_against_numpy_reference():
    sched = schedules.get_schedule("squaredcos_cap_v2")
    x0, noise, out = _case()
    t = jnp.array([0, 1, 500, 999], jnp.int32)
    vlb = np.asarray(losses.learned_range_vlb(out, x0, noise, t, sched))
    ac = np.asarray(sched.alphas_cumprod, np.float64)
    betas = np.asarray(sched.betas, np.float64)
    post = betas * (1 - np.append(1, ac[:-1])) / (1 - ac)
    post_log = np.log(np.append(post[1], post[1:]))
    x0n, nn_, on = (np.asarray(a, np.float64) for a in (x0, noise, out))
    for b, tb in enumerate(np.asarray(t)):
        a_t, a_prev = ac[tb], (ac[tb - 1] if tb > 0 else 1.0)
        xt = math.sqrt(a_t) * x0n[b] + math.sqrt(1 - a_t) * nn_[b]
        x0p = (xt - math.sqrt(1 - a_t) * on[b, ..., :3]) / math.sqrt(a_t)
        c1, c2 = betas[tb] * math.sqrt(a_prev) / (1 - a_t), (1 - a_prev) * math.sqrt(1 - betas[tb]) / (1 - a_t)
        frac = (on[b, ..., 3:] + 1) / 2
        logv = frac * np.log(betas[tb]) + (1 - frac) * post_log[tb]
        mean = c1 * x0p + c2 * xt
        if tb == 0:
            sd = np.exp(0.5 * logv)
            lo, hi = (x0n[b] - mean - 1 / 255) / sd, (x0n[b] - mean + 1 / 255) / sd
            p = np.where(
                x0n[b] < -0.999,
                stats.norm.cdf(hi),  # edge bins take the tails
                np.where(x0n[b] > 0.999, stats.norm.sf(lo), stats.norm.cdf(hi) - stats.norm.cdf(lo)),
            )
            ref = -np.log(np.maximum(p, 1e-12)) / math.log(2)
        else:
            tm = c1 * x0n[b] + c2 * xt
            ref = (
                0.5
                * (-1 + logv - post_log[tb] + np.exp(post_log[tb] - logv) + (tm - mean) ** 2 * np.exp(-logv))
                / math.log(2)
            )
        np.testing.assert_allclose(vlb[b], ref, rtol=2e-3, atol=2e-4, err_msg=f"t={tb}")


def test_vlb_zero_at_true_posterior_and_hybrid_gradients():
    sched = schedules.get_schedule("squaredcos_cap_v2")
    x0, noise, out = _case(1)
    t = jnp.array([3, 200, 600, 998], jnp.int32)
    # eps = true noise and v = -1 (the posterior variance): the KL vanishes.
    exact = jnp.concatenate([noise, -jnp.ones_like(noise)], axis=-1)
    np.testing.assert_allclose(np.asarray(losses.learned_range_vlb(exact, x0, noise, t, sched)), 0.0, atol=2e-3)
    hybrid = lambda o: losses.diffusion_loss(o, x0, noise, t, sched, variance_type="learned_range")
    simple = lambda o: losses.diffusion_loss(o, x0, noise, t, sched)
    g_h, g_s = jax.grad(hybrid)(out), jax.grad(simple)(out)
    # The prediction half gets only the MSE gradient (stop-gradient on the mean) ...
    np.testing.assert_allclose(np.asarray(g_h[..., :3]), np.asarray(g_s[..., :3]), rtol=1e-6, atol=1e-9)
    # ... and the variance half trains through the VLB term alone.
    assert float(jnp.max(jnp.abs(g_s[..., 3:]))) == 0.0 and float(jnp.max(jnp.abs(g_h[..., 3:]))) > 0
    vlb = float(jnp.mean(losses.learned_range_vlb(out, x0, noise, t, sched)))
    np.testing.assert_allclose(float(hybrid(out)), float(simple(out)) + losses.VLB_WEIGHT * vlb, rtol=1e-5)
