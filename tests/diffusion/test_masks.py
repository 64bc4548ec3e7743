"""Conditional-model training masks: semantics of each kind and the mixture's statistics."""

import jax
import numpy as np
import pytest

from lumiere_jax.diffusion import masks

T, H, W = 6, 16, 16


def _m(kind, seed=0):
    return np.asarray(masks.mask(kind, jax.random.PRNGKey(seed), T, H, W))[..., 0]


def test_binary_shapes():
    for kind in masks.KINDS:
        m = _m(kind)
        assert m.shape == (T, H, W) and set(np.unique(m)) <= {0.0, 1.0}


def test_i2v_and_none():
    m = _m("i2v")
    assert m[0].all() and not m[1:].any()
    assert not _m("none").any()


@pytest.mark.parametrize("seed", range(5))
def test_inpaint_outpaint_cinemagraph_geometry(seed):
    inp = _m("inpaint", seed)
    assert (inp == inp[0]).all()  # same box in every frame
    hole = inp[0] == 0
    ys, xs = np.nonzero(hole)
    assert hole.sum() == (np.ptp(ys) + 1) * (np.ptp(xs) + 1)  # one solid rectangle
    assert 0 < hole.mean() < 1
    out = _m("outpaint", seed)
    known = out[0] == 1
    ys, xs = np.nonzero(known)
    assert known.sum() == (np.ptp(ys) + 1) * (np.ptp(xs) + 1) and 0 < known.mean() < 1
    assert (out == out[0]).all()
    cine = _m("cinemagraph", seed)
    assert cine[0].all()  # first frame fully known
    assert (cine[1:] == cine[1]).all() and 0 < (cine[1] == 0).mean() < 1


def test_mixture_frequencies_and_kinds_match():
    mixture = {"i2v": 0.5, "inpaint": 0.25, "none": 0.25}
    m, kinds = masks.sample_masks(jax.random.PRNGKey(0), 2000, 2, 8, 8, mixture)
    kinds = np.asarray(kinds)
    freq = np.bincount(kinds, minlength=len(masks.KINDS)) / len(kinds)
    for i, name in enumerate(masks.KINDS):
        assert abs(freq[i] - mixture.get(name, 0.0)) < 0.04, (name, freq[i])
    m = np.asarray(m)[..., 0]
    i2v, none = masks.KINDS.index("i2v"), masks.KINDS.index("none")
    assert m[kinds == i2v][:, 0].all() and not m[kinds == i2v][:, 1:].any()
    assert not m[kinds == none].any()
    again, _ = masks.sample_masks(jax.random.PRNGKey(0), 2000, 2, 8, 8, mixture)
    np.testing.assert_array_equal(np.asarray(again)[..., 0], m)  # a pure function of the key


def test_bad_mixtures_raise():
    with pytest.raises(ValueError, match="unknown mask kinds"):
        masks.sample_masks(jax.random.PRNGKey(0), 2, T, H, W, {"stroke": 1.0})
    with pytest.raises(ValueError, match="positive sum"):
        masks.sample_masks(jax.random.PRNGKey(0), 2, T, H, W, {"i2v": 0.0})
    with pytest.raises(ValueError, match="unknown mask kind"):
        masks.mask("border", jax.random.PRNGKey(0), T, H, W)


# ----------------------------------------------------------------------------- strokes


def _strokes_batch(n, t=2, h=32, w=32, seed=0):
    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    one = lambda k: masks.mask("strokes", k, t, h, w)  # noqa: E731
    return np.asarray(jax.jit(jax.vmap(one))(keys))[..., 0]  # [N, T, H, W]


def test_strokes_kind_registered_and_default_mixture():
    assert masks.KINDS.index("strokes") == masks.KINDS.index("inpaint") + 1
    assert masks.DEFAULT_MIXTURE["strokes"] > 0
    assert abs(sum(masks.DEFAULT_MIXTURE.values()) - 1.0) < 1e-9
    assert set(masks.check_mixture({"strokes": 1.0})) == set(masks.KINDS)


def test_strokes_binary_same_hole_every_frame_and_irregular():
    m = _strokes_batch(64, t=3)
    assert set(np.unique(m)) <= {0.0, 1.0}
    assert (m == m[:, :1]).all()  # same hole in every frame
    holes = m[:, 0] == 0
    frac = holes.mean(axis=(1, 2))
    assert (frac > 0).all() and (frac < 1).all()  # never nothing, never everything
    # Measured over these 64 seeds at 32x32: mean 0.25, min 0.04, max 0.65.
    assert 0.15 < frac.mean() < 0.35, frac.mean()
    assert frac.min() > 0.01 and frac.max() < 0.85, (frac.min(), frac.max())
    assert np.std(frac) > 0.05  # stroke counts / sizes vary
    rects = 0
    for hole in holes:
        ys, xs = np.nonzero(hole)
        rects += hole.sum() == (np.ptp(ys) + 1) * (np.ptp(xs) + 1)
    assert rects <= 4, rects  # free-form, not boxes (measured 0)
    assert len({h.tobytes() for h in holes}) == len(holes)  # a different hole per key


def test_strokes_tiny_and_non_square_frames():
    m = _strokes_batch(32, t=1, h=8, w=20)
    frac = (m[:, 0] == 0).mean(axis=(1, 2))
    assert m.shape == (32, 1, 8, 20) and (frac > 0).all() and (frac < 1).all()


def test_strokes_through_sample_masks_jit():
    sample = jax.jit(lambda k: masks.sample_masks(k, 8, 3, 16, 16, {"strokes": 1}))
    m, kinds = sample(jax.random.PRNGKey(1))
    m, kinds = np.asarray(m)[..., 0], np.asarray(kinds)
    assert m.shape == (8, 3, 16, 16) and (kinds == masks.KINDS.index("strokes")).all()
    assert (m == m[:, :1]).all()
    frac = (m[:, 0] == 0).mean(axis=(1, 2))
    assert (frac > 0).all() and (frac < 1).all()
    direct = np.asarray(masks.mask("strokes", jax.random.PRNGKey(3), 3, 16, 16))[..., 0]
    assert set(np.unique(direct)) <= {0.0, 1.0}
