import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.diffusion import noising, samplers, schedules, thresholding
from lumiere_jax.sampling import loop

SHAPE = (2, 3, 4, 4, 3)  # [B, T, H, W, C]
SCHED = schedules.get_schedule("squaredcos_cap_v2")
X0 = jax.random.uniform(jax.random.key(1), SHAPE, minval=-1.0, maxval=1.0)
X_T = jax.random.normal(jax.random.key(2), SHAPE)


def _oracle(prediction_type):
    """Model that knows x0: returns the exact target of its prediction type for (x_t, t)."""

    def model_fn(x, t):
        a = SCHED.alphas_cumprod[t].reshape(-1, 1, 1, 1, 1)
        eps = (x - a**0.5 * X0) / (1 - a) ** 0.5
        return noising.get_target(SCHED, X0, eps, t, prediction_type)

    return model_fn


ORACLES = {p: _oracle(p) for p in noising.PREDICTION_TYPES}


def linear_model(x, t):
    return 0.5 * x + 1e-3 * t.astype(x.dtype).reshape(-1, 1, 1, 1, 1)


def learned_variance_model(x, t):
    return jnp.concatenate([linear_model(x, t), jnp.full_like(x, 1e3)], axis=-1)


@pytest.mark.parametrize("sampler", samplers.SAMPLERS)
@pytest.mark.parametrize("prediction_type", noising.PREDICTION_TYPES)
def test_oracle_model_recovers_x0(sampler, prediction_type):
    """DDIM (eta=0), DPM-Solver++ and DDPM end exactly at the oracle's x0 (last prev alpha = 1)."""
    out = loop.sample(
        ORACLES[prediction_type],
        X_T,
        SCHED,
        sampler=sampler,
        num_steps=5,
        prediction_type=prediction_type,
        set_alpha_to_one=sampler == "ddim",
        key=jax.random.key(0) if sampler == "ddpm" else None,
    )
    np.testing.assert_allclose(np.asarray(out), np.asarray(X0), atol=2e-4)


def test_ddim_without_alpha_to_one_ends_at_first_train_step():
    """set_alpha_to_one=False: the last step (t=0) lands on alpha_bar_0 instead of 1."""
    _, traj = loop.sample(ORACLES["epsilon"], X_T, SCHED, sampler="ddim", num_steps=5, record=True)
    a0 = float(SCHED.alphas_cumprod[0])
    eps_hat = (np.asarray(traj[-2]) - a0**0.5 * np.asarray(X0)) / (1 - a0) ** 0.5
    expected = a0**0.5 * np.asarray(X0) + (1 - a0) ** 0.5 * eps_hat
    np.testing.assert_allclose(np.asarray(traj[-1]), expected, atol=1e-5)
    assert np.abs(np.asarray(traj[-1]) - np.asarray(X0)).max() > 1e-3


def test_dynamic_threshold_matches_numpy_definition():
    scales = np.array([0.5, 1.2, 10.0], np.float32).reshape(-1, 1, 1, 1, 1)
    x0 = np.asarray(jax.random.normal(jax.random.key(3), (3, 2, 4, 4, 3))) * scales
    ratio, max_value = 0.9, 2.5
    flat = np.abs(x0.reshape(3, -1)).astype(np.float64)
    q = np.quantile(flat, ratio, axis=1)
    s = np.clip(q, 1.0, max_value).reshape(-1, 1, 1, 1, 1)
    assert q[0] < 1.0 < q[1] < max_value < q[2]  # all three branches exercised
    expected = np.clip(x0, -s, s) / s
    got = thresholding.dynamic_threshold(jnp.asarray(x0), ratio, max_value)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6, atol=1e-6)


def test_static_clip():
    x = jnp.array([-3.0, -1.0, 0.25, 2.0])
    np.testing.assert_array_equal(np.asarray(thresholding.static_clip(x, 1.5)), [-1.5, -1.0, 0.25, 1.5])


def test_ddpm_determinism_and_key_dependence():
    run = lambda k: loop.sample(
        linear_model,
        X_T,
        SCHED,
        sampler="ddpm",
        num_steps=4,  # noqa
        key=jax.random.key(k),
    )
    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.abs(np.asarray(a) - np.asarray(c)).max() > 1e-2


def test_ddim_eta_noise_is_per_sample_fold_in_per_step():
    """One key convention: sample b's step-i noise is normal(fold_in(k_b, i)) with k_b its own key
    (`key` is split into one per sample), so a sample's trajectory does not depend on the batch."""
    key = jax.random.key(7)
    _, traj = loop.sample(linear_model, X_T, SCHED, sampler="ddim", num_steps=3, eta=0.7, key=key, record=True)
    keys = jax.random.split(key, X_T.shape[0])
    s = samplers.get_sampler("ddim", SCHED, 3, eta=0.7)
    x, state = X_T, s.init_state(X_T)
    for i, t in enumerate(np.asarray(s.timesteps)):
        noise = jnp.stack([jax.random.normal(jax.random.fold_in(k, i), SHAPE[1:]) for k in keys])
        x, state = s.step(state, i, x, linear_model(x, jnp.full((2,), t, jnp.int32)), noise)
        np.testing.assert_allclose(np.asarray(traj[i + 1]), np.asarray(x), rtol=1e-5, atol=1e-5)
    alone = loop.sample(linear_model, X_T[1:], SCHED, sampler="ddim", num_steps=3, eta=0.7, keys=keys[1:])
    np.testing.assert_allclose(np.asarray(alone), np.asarray(traj[-1][1:]), rtol=1e-5, atol=1e-6)


def test_trajectory_shape_and_endpoints():
    x0, traj = loop.sample(
        linear_model, X_T, SCHED, sampler="dpmpp_2m", num_steps=4, timestep_spacing="trailing", record=True
    )
    assert traj.shape == (5,) + SHAPE
    np.testing.assert_array_equal(np.asarray(traj[0]), np.asarray(X_T))
    np.testing.assert_array_equal(np.asarray(traj[-1]), np.asarray(x0))


@pytest.mark.parametrize("sampler", samplers.SAMPLERS)
def test_learned_variance_channels_are_ignored(sampler):
    key = jax.random.key(0) if sampler == "ddpm" else None
    ref = loop.sample(linear_model, X_T, SCHED, sampler=sampler, num_steps=3, key=key)
    got = loop.sample(learned_variance_model, X_T, SCHED, sampler=sampler, num_steps=3, key=key)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(ref))


def test_sample_inside_outer_jit_with_traced_closure():
    """model_fn may close over tracers of an enclosing jit (e.g. model params)."""

    @jax.jit
    def run(scale, key):
        return loop.sample(lambda x, t: scale * x, X_T, SCHED, sampler="ddpm", num_steps=3, key=key)

    eager = loop.sample(lambda x, t: 0.5 * x, X_T, SCHED, sampler="ddpm", num_steps=3, key=jax.random.key(0))
    np.testing.assert_allclose(np.asarray(run(0.5, jax.random.key(0))), np.asarray(eager), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(run(0.9, jax.random.key(0))), np.asarray(eager))


def test_keeps_input_dtype():
    out = loop.sample(linear_model, X_T.astype(jnp.bfloat16), SCHED, num_steps=2)
    assert out.dtype == jnp.bfloat16


def test_needs_key_for_noise():
    for kwargs in (dict(sampler="ddpm"), dict(sampler="ddim", eta=0.5)):
        with pytest.raises(ValueError, match="key"):
            loop.sample(linear_model, X_T, SCHED, num_steps=2, **kwargs)
    s = samplers.get_sampler("ddpm", SCHED, 2)
    with pytest.raises(ValueError, match="noise"):
        s.step(s.init_state(X_T), 0, X_T, X_T, None)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(sampler="euler"), "ddim.*dpmpp_2m.*ddpm"),
        (dict(prediction_type="eps"), "epsilon.*v_prediction.*sample"),
        (dict(timestep_spacing="uniform"), "leading.*linspace.*trailing"),
        (dict(num_steps=1001), "num_steps"),
        (dict(sampler="dpmpp_2m", eta=0.5), "eta"),
        (dict(sampler="ddpm", set_alpha_to_one=True), "set_alpha_to_one"),
        (dict(sampler="dpmpp_2m", clip_sample=True), "clip_sample"),
        (dict(sampler="dpmpp_2m", final_sigmas_type="max"), "final_sigmas_type"),
    ],
)
def test_invalid_options(kwargs, match):
    kwargs = dict(dict(sampler="ddim", num_steps=4), **kwargs)
    with pytest.raises(ValueError, match=match):
        loop.sample(linear_model, X_T, SCHED, **kwargs)


def test_step_object_supports_per_window_steps():
    """One step applied to two halves separately equals one step on the whole (pointwise ops)."""
    s = samplers.get_sampler("dpmpp_2m", SCHED, 4)
    t = jnp.full((2,), s.timesteps[0], jnp.int32)
    x, state = X_T, s.init_state(X_T)
    whole, _ = s.step(state, 0, x, linear_model(x, t), None)
    halves = [
        s.step(state[:, sl], 0, x[:, sl], linear_model(x[:, sl], t), None)[0] for sl in (slice(0, 2), slice(2, 3))
    ]
    np.testing.assert_array_equal(np.asarray(jnp.concatenate(halves, axis=1)), np.asarray(whole))


# -- clamped x0 and DDIM's direction term (the white-video bug of the old default) -----------------
_COLOURS = jnp.array([[0.8, -0.6, -0.6], [-0.6, -0.6, 0.8]])  # two "classes": every pixel one colour


def _posterior_x0(x, t, log_prior):
    """Exact E[x0 | x_t] when x0 is one of the flat-colour videos of `_COLOURS` with these log-priors."""
    a = SCHED.alphas_cumprod[t].reshape(-1, 1) ** 0.5
    s2 = 1 - SCHED.alphas_cumprod[t].reshape(-1, 1)
    d = (x[:, None] - a[:, :, None, None, None, None] * _COLOURS[None, :, None, None, None, :]) ** 2
    w = jax.nn.softmax(-d.sum(axis=(2, 3, 4, 5)) / (2 * s2) + log_prior, axis=-1)  # [B, K]
    return jnp.broadcast_to((w @ _COLOURS)[:, None, None, None, :], x.shape)


def _guided_eps(x, t, scale=3.0):
    """Classifier-free guidance (scale 3) between the exact class-0 and unconditional denoisers."""
    cond = _posterior_x0(x, t, jnp.log(jnp.array([1.0, 1e-12])))
    uncond = _posterior_x0(x, t, jnp.log(jnp.array([0.5, 0.5])))
    x0 = uncond + scale * (cond - uncond)  # far outside [-1, 1] early on: clamping acts
    a = SCHED.alphas_cumprod[t].reshape(-1, 1, 1, 1, 1)
    return (x - a**0.5 * x0) / (1 - a) ** 0.5


@pytest.mark.parametrize("clamp", [dict(thresholding=True), dict(clip_sample=True)])
def test_guided_ddim_with_clamping_keeps_the_class_colour(clamp):
    """With exact denoisers and guidance 3, DDIM + clamped x0 must end at the class colour. With the
    model's unclamped eps in the direction term (diffusers' use_clipped_model_output=False, our old
    default), the colour drifts away (red turned grey/blue): the bug that made every sampled video
    of the shipped models off-colour."""
    x_T = jax.random.normal(jax.random.key(5), (8, 2, 4, 4, 3))
    red = np.asarray(_COLOURS[0])
    out = loop.sample(_guided_eps, x_T, SCHED, sampler="ddim", num_steps=25, timestep_spacing="trailing", **clamp)
    np.testing.assert_allclose(np.asarray(out), np.broadcast_to(red, out.shape), atol=0.05)
    old = loop.sample(
        _guided_eps,
        x_T,
        SCHED,
        sampler="ddim",
        num_steps=25,
        timestep_spacing="trailing",
        use_clipped_model_output=False,
        **clamp,
    )
    assert np.abs(np.asarray(old) - red).max() > 0.5


def test_ddim_clipped_model_output_step_formula():
    """use_clipped_model_output=True: x_next = sqrt(a_prev) x0c + dir * (x - sqrt(a) x0c) / sqrt(1 - a),
    with x0c the clamped prediction (diffusers' DDIMScheduler.step(use_clipped_model_output=True))."""
    s = samplers.get_sampler("ddim", SCHED, 6, thresholding=True, timestep_spacing="trailing")
    x = 3.0 * X_T
    out = linear_model(x, jnp.full((x.shape[0],), s.timesteps[2], jnp.int32)) * 4.0
    got, _ = s.step((), 2, x, out, None)
    c = {k: float(v[2]) for k, v in s.coefs.items()}
    x0c = thresholding.dynamic_threshold((x - c["sigma"] * out) / c["alpha"])
    want = c["alpha_prev"] * x0c + c["dir"] * (x - c["alpha"] * x0c) / c["sigma"]
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    # Without clamping the option changes nothing.
    plain = [
        samplers.get_sampler("ddim", SCHED, 6, use_clipped_model_output=u).step((), 2, x, out, None)[0]
        for u in (True, False)
    ]
    np.testing.assert_array_equal(np.asarray(plain[0]), np.asarray(plain[1]))


def test_tail_sampler_continues_the_full_run_exactly():
    sched = schedules.get_schedule("squaredcos_cap_v2")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3)).astype(np.float32)
    model = lambda x, t: 0.5 * x + 1e-3 * t[:, None]
    for name in ("ddim", "dpmpp_2m"):
        s = samplers.get_sampler(name, sched, 6, timestep_spacing="trailing", prediction_type="epsilon")
        full, state = x, s.init_state(x)
        for i in range(6):
            full, state = s.step(state, i, full, model(full, np.full((1,), s.timesteps[i])), None)
        part, state = x, s.init_state(x)
        for i in range(2):
            part, state = s.step(state, i, part, model(part, np.full((1,), s.timesteps[i])), None)
        tail = samplers.tail(s, 2)
        assert tail.num_steps == 4 and int(tail.timesteps[0]) == int(s.timesteps[2])
        if name == "ddim":  # stateless: the tail continues the run exactly
            for i in range(4):
                part, _ = tail.step((), i, part, model(part, np.full((1,), tail.timesteps[i])), None)
            np.testing.assert_allclose(np.asarray(part), np.asarray(full), rtol=1e-6)
        else:  # no previous prediction: the tail's first step is first order
            assert float(tail.coefs["d1_coef"][0]) == 0.0 and float(s.coefs["d1_coef"][2]) != 0.0
    s = samplers.get_sampler("ddim", sched, 4, timestep_spacing="trailing")
    assert [samplers.start_index(s, v, 1000) for v in (1.0, 0.75, 0.5, 0.2)] == [0, 1, 2, 4]
    with pytest.raises(ValueError, match="strength"):
        samplers.start_index(s, 1.5, 1000)


@pytest.mark.parametrize("name", ["ddim", "ddpm", "dpmpp_2m"])
def test_padded_sampler_keeps_its_steps(name):
    """`Sampler.padded` (what `loop.run` gives its compiled step) leaves steps 0 .. n - 1 as they
    were, and the step it takes at each of them is the same."""
    s = samplers.get_sampler(name, SCHED, 7)
    p = s.padded(64)
    assert p.num_steps == 64 and loop.step_sampler(s).num_steps == 64 and s.padded(7) is s
    assert loop.step_sampler(samplers.get_sampler(name, SCHED, 65)).num_steps == 128
    np.testing.assert_array_equal(p.timesteps[:7], s.timesteps)
    for k, v in s.coefs.items():
        np.testing.assert_array_equal(p.coefs[k][:7], v, err_msg=k)
    x, out = X_T, jnp.full(SHAPE, 0.1)
    noise = jnp.ones_like(x) if s.needs_noise else None
    for i in (0, 6):
        want, got = s.step(s.init_state(x), i, x, out, noise), p.step(p.init_state(x), i, x, out, noise)
        np.testing.assert_array_equal(got[0], want[0])
    with pytest.raises(ValueError, match="cannot pad a 7-step sampler to 5 steps"):
        s.padded(5)
