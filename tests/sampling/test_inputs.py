"""Loading / validating the inputs of the conditional applications (i2v, inpaint, outpaint, ...)."""

import numpy as np
import pytest
from PIL import Image

from lumiere_jax.sampling import inputs as ci
from lumiere_jax.data import video_io as vio

pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")


def rgb(h=12, w=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def blocks_video(t=3, h=16, w=16):
    """Flat colour blocks: survive gif palette quantisation almost exactly."""
    v = np.zeros((t, h, w, 3), np.uint8)
    for k in range(t):
        v[k, :, : w // 2] = (255, 0, 0) if k % 2 else (0, 0, 255)
        v[k, :, w // 2 :] = 40 * k
    return v


# ----------------------------------------------------------------------------- images


def test_load_image_png_gray_rgba_jpg(tmp_path):
    img = rgb()
    Image.fromarray(img).save(tmp_path / "a.png")
    np.testing.assert_array_equal(ci.load_image(tmp_path / "a.png"), img)
    gray = img[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    g = ci.load_image(str(tmp_path / "g.png"))
    assert g.shape == (12, 16, 3) and g.dtype == np.uint8
    np.testing.assert_array_equal(g, np.repeat(gray[..., None], 3, -1))
    rgba = np.concatenate([img, np.full((12, 16, 1), 7, np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "r.png")
    np.testing.assert_array_equal(ci.load_image(tmp_path / "r.png"), img)  # alpha dropped
    smooth = np.broadcast_to(np.linspace(0, 255, 16).astype(np.uint8)[None, :, None], (12, 16, 3))
    Image.fromarray(np.ascontiguousarray(smooth)).save(tmp_path / "s.jpg", quality=95)
    assert np.abs(ci.load_image(tmp_path / "s.jpg").astype(int) - smooth).mean() < 4


def test_load_image_npy_variants_and_errors(tmp_path):
    img = rgb()
    cases = {
        "u8": img,
        "f": img / 255.0,
        "gray": img[..., 0],
        "gray1": img[..., :1],
        "rgba": np.concatenate([img, img[..., :1]], -1),
        "video": np.stack([img, img[::-1]]),
    }
    expect = {
        "u8": img,
        "f": img,
        "gray": np.repeat(img[..., :1], 3, -1),
        "gray1": np.repeat(img[..., :1], 3, -1),
        "rgba": img,
        "video": img,
    }
    for name, arr in cases.items():
        np.save(tmp_path / f"{name}.npy", arr)
        out = ci.load_image(tmp_path / f"{name}.npy")
        assert out.dtype == np.uint8, name
        np.testing.assert_array_equal(out, expect[name], err_msg=name)
    np.save(tmp_path / "pm1.npy", img / 127.5 - 1.0)
    with pytest.raises(ValueError, match=r"pm1\.npy.*\[0, 1\].*\(x \+ 1\) / 2"):
        ci.load_image(tmp_path / "pm1.npy")
    np.save(tmp_path / "i16.npy", img.astype(np.int16))
    with pytest.raises(ValueError, match="uint8.*int16"):
        ci.load_image(tmp_path / "i16.npy")
    np.save(tmp_path / "bad.npy", np.zeros((4, 5, 6), np.uint8))
    with pytest.raises(ValueError, match=r"bad\.npy.*shape \(4, 5, 6\)"):
        ci.load_image(tmp_path / "bad.npy")


def test_load_image_first_frame_of_gif_and_folder(tmp_path):
    v = blocks_video()
    vio.write_gif(tmp_path / "v.gif", v)
    assert np.abs(ci.load_image(tmp_path / "v.gif").astype(int) - v[0]).max() <= 8
    vio.write_frames(tmp_path / "frames", v)
    np.testing.assert_array_equal(ci.load_image(tmp_path / "frames"), v[0])


def test_missing_and_corrupt_files(tmp_path):
    missing = tmp_path / "nope.png"
    for fn in (ci.load_image, ci.load_video, ci.load_mask):
        with pytest.raises(FileNotFoundError, match="nope.png"):
            fn(missing)
    (tmp_path / "junk.png").write_bytes(b"this is not a png at all" * 10)
    with pytest.raises(ValueError, match="cannot decode image.*junk.png"):
        ci.load_image(tmp_path / "junk.png")
    with pytest.raises(ValueError, match="junk.png"):
        ci.load_mask(tmp_path / "junk.png")
    (tmp_path / "junk.npy").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="junk.npy"):
        ci.load_image(tmp_path / "junk.npy")
    (tmp_path / "junk.gif").write_bytes(b"GIF89a garbage")
    with pytest.raises(ValueError, match="junk.gif"):
        ci.load_video(tmp_path / "junk.gif")


# ----------------------------------------------------------------------------- videos


def test_load_video_npy_folder_gif(tmp_path):
    v = blocks_video(t=4)
    np.save(tmp_path / "v.npy", v)
    np.testing.assert_array_equal(ci.load_video(tmp_path / "v.npy"), v)
    np.save(tmp_path / "f.npy", v / 255.0)
    np.testing.assert_array_equal(ci.load_video(tmp_path / "f.npy"), v)
    np.save(tmp_path / "g.npy", v[..., :1])
    assert ci.load_video(tmp_path / "g.npy").shape == (4, 16, 16, 3)
    vio.write_frames(tmp_path / "frames", v)
    np.testing.assert_array_equal(ci.load_video(tmp_path / "frames"), v)
    assert ci.load_video(tmp_path / "frames", max_frames=2).shape == (2, 16, 16, 3)
    vio.write_gif(tmp_path / "v.gif", v)
    g = ci.load_video(tmp_path / "v.gif")
    assert g.shape == v.shape and np.abs(g.astype(int) - v).max() <= 8
    np.save(tmp_path / "img.npy", v[0])
    with pytest.raises(ValueError, match=r"img\.npy.*\[T, H, W"):
        ci.load_video(tmp_path / "img.npy")
    Image.fromarray(v[0]).save(tmp_path / "still.png")
    with pytest.raises(ValueError, match="still.png.*single image"):
        ci.load_video(tmp_path / "still.png")


# ----------------------------------------------------------------------------- masks


def test_binarize_semantics_and_threshold():
    u8 = np.array([[0, 127, 128, 255]], np.uint8)
    np.testing.assert_array_equal(ci.binarize(u8), [[False, False, True, True]])  # >= 0.5
    np.testing.assert_array_equal(ci.binarize(u8, threshold=1.0), [[False, False, False, True]])
    np.testing.assert_array_equal(ci.binarize(u8, threshold=0.01), [[False, True, True, True]])
    np.testing.assert_array_equal(ci.binarize(np.array([[0.0, 0.49, 0.5, 1.0]])), [[False, False, True, True]])
    b = np.array([[True, False]])
    np.testing.assert_array_equal(ci.binarize(b), b)
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255  # channel mean 1/3
    assert not ci.binarize(red).any() and ci.binarize(red, 0.3).all()
    white_transparent = np.zeros((2, 2, 4), np.uint8)
    white_transparent[..., :3] = 255  # alpha 0 is ignored
    assert ci.binarize(white_transparent).all()
    assert ci.binarize(np.zeros((3, 5, 7), np.uint8)).shape == (3, 5, 7)  # [T, H, W]
    assert ci.binarize(np.zeros((3, 5, 7, 3), np.uint8)).shape == (3, 5, 7)


@pytest.mark.parametrize(
    "mask, threshold, match",
    [
        (np.zeros((2, 2), np.uint8), 0.0, r"threshold must be in \(0, 1\]"),
        (np.zeros((2, 2), np.uint8), 1.5, r"threshold must be in \(0, 1\]"),
        (np.zeros((2, 2), np.uint8), float("nan"), "threshold"),
        (np.array([[0.0, 1.2]]), 0.5, r"must be in \[0, 1\], got \[0, 1.2\]"),
        (np.array([[-0.5, 1.0]]), 0.5, r"must be in \[0, 1\]"),
        (np.array([[np.nan, 1.0]]), 0.5, "NaN"),
        (np.array([[0, 1]]), 0.5, "int64.*astype\\(bool\\)"),
        (np.zeros(4, np.uint8), 0.5, "at least 2 dimensions"),
    ],
)
def test_binarize_errors(mask, threshold, match):
    with pytest.raises(ValueError, match=match):
        ci.binarize(mask, threshold)


def test_load_mask_files(tmp_path):
    m = np.zeros((8, 10), bool)
    m[2:5, 3:9] = True
    Image.fromarray(m.astype(np.uint8) * 255).save(tmp_path / "m.png")
    np.testing.assert_array_equal(ci.load_mask(tmp_path / "m.png"), m)
    Image.fromarray(np.where(m, 100, 0).astype(np.uint8)).save(tmp_path / "dim.png")
    assert not ci.load_mask(tmp_path / "dim.png").any()  # 100/255 < 0.5
    np.testing.assert_array_equal(ci.load_mask(tmp_path / "dim.png", threshold=0.3), m)
    np.save(tmp_path / "m.npy", m)
    np.testing.assert_array_equal(ci.load_mask(tmp_path / "m.npy"), m)
    per_frame = np.stack([m, ~m, m])
    np.save(tmp_path / "t.npy", per_frame)
    np.testing.assert_array_equal(ci.load_mask(tmp_path / "t.npy"), per_frame)
    vid = np.repeat(per_frame[..., None].astype(np.uint8) * 255, 3, -1)
    vio.write_gif(tmp_path / "t.gif", vid)
    np.testing.assert_array_equal(ci.load_mask(tmp_path / "t.gif"), per_frame)
    vio.write_frames(tmp_path / "one", vid[:1])  # 1 frame -> [H, W]
    np.testing.assert_array_equal(ci.load_mask(tmp_path / "one"), m)
    np.save(tmp_path / "big.npy", np.array([[0, 300]], np.float32))
    with pytest.raises(ValueError, match=r"big\.npy.*\[0, 1\]"):
        ci.load_mask(tmp_path / "big.npy")
    with pytest.raises(ValueError, match="threshold"):
        ci.load_mask(tmp_path / "m.png", threshold=2.0)


# ----------------------------------------------------------------------------- fitting


def test_fit_frames_passthrough_resize_and_reject():
    img = rgb(32, 32)
    assert ci.fit_frames(img, 32, what="--image") is img
    wide = rgb(48, 64)
    out = ci.fit_frames(wide, 32, what="--image")
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    video = np.stack([wide, wide])
    assert ci.fit_frames(video, 16, what="--video").shape == (2, 16, 16, 3)
    with pytest.raises(
        ValueError,
        match=r"--image is 48x64 .* 32x32 frames; pass resize=True "
        r"\(--resize_inputs\)",
    ):
        ci.fit_frames(wide, 32, what="--image", resize=False)
    with pytest.raises(ValueError, match="mask is 8x8"):
        ci.fit_frames(np.zeros((8, 8), bool), 4, what="mask", resize=False)
    with pytest.raises(ValueError, match="--image.*uint8 frames or a bool mask.*float64"):
        ci.fit_frames(np.zeros((8, 8, 3)), 4, what="--image")


def test_fit_frames_mask_stays_bool_and_aligned_with_image():
    # A 24x40 frame whose left 18 columns are marked: after a cover-resize to 12 and a centre crop
    # (scale 0.5 -> 12x20, crop columns 4..16) the marked columns are 0..4 in both.
    mask = np.zeros((24, 40), bool)
    mask[:, :18] = True
    img = np.where(mask[..., None], 255, 0).astype(np.uint8).repeat(3, -1)
    m = ci.fit_frames(mask, 12, what="mask")
    i = ci.fit_frames(img, 12, what="--image")
    assert m.dtype == np.bool_ and m.shape == (12, 12)
    np.testing.assert_array_equal(m, i[..., 0] >= 128)
    assert m[:, :5].all() and not m[:, 5:].any()
    per_frame = ci.fit_frames(np.stack([mask, ~mask]), 12, what="mask")
    assert per_frame.shape == (2, 12, 12) and (per_frame[1] == ~per_frame[0]).all()
    up = ci.fit_frames(np.eye(4, dtype=bool), 8, what="mask")  # enlarging
    np.testing.assert_array_equal(up, np.kron(np.eye(4, dtype=bool), np.ones((2, 2), bool)))


def test_check_num_frames_and_mask_for_video():
    v = np.zeros((5, 4, 4, 3), np.uint8)
    assert ci.check_num_frames(v, 5, what="--video") is v
    with pytest.raises(ValueError, match=r"--video has 5 frames .*exactly 3 frames; trim"):
        ci.check_num_frames(v, 3, what="--video")
    with pytest.raises(ValueError, match=r"has 5 frames .*exactly 8 .*at least 8"):
        ci.check_num_frames(v, 8, what="--video")
    m = np.eye(4, dtype=bool)
    b = ci.mask_for_video(m, 3)
    assert b.shape == (3, 4, 4) and (b == m).all() and b.flags.writeable
    t = np.stack([m, ~m])
    np.testing.assert_array_equal(ci.mask_for_video(t, 2), t)
    with pytest.raises(ValueError, match="mask has 2 frames but the video has 3"):
        ci.mask_for_video(t, 3)
    with pytest.raises(ValueError, match="bool mask"):
        ci.mask_for_video(m.astype(np.uint8), 3)


# ----------------------------------------------------------------------------- outpainting


def test_outpaint_mask_padding_geometry():
    r = ci.outpaint_mask(10, 12, padding=2)
    assert r.dtype == np.bool_ and r.shape == (10, 12)
    assert not r[2:8, 2:10].any() and r.sum() == 10 * 12 - 6 * 8
    r = ci.outpaint_mask(10, 12, padding=(1, 0, 3, 2))  # top, bottom, left, right
    known = ~r
    ys, xs = np.nonzero(known)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (1, 9, 3, 9)
    assert known.sum() == 9 * 7


@pytest.mark.parametrize(
    "direction, rows, cols",
    [
        ("left", slice(None), slice(0, 4)),
        ("right", slice(None), slice(12, 16)),
        ("up", slice(0, 2), slice(None)),
        ("down", slice(6, 8), slice(None)),
    ],
)
def test_outpaint_mask_direction_geometry(direction, rows, cols):
    r = ci.outpaint_mask(8, 16, direction=direction, amount=0.25)
    expect = np.zeros((8, 16), bool)
    expect[rows, cols] = True
    np.testing.assert_array_equal(r, expect)
    assert ci.outpaint_mask(8, 16, direction=direction, amount=0.01).sum() in (8, 16)  # >= 1 line
    assert (~ci.outpaint_mask(8, 16, direction=direction, amount=0.99)).any()  # known left


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(padding=2, direction="left"), "exactly one of.*not both"),
        (dict(), "exactly one of padding"),
        (dict(padding=5), r"leaves no known area in a 10x12 frame"),
        (dict(padding=(0, 0, 6, 6)), "leaves no known area"),
        (dict(padding=(1, 2, 3)), r"\(top, bottom, left, right\)"),
        (dict(padding=-1), ">= 0"),
        (dict(padding=0), "nothing to outpaint"),
        (dict(padding=1.5), "integer"),
        (dict(direction="north"), "direction must be one of"),
        (dict(direction="left", amount=0.0), r"amount .* \(0, 1\)"),
        (dict(direction="up", amount=1.0), r"amount .* \(0, 1\)"),
    ],
)
def test_outpaint_mask_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ci.outpaint_mask(10, 12, **kwargs)
