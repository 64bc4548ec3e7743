import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.diffusion import losses, noising, schedules

SCHED = schedules.get_schedule("scaled_linear")
SHAPE = (4, 3, 2, 2, 3)
K = jax.random.split(jax.random.key(0), 3)
X0 = jax.random.normal(K[0], SHAPE)
NOISE = jax.random.normal(K[1], SHAPE)
T = jnp.array([0, 50, 400, 999], jnp.int32)


def _np_alpha_sigma(t):
    a = np.asarray(SCHED.alphas_cumprod, np.float64)[np.asarray(t)].reshape(-1, 1, 1, 1, 1)
    return a**0.5, (1 - a) ** 0.5


def test_add_noise_and_targets_match_numpy():
    alpha, sigma = _np_alpha_sigma(T)
    x0, eps = np.asarray(X0, np.float64), np.asarray(NOISE, np.float64)
    np.testing.assert_allclose(
        np.asarray(noising.add_noise(SCHED, X0, NOISE, T)), alpha * x0 + sigma * eps, rtol=1e-5, atol=1e-6
    )
    expected = {"epsilon": eps, "sample": x0, "v_prediction": alpha * eps - sigma * x0}
    for p, target in expected.items():
        np.testing.assert_allclose(np.asarray(noising.get_target(SCHED, X0, NOISE, T, p)), target, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prediction_type", noising.PREDICTION_TYPES)
def test_conversions_round_trip(prediction_type):
    x_t = noising.add_noise(SCHED, X0, NOISE, T)
    target = noising.get_target(SCHED, X0, NOISE, T, prediction_type)
    x0_hat = noising.predict_x0(SCHED, x_t, target, T, prediction_type)
    eps_hat = noising.predict_eps(SCHED, x_t, target, T, prediction_type)
    # Conversions through 1/alpha (t=999) or 1/sigma (t=0) amplify float32 rounding.
    ok = (prediction_type != "epsilon") | (np.asarray(T) < 999)
    np.testing.assert_allclose(np.asarray(x0_hat)[ok], np.asarray(X0)[ok], atol=2e-4)
    ok_eps = (prediction_type != "sample") | (np.asarray(T) > 0)
    np.testing.assert_allclose(np.asarray(eps_hat)[ok_eps], np.asarray(NOISE)[ok_eps], atol=2e-4)


@pytest.mark.parametrize("prediction_type", noising.PREDICTION_TYPES)
@pytest.mark.parametrize("weighting", losses.SNR_WEIGHTINGS)
def test_oracle_loss_is_zero(prediction_type, weighting):
    target = noising.get_target(SCHED, X0, NOISE, T, prediction_type)
    loss = losses.diffusion_loss(target, X0, NOISE, T, SCHED, prediction_type, weighting)
    assert loss.shape == () and float(loss) == 0.0


def test_unweighted_loss_is_mse():
    out = jax.random.normal(K[2], SHAPE)
    loss = losses.diffusion_loss(out, X0, NOISE, T, SCHED, "epsilon")
    np.testing.assert_allclose(float(loss), np.mean((np.asarray(out) - np.asarray(NOISE)) ** 2), rtol=1e-6)


@pytest.mark.parametrize("prediction_type", noising.PREDICTION_TYPES)
def test_min_snr_weighting_is_min_snr_gamma_in_x0_space(prediction_type):
    """Min-SNR-gamma: every prediction type's weighted loss = mean_b min(SNR, gamma) * MSE(x0)."""
    t = jnp.array([30, 200, 500, 800], jnp.int32)
    gamma = 5.0
    out = jax.random.normal(K[2], SHAPE)
    x_t = noising.add_noise(SCHED, X0, NOISE, t)
    x0_hat = noising.predict_x0(SCHED, x_t, out, t, prediction_type)
    x0_mse = np.mean((np.asarray(x0_hat, np.float64) - np.asarray(X0)) ** 2, axis=(1, 2, 3, 4))
    alpha, sigma = _np_alpha_sigma(t)
    snr = (alpha**2 / sigma**2).ravel()
    assert snr.min() < gamma < snr.max()
    loss = losses.diffusion_loss(out, X0, NOISE, t, SCHED, prediction_type, "min_snr", gamma)
    np.testing.assert_allclose(float(loss), np.mean(np.minimum(snr, gamma) * x0_mse), rtol=1e-4)


def test_snr_weights_formula():
    s = np.asarray(schedules.snr(SCHED, T), np.float64)
    w = {p: np.asarray(losses.snr_weights(SCHED, T, p, "min_snr", 2.0)) for p in noising.PREDICTION_TYPES}
    np.testing.assert_allclose(w["epsilon"], np.minimum(s, 2.0) / s, rtol=1e-5)
    np.testing.assert_allclose(w["v_prediction"], np.minimum(s, 2.0) / (s + 1), rtol=1e-5)
    np.testing.assert_allclose(w["sample"], np.minimum(s, 2.0), rtol=1e-5)
    with pytest.raises(ValueError, match="snr_weighting"):
        losses.snr_weights(SCHED, T, "epsilon", "p2")


def test_mask_excludes_frames():
    mask = jnp.array([1, 0, 1], jnp.float32).reshape(1, 3, 1, 1, 1)
    out = NOISE.at[:, 1].add(100.0).at[:, 0].add(1.0)
    loss = losses.diffusion_loss(out, X0, NOISE, T, SCHED, "epsilon", mask=mask)
    np.testing.assert_allclose(float(loss), 0.5, rtol=1e-6)  # frame 0 errs by 1, frame 2 by 0
    empty = losses.diffusion_loss(out, X0, NOISE, T, SCHED, "epsilon", mask=jnp.zeros((4, 1, 1, 1, 1)))
    assert float(empty) == 0.0


def test_learned_variance_output_uses_first_half():
    target = noising.get_target(SCHED, X0, NOISE, T, "epsilon")
    out = jnp.concatenate([target, jnp.ones_like(target)], axis=-1)
    assert float(losses.diffusion_loss(out, X0, NOISE, T, SCHED, "epsilon")) == 0.0


def test_sample_timesteps():
    t = losses.sample_timesteps(jax.random.key(3), 4096, SCHED)
    assert t.shape == (4096,) and t.dtype == jnp.int32
    assert int(t.min()) == 0 and int(t.max()) == SCHED.num_train_timesteps - 1
    assert 400 < float(t.mean()) < 600


def test_loss_rejects_unknown_prediction_type():
    with pytest.raises(ValueError, match="prediction_type"):
        losses.diffusion_loss(NOISE, X0, NOISE, T, SCHED, "x0")


def test_logit_normal_timesteps_follow_their_density():
    t = losses.sample_timesteps(jax.random.key(4), 8192, SCHED, "logit_normal", 1.0, 1.0)
    n = SCHED.num_train_timesteps
    assert t.dtype == jnp.int32 and int(t.min()) >= 0 and int(t.max()) <= n - 1
    # median of sigmoid(1 + n) is sigmoid(1) = 0.731; P(t / T > 0.5) = P(n > -1) = 0.841
    assert abs(float(jnp.median(t)) / n - 0.731) < 0.02
    assert abs(float(jnp.mean(t >= n // 2)) - 0.841) < 0.02


def test_logit_normal_mixture_timesteps():
    """A fraction `mixture_weight` of the examples from the second component; logit_normal's own draws
    are unchanged by the option (the shipped recipe reproduces)."""
    n = SCHED.num_train_timesteps
    t = losses.sample_timesteps(jax.random.key(5), 8192, SCHED, "logit_normal_mixture", -6.0, 0.5, 6.0, 0.25)
    assert abs(float(jnp.mean(t > n // 2)) - 0.25) < 0.02
    assert float(jnp.mean((t > 50) & (t < n - 50))) < 0.001  # every example at one end or the other
    plain = losses.sample_timesteps(jax.random.key(6), 64, SCHED, "logit_normal", 1.0, 1.0)
    want = jax.nn.sigmoid(1.0 + jax.random.normal(jax.random.key(6), (64,), jnp.float32))
    np.testing.assert_array_equal(plain, jnp.clip(jnp.floor(want * n), 0, n - 1).astype(jnp.int32))
    with pytest.raises(ValueError, match="mixture weight must be in \\[0, 1\\], got 1.5"):
        losses.sample_timesteps(jax.random.key(0), 4, SCHED, "logit_normal_mixture", 0.0, 1.0, 2.0, 1.5)


def test_unknown_timestep_sampling_is_refused():
    with pytest.raises(ValueError, match="'beta'.*uniform"):
        losses.sample_timesteps(jax.random.key(0), 4, SCHED, "beta")
    with pytest.raises(ValueError, match="logit_std > 0"):
        losses.sample_timesteps(jax.random.key(0), 4, SCHED, "logit_normal", 0.0, 0.0)
