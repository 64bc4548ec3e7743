"""Temporal MultiDiffusion: window layout, weights, extract/combine and the sampling loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.diffusion import multidiffusion as md
from lumiere_jax.diffusion import samplers, schedules
from lumiere_jax.sampling import loop

SCHED = schedules.get_schedule("squaredcos_cap_v2")
NUM_STEPS = 4
T = 7  # frames; window 3, overlap 1 -> starts (0, 2, 4); overlap 2 -> (0, 1, 2, 3, 4)
SHAPE = (2, T, 4, 4, 2)  # [B, T, H, W, C]
X_T = jax.random.normal(jax.random.key(2), SHAPE)
COND = jax.random.uniform(jax.random.key(3), SHAPE, minval=-1.0, maxval=1.0)
KEY = jax.random.key(0)

# (name, eta): every sampler, DDIM both deterministic and stochastic.
SAMPLER_CASES = [("ddim", 0.0), ("ddim", 1.0), ("ddpm", 0.0), ("dpmpp_2m", 0.0)]
SAMPLER_IDS = ["ddim", "ddim_eta1", "ddpm", "dpmpp_2m"]


def _tscale(x, t):
    return (t.astype(x.dtype) / 1000.0).reshape((-1,) + (1,) * (x.ndim - 1))


def per_frame_model(x, t, *conds):
    """Elementwise (no temporal interaction), nonlinear in x and t."""
    return 0.5 * jnp.tanh(x) * _tscale(x, t) + 0.1 * x


def mixing_model(x, t, *conds):
    """Adds the temporal mean of its input: the output depends on which frames are in the window."""
    return per_frame_model(x, t) + 0.5 * jnp.mean(x, axis=1, keepdims=True)


def cond_model(x, t, cond):
    """Per-frame model reading a conditioning video (windowed like x)."""
    return 0.3 * (x - cond) * _tscale(x, t) + 0.2 * jnp.sin(3.0 * cond)


def plain_cond_model(x, t):
    return cond_model(x, t, COND)


def learned_variance_model(x, t, *conds):
    return jnp.concatenate([per_frame_model(x, t), jnp.full_like(x, 1e3)], axis=-1)


def _sampler(name, eta):
    return samplers.get_sampler(name, SCHED, NUM_STEPS, eta=eta)


def _plain(model_fn, x_T, name, eta):
    return loop.sample(model_fn, x_T, SCHED, sampler=name, num_steps=NUM_STEPS, eta=eta, key=KEY)


# --- layout ------------------------------------------------------------------------------------


def test_layout_examples():
    assert md.window_layout(16, 8, 2).starts == (0, 6, 8)
    lay = md.window_layout(80, 16, 2)
    assert lay.starts == (0, 14, 28, 42, 56, 64)
    assert (lay.window, lay.num_frames, lay.num_windows) == (16, 80, 6)
    assert md.window_layout(16, 16, 2).starts == (0,)
    assert md.window_layout(8, 4, 0).starts == (0, 4)
    assert md.window_layout(7, 3, 1).starts == (0, 2, 4)
    assert md.window_layout(10, 4, 0).starts == (0, 4, 6)


def test_layout_is_hashable_and_static():
    a, b = md.window_layout(16, 8, 2), md.window_layout(16, 8, 2)
    assert a == b and hash(a) == hash(b)
    assert a != md.window_layout(16, 8, 3)


def test_layout_covers_every_frame():
    for num_frames in range(1, 41):
        for window in range(1, min(num_frames, 12) + 1):
            for overlap in range(window):
                lay = md.window_layout(num_frames, window, overlap)
                starts = lay.starts
                assert starts[0] == 0
                assert starts[-1] + window == num_frames
                assert list(starts) == sorted(set(starts))
                covered = np.zeros(num_frames, int)
                for s in starts:
                    covered[s : s + window] += 1
                assert covered.min() >= 1, (num_frames, window, overlap)
                gaps = np.diff(starts)
                # Consecutive windows overlap by exactly `overlap`, the final one by at least that.
                assert np.all(gaps[:-1] == window - overlap), (num_frames, window, overlap)
                if len(gaps):
                    assert 1 <= gaps[-1] <= window - overlap


@pytest.mark.parametrize(
    "args, match",
    [
        ((10, 0, 0), "window=0"),
        ((10, 4, -1), "overlap=-1"),
        ((10, 4, 4), "overlap=4.*window=4"),
        ((10, 4, 5), "overlap=5"),
        ((5, 8, 2), "shorter than one window.*num_frames=5.*window=8"),
    ],
)
def test_layout_errors(args, match):
    with pytest.raises(ValueError, match=match):
        md.window_layout(*args)


# --- weights, extract / combine ----------------------------------------------------------------


def _frame_sums(weights, lay):
    total = np.zeros(lay.num_frames, np.float64)
    for k, s in enumerate(lay.starts):
        total[s : s + lay.window] += weights[k]
    return total


@pytest.mark.parametrize("kind", md.WEIGHT_KINDS)
def test_weights_sum_to_one(kind):
    for args in [(16, 8, 2), (80, 16, 2), (7, 3, 1), (7, 3, 2), (23, 5, 3), (9, 9, 2), (10, 4, 0)]:
        lay = md.window_layout(*args)
        w = md.window_weights(lay, kind)
        assert w.dtype == np.float32 and w.shape == (lay.num_windows, lay.window)
        assert np.all(w > 0)
        np.testing.assert_allclose(_frame_sums(w, lay), 1.0, atol=1e-6)


def test_triangular_weights_favour_window_centres():
    lay = md.window_layout(16, 8, 2)
    w = md.window_weights(lay, "triangular")
    u = md.window_weights(lay, "uniform")
    # Frame 6 is window 1's first frame and window 0's 7th; frame 7 is window 0's last.
    assert w[0, 6] > u[0, 6] and w[0, 7] < u[0, 7]
    assert np.all(w[:, 0] > 0) and np.all(w[:, -1] > 0)
    # A frame covered by one window only gets weight exactly 1.
    assert w[0, 0] == 1.0 and w[-1, -1] == 1.0


def test_unknown_weight_kind():
    with pytest.raises(ValueError, match="uniform, triangular"):
        md.window_weights(md.window_layout(8, 4), "gaussian")


def _random_weights(lay, seed):
    raw = np.random.default_rng(seed).uniform(0.1, 2.0, (lay.num_windows, lay.window))
    total = _frame_sums(raw, lay)
    return np.stack([raw[k] / total[s : s + lay.window] for k, s in enumerate(lay.starts)])


@pytest.mark.parametrize("shape", [(2, 11), (1, 11, 3), (2, 11, 4, 4, 3)])
def test_extract_combine_round_trip(shape):
    v = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    lay = md.window_layout(11, 4, 2)
    wins = md.extract_windows(jnp.asarray(v), lay)
    assert wins.shape == (lay.num_windows, shape[0], 4) + shape[2:]
    for k, s in enumerate(lay.starts):
        np.testing.assert_array_equal(np.asarray(wins[k]), v[:, s : s + 4])
    for w in [md.window_weights(lay), md.window_weights(lay, "triangular"), _random_weights(lay, 1)]:
        out = jax.jit(md.combine_windows, static_argnums=1)(wins, lay, w)
        np.testing.assert_allclose(np.asarray(out), v, rtol=1e-6, atol=1e-6)


def test_combine_is_weighted_average_of_different_windows():
    lay = md.window_layout(4, 2, 1)  # starts (0, 1, 2)
    wins = jnp.arange(3.0).reshape(3, 1, 1) * jnp.ones((3, 1, 2))  # window k is all k
    out = md.combine_windows(wins, lay, md.window_weights(lay))
    np.testing.assert_allclose(np.asarray(out), [[0.0, 0.5, 1.5, 2.0]])


def test_combine_rejects_bad_weights():
    lay = md.window_layout(8, 4, 2)
    wins = jnp.zeros((lay.num_windows, 1, 4))
    with pytest.raises(ValueError, match="weights must have shape"):
        md.combine_windows(wins, lay, np.ones((lay.num_windows, 3)))


# --- sampling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, eta", SAMPLER_CASES, ids=SAMPLER_IDS)
def test_single_window_equals_plain_sampling_exactly(name, eta):
    lay = md.window_layout(T, T, 2)
    assert lay.num_windows == 1
    out = loop.sample_multidiffusion(per_frame_model, X_T, _sampler(name, eta), lay, key=KEY)
    ref = _plain(per_frame_model, X_T, name, eta)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))


@pytest.mark.parametrize("name, eta", SAMPLER_CASES, ids=SAMPLER_IDS)
def test_overlapping_windows_with_per_frame_model_equal_plain_sampling(name, eta):
    lay = md.window_layout(T, 3, 2)  # starts (0..4): up to three windows per frame
    weights = "triangular" if name == "ddpm" else "uniform"
    out = loop.sample_multidiffusion(
        per_frame_model, X_T, _sampler(name, eta), lay, key=KEY, weights=weights, chunk_size=2
    )
    ref = _plain(per_frame_model, X_T, name, eta)
    assert np.all(np.isfinite(np.asarray(out)))
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-5, atol=1e-5)


def test_learned_variance_output_is_accepted():
    lay = md.window_layout(T, 3, 1)
    out = loop.sample_multidiffusion(learned_variance_model, X_T, _sampler("ddim", 0.0), lay)
    ref = _plain(per_frame_model, X_T, "ddim", 0.0)
    assert out.shape == SHAPE
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-5, atol=1e-5)


def test_frame_mixing_model_differs_from_plain_and_chunking_is_invariant():
    lay = md.window_layout(T, 3, 1)  # 3 windows: chunk_size=2 leaves a remainder
    s = _sampler("dpmpp_2m", 0.0)
    outs = [np.asarray(loop.sample_multidiffusion(mixing_model, X_T, s, lay, chunk_size=c)) for c in (None, 1, 2)]
    # Windows folded into the batch axis (one model call on num_windows * B, shardable).
    outs.append(np.asarray(loop.sample_multidiffusion(mixing_model, X_T, s, lay, fold_windows=True)))
    ref = np.asarray(_plain(mixing_model, X_T, "dpmpp_2m", 0.0))
    assert np.all(np.isfinite(outs[0]))
    assert np.abs(outs[0] - ref).max() > 1e-3
    for o in outs[1:]:
        np.testing.assert_allclose(o, outs[0], rtol=1e-6, atol=1e-6)


def test_multidiffusion_step_matches_manual_window_steps():
    """One step by hand: each window steps on its slice of the full noise, then average."""
    lay = md.window_layout(T, 3, 1)
    s = _sampler("ddpm", 0.0)
    w = md.window_weights(lay)
    noise = jax.random.normal(jax.random.key(7), SHAPE)
    state = md.init_multidiffusion_state(s, X_T, lay)
    out, _ = md.multidiffusion_step(s, state, 1, X_T, mixing_model, noise, lay, w)
    t = jnp.full((SHAPE[0],), s.timesteps[1], jnp.int32)
    acc = np.zeros(SHAPE, np.float64)
    for k, st in enumerate(lay.starts):
        xk = X_T[:, st : st + 3]
        xn, _ = s.step((), 1, xk, mixing_model(xk, t), noise[:, st : st + 3])
        acc[:, st : st + 3] += np.asarray(xn) * w[k].reshape(1, 3, 1, 1, 1)
    np.testing.assert_allclose(np.asarray(out), acc, rtol=1e-5, atol=1e-6)


def test_dpm_state_has_window_axis():
    lay = md.window_layout(T, 3, 1)
    state = md.init_multidiffusion_state(_sampler("dpmpp_2m", 0.0), X_T, lay)
    assert state.shape == (3, SHAPE[0], 3) + SHAPE[2:]
    assert md.init_multidiffusion_state(_sampler("ddim", 0.0), X_T, lay) == ()


def test_conds_are_windowed_with_x():
    lay = md.window_layout(T, 3, 2)
    out = loop.sample_multidiffusion(cond_model, X_T, _sampler("ddim", 1.0), lay, conds=(COND,), key=KEY)
    ref = _plain(plain_cond_model, X_T, "ddim", 1.0)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-5, atol=1e-5)
    # Misaligned conditioning (frames reversed) must change the result.
    flipped = loop.sample_multidiffusion(cond_model, X_T, _sampler("ddim", 1.0), lay, conds=(COND[:, ::-1],), key=KEY)
    assert np.abs(np.asarray(flipped) - np.asarray(ref)).max() > 1e-3


def test_independent_windows_baseline_is_stitched_plain_sampling():
    """overlap=0 (no MultiDiffusion): each window is sampled alone and the results concatenated."""
    x_T = X_T[:, :6]
    out = loop.sample_windows_independently(mixing_model, x_T, _sampler("ddim", 0.0), 3)
    ref = jnp.concatenate(
        [_plain(mixing_model, x_T[:, :3], "ddim", 0.0), _plain(mixing_model, x_T[:, 3:], "ddim", 0.0)], axis=1
    )
    # Not bit-exact: the windows run vmapped in one program, so XLA may round differently.
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-6, atol=1e-6)
    # With overlapping windows the mixing model yields a different, still finite, video.
    blended = loop.sample_multidiffusion(mixing_model, x_T, _sampler("ddim", 0.0), md.window_layout(6, 3, 1))
    assert np.all(np.isfinite(np.asarray(blended)))
    assert np.abs(np.asarray(blended) - np.asarray(out)).max() > 1e-3


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, eta", [("ddpm", 0.0), ("ddim", 0.5)])
def test_noise_sampler_without_key_raises(name, eta):
    with pytest.raises(ValueError, match="PRNG key"):
        loop.sample_multidiffusion(per_frame_model, X_T, _sampler(name, eta), md.window_layout(T, 3, 1))
    with pytest.raises(ValueError, match="needs a noise array"):
        md.multidiffusion_step(
            _sampler(name, eta),
            (),
            0,
            X_T,
            per_frame_model,
            None,
            md.window_layout(T, 3, 1),
            md.window_weights(md.window_layout(T, 3)),
        )


def test_video_layout_mismatch_raises():
    with pytest.raises(ValueError, match="T=8"):
        loop.sample_multidiffusion(per_frame_model, X_T, _sampler("ddim", 0.0), md.window_layout(8, 4, 1))
    with pytest.raises(ValueError, match="shorter than one window"):
        loop.sample_windows_independently(per_frame_model, X_T[:, :2], _sampler("ddim", 0.0), 3)
