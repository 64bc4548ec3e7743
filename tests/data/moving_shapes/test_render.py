"""moving_shapes renderer (data/moving_shapes/render.py): vocabulary, captions, clips matching their spec, seeding."""

import itertools

import numpy as np
import pytest

from lumiere_jax.data import moving_shapes as ms


def _specs(size, n, seed=0, frames=16, combos=ms.ALL_COMBOS):
    rng = np.random.default_rng(seed)
    return [ms.sample_spec(rng, size, frames, combos) for _ in range(n)]


def _centroids(video):
    w = video.astype(np.float64).max(axis=-1)  # coverage x 255
    ys, xs = np.indices(w.shape[1:])
    tot = w.sum(axis=(1, 2))
    return np.stack([(w * ys).sum(axis=(1, 2)) / tot, (w * xs).sum(axis=(1, 2)) / tot], axis=1)


def _area(shape, d):
    return {"square": d * d, "circle": np.pi * d * d / 4, "triangle": d * d / 2}[shape]


# ---------------------------------------------------------------- vocabulary / captions


def test_vocabulary_and_held_out_split():
    assert len(ms.ALL_COMBOS) == 84 == len(set(ms.ALL_COMBOS))
    assert all(set(rgb) <= {0, 255} for rgb in ms.COLORS.values())
    assert len(set(ms.COLORS.values())) == 7
    assert 6 <= len(ms.HELD_OUT) <= 10 and ms.HELD_OUT <= set(ms.ALL_COMBOS)
    train = set(ms.TRAIN_COMBOS)
    assert not train & ms.HELD_OUT and len(train) + len(ms.HELD_OUT) == 84
    # Every factor, and every pair of factors of a held-out combo, is seen in train.
    for i in range(3):
        assert {c[i] for c in train} == {c[i] for c in ms.ALL_COMBOS}
    for i, j in itertools.combinations(range(3), 2):
        train_pairs = {(c[i], c[j]) for c in train}
        assert all((h[i], h[j]) in train_pairs for h in ms.HELD_OUT)


def test_caption_roundtrip_and_errors():
    for combo in ms.ALL_COMBOS:
        text = ms.caption(combo)
        assert text == f"a {combo[0]} {combo[1]} moving {combo[2]}"
        assert ms.parse_caption(text) == combo
        assert ms.parse_caption(text.encode()) == combo
    spec = _specs(32, 1)[0]
    assert ms.parse_caption(ms.caption(spec)) == spec.combo
    for bad in [
        "",
        "a red square",
        "a red hexagon moving left",
        "a purple square moving left",
        "a red square moving sideways",
        "the red square moving left",
        "a red square moving left fast",
    ]:
        with pytest.raises(ValueError):
            ms.parse_caption(bad)
    with pytest.raises(ValueError):
        ms.ClipSpec("purple", "square", "left", (0.0, 0.0), (0.0, 0.0))


# ---------------------------------------------------------------- renderer


@pytest.mark.parametrize("size", [16, 32, 64])
def test_rendered_clips_match_their_spec(size):
    frames = 16
    for spec in _specs(size, 60, seed=size):
        video = ms.render_clip(spec, frames, size)
        assert video.shape == (frames, size, size, 3) and video.dtype == np.uint8
        d = spec.diameter
        assert d == size / 4
        # Fully inside every frame: the extent stays within the pixel area ...
        c = spec.centers(frames)
        assert (c - d / 2 >= -0.5).all() and (c + d / 2 <= size - 0.5).all()
        # ... so nothing is clipped: on a canvas padded by 4 px all around, no coverage
        # falls outside the original frame.
        pad = 4
        big = ms.coverage(spec.shape, c + pad, d, size + 2 * pad)
        inner = big[:, pad:-pad, pad:-pad]
        assert big.sum() == inner.sum() > 0
        np.testing.assert_array_equal(inner, ms.coverage(spec.shape, c, d, size))
        area = video.max(axis=-1).astype(np.float64).sum(axis=(1, 2)) / 255
        np.testing.assert_allclose(area, _area(spec.shape, d), rtol=0.1)
        # Pure colour: every lit pixel is the caption's colour scaled by its coverage,
        # fully covered pixels exactly the colour.
        rgb = np.array(ms.COLORS[spec.color])
        lit = video.max(axis=-1) > 0
        px = video[lit].astype(np.int64)
        assert (px[:, rgb == 0] == 0).all()
        on = px[:, rgb == 255]
        assert (on == on[:, :1]).all()
        assert (video.max(axis=-1) == 255).any(axis=(1, 2)).all()
        # Motion: the centroid moves at the stored velocity along the caption direction.
        cen = _centroids(video)
        t = np.arange(frames)
        slope = np.polyfit(t, cen, 1)[0]
        np.testing.assert_allclose(slope, spec.velocity, atol=0.02)
        np.testing.assert_allclose(cen[0], np.add(spec.start, ms.centroid_offset(spec.shape, d)), atol=0.15)
        unit = np.array(ms.DIRECTION_VECTORS[spec.direction])
        v = np.array(spec.velocity)
        assert (v * (unit == 0) == 0).all() and (v @ unit) > 0
        # Travel ~ half the frame (jittered by +-15%).
        assert 0.85 * size / 2 - 1e-6 <= np.abs(v).sum() * (frames - 1) <= 1.15 * size / 2 + 1e-6


def test_sample_spec_respects_combos_and_is_seeded():
    a = _specs(32, 200, seed=1, combos=ms.HELD_OUT_COMBOS)
    assert {s.combo for s in a} <= ms.HELD_OUT and len({s.combo for s in a}) == len(ms.HELD_OUT)
    assert a == _specs(32, 200, seed=1, combos=ms.HELD_OUT_COMBOS)
    assert a != _specs(32, 200, seed=2, combos=ms.HELD_OUT_COMBOS)
    # Start positions and speeds are jittered.
    assert len({s.start for s in a}) == 200 and len({s.velocity for s in a}) == 200
    assert ms.example_spec(0, "train", 5, 32, 16) == ms.example_spec(0, "train", 5, 32, 16)
    assert ms.example_spec(0, "train", 5, 32, 16) != ms.example_spec(0, "test", 5, 32, 16)
    with pytest.raises(ValueError):
        ms.sample_spec(np.random.default_rng(0), 32, 1)
