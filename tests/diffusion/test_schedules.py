import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.diffusion import schedules


def _reference_betas(name, n=1000, beta_start=0.0001, beta_end=0.02):
    """Independent float64 formulas."""
    if name == "linear":
        return np.linspace(beta_start, beta_end, n)
    if name == "scaled_linear":
        return np.linspace(beta_start**0.5, beta_end**0.5, n) ** 2
    f = lambda s: np.cos((s + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
    s = np.arange(n + 1) / n
    return np.minimum(1 - f(s[1:]) / f(s[:-1]), 0.999)


@pytest.mark.parametrize("name", schedules.SCHEDULES)
def test_schedule_shapes_dtypes_and_values(name):
    sched = schedules.get_schedule(name, num_train_timesteps=1000)
    assert sched.num_train_timesteps == 1000
    for arr in (sched.betas, sched.alphas, sched.alphas_cumprod):
        assert arr.shape == (1000,) and arr.dtype == jnp.float32
    betas = _reference_betas(name)
    np.testing.assert_allclose(np.asarray(sched.betas), betas, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(sched.alphas), 1 - betas, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(sched.alphas_cumprod), np.cumprod(1 - betas), rtol=2e-5)
    ac = np.asarray(sched.alphas_cumprod, np.float64)
    assert np.all(np.diff(np.asarray(sched.betas)) >= 0)
    assert np.all(np.diff(ac) < 0) and ac[0] < 1 and ac[-1] > 0


def test_cosine_schedule_caps_beta_and_tracks_alpha_bar():
    sched = schedules.get_schedule("squaredcos_cap_v2")
    assert float(sched.betas[-1]) == pytest.approx(0.999)
    alpha_bar = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 250, 500, 900):
        expected = alpha_bar((t + 1) / 1000) / alpha_bar(0)
        assert float(sched.alphas_cumprod[t]) == pytest.approx(expected, rel=1e-5)


def test_custom_beta_range_and_length():
    sched = schedules.get_schedule("linear", num_train_timesteps=10, beta_start=0.1, beta_end=0.2)
    np.testing.assert_allclose(np.asarray(sched.betas), np.linspace(0.1, 0.2, 10), rtol=1e-6)


def test_unknown_schedule_lists_valid_names():
    with pytest.raises(ValueError, match="squaredcos_cap_v2.*linear.*scaled_linear"):
        schedules.get_schedule("cosine")


def test_schedule_is_a_pytree_with_static_length():
    sched = schedules.get_schedule("linear")
    leaves, treedef = jax.tree.flatten(sched)
    assert len(leaves) == 3
    last = jax.jit(lambda s: s.alphas_cumprod[s.num_train_timesteps - 1])(sched)
    assert float(last) == float(sched.alphas_cumprod[-1])
    with pytest.raises(Exception):
        sched.betas = sched.alphas  # frozen


def test_snr():
    sched = schedules.get_schedule("scaled_linear")
    t = jnp.array([0, 10, 500, 999], jnp.int32)
    ac = np.asarray(sched.alphas_cumprod, np.float64)[np.asarray(t)]
    np.testing.assert_allclose(np.asarray(schedules.snr(sched, t)), ac / (1 - ac), rtol=1e-5)
    full = np.asarray(schedules.snr(sched, jnp.arange(1000)))
    assert np.all(np.diff(full) < 0)


@pytest.mark.parametrize(
    "spacing,expected",
    [
        ("leading", [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]),
        ("linspace", [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]),
        ("trailing", [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]),
    ],
)
def test_timesteps_known_values(spacing, expected):
    sched = schedules.get_schedule("linear")
    ts = schedules.timesteps(sched, 10, spacing)
    assert ts.dtype == np.int32
    np.testing.assert_array_equal(ts, expected)


def test_timesteps_rounding_and_offset():
    sched = schedules.get_schedule("linear")
    # linspace(0, 999, 7) = 0, 166.5, 333, 499.5, ...: numpy rounds half to even.
    np.testing.assert_array_equal(schedules.timesteps(sched, 7, "linspace"), [999, 832, 666, 500, 333, 166, 0])
    np.testing.assert_array_equal(schedules.timesteps(sched, 4, "leading", steps_offset=1), [751, 501, 251, 1])
    np.testing.assert_array_equal(schedules.timesteps(sched, 4, "leading", dpm_solver=True), [800, 600, 400, 200])


def test_timesteps_validation():
    sched = schedules.get_schedule("linear", num_train_timesteps=100)
    with pytest.raises(ValueError, match="num_steps"):
        schedules.timesteps(sched, 101, "leading")
    with pytest.raises(ValueError, match="num_steps"):
        schedules.timesteps(sched, 0, "leading")
    with pytest.raises(ValueError, match="leading.*linspace.*trailing"):
        schedules.timesteps(sched, 10, "uniform")
