"""Video diagnostics on hand-made videos with exactly known answers."""

import numpy as np
import pytest
from PIL import Image

from lumiere_jax.eval import diagnostics as dg


def _moving_pixel(t=6, h=5, w=8, row=2):
    """One white pixel in ``row``, column t at frame t."""
    v = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        v[i, row, i] = 255
    return v


def test_to_unit_accepts_uint8_and_minus_one_one_floats():
    np.testing.assert_allclose(dg.to_unit(np.array([0, 255], np.uint8)), [0, 1])
    np.testing.assert_allclose(dg.to_unit(np.array([-1.0, 0.0, 1.0, 3.0])), [0, 0.5, 1, 1])
    np.testing.assert_array_equal(dg.to_uint8(np.array([-1.0, 1.0], np.float32)), [0, 255])
    with pytest.raises(TypeError):
        dg.to_unit(np.array([1, 2], np.int32))


def test_frame_difference_curve_exact_values():
    v = _moving_pixel()
    curve = dg.frame_difference_curve(v)
    # Each step turns one pixel (3 channels) off and one on: 6 of 5*8*3 values change by 1.
    assert curve.shape == (5,)
    np.testing.assert_allclose(curve, 6 / (5 * 8 * 3))
    np.testing.assert_array_equal(dg.frame_difference_curve(np.zeros((4, 2, 2, 3), np.uint8)), 0)
    # The same video as floats in [-1, 1] gives the same curve.
    np.testing.assert_allclose(dg.frame_difference_curve(v.astype(np.float32) / 127.5 - 1), curve, rtol=1e-5)
    with pytest.raises(ValueError):
        dg.frame_difference_curve(v[:1])


def test_cut_gives_a_spike_at_k_minus_one():
    rng = np.random.default_rng(0)
    k, t = 5, 9
    a, b = rng.integers(0, 256, (2, 1, 8, 8, 3), dtype=np.uint8)
    v = np.concatenate([np.repeat(a, k, 0), np.repeat(b, t - k, 0)])
    v = v.astype(np.int16) + rng.integers(-2, 3, v.shape)  # small per-frame noise
    v = np.clip(v, 0, 255).astype(np.uint8)
    curve = dg.frame_difference_curve(v)
    assert curve.shape == (t - 1,) and int(np.argmax(curve)) == k - 1
    others = np.delete(curve, k - 1)
    assert curve[k - 1] > 0.2 and others.max() < 0.02


def test_xt_slice_of_a_moving_pixel_is_a_diagonal():
    v = _moving_pixel(t=6, h=5, w=8, row=2)
    xt = dg.xt_slice(v, y=2)
    assert xt.shape == (6, 8, 3) and xt.dtype == np.uint8
    expected = np.zeros((6, 8), bool)
    expected[np.arange(6), np.arange(6)] = True
    np.testing.assert_array_equal(xt[..., 0] == 255, expected)
    # Default row is the middle one (h // 2 == 2); another row sees nothing.
    np.testing.assert_array_equal(dg.xt_slice(v), xt)
    assert not dg.xt_slice(v, y=0).any()
    with pytest.raises(IndexError):
        dg.xt_slice(v, y=5)
    # Column slice: the pixel crosses column 3 at frame 3.
    yt = dg.yt_slice(v, x=3)
    assert yt.shape == (6, 5, 3)
    assert list(zip(*np.nonzero(yt[..., 0]))) == [(3, 2)]
    # Floats in [-1, 1] are converted.
    np.testing.assert_array_equal(dg.xt_slice(v.astype(np.float32) / 127.5 - 1, y=2), xt)


def test_save_png_upscales_nearest(tmp_path):
    v = _moving_pixel(t=6, h=5, w=8, row=2)
    path = dg.save_xt_slice(v, tmp_path / "sub" / "xt.png", scale=3)
    img = np.asarray(Image.open(path))
    assert img.shape == (18, 24, 3)
    np.testing.assert_array_equal(img, np.repeat(np.repeat(dg.xt_slice(v), 3, 0), 3, 1))
    assert img[3 * 4 + 1, 3 * 4 + 2, 0] == 255 and img[0, 3, 0] == 0
    gray = dg.save_png(np.arange(6, dtype=np.uint8).reshape(2, 3), tmp_path / "g.png")
    np.testing.assert_array_equal(np.asarray(Image.open(gray)), np.arange(6).reshape(2, 3))
    with pytest.raises(ValueError):
        dg.upscale(np.zeros((2, 2)), 0)
