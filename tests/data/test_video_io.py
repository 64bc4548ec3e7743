import numpy as np
import pytest

from lumiere_jax.data import video_io as vio

# ffmpeg runs as a subprocess (fork + exec), which JAX warns about once it is imported; harmless.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")


def smooth_video(t=6, h=20, w=28):
    """Gradients that move over time: survive lossy codecs and are frame-distinct."""
    y = np.linspace(0, 1, h)[:, None]
    x = np.linspace(0, 1, w)[None, :]
    frames = [np.stack([200 * y + 0 * x, 200 * x + 0 * y, np.full((h, w), 20.0 * k + 30)], -1) for k in range(t)]
    return np.stack(frames).astype(np.uint8)


def test_mp4_roundtrip(tmp_path):
    v = smooth_video()
    path = vio.write_mp4(tmp_path / "a.mp4", v, fps=12)
    r, fps = vio.read_video(path)
    assert r.shape == v.shape and r.dtype == np.uint8 and fps == pytest.approx(12)
    assert np.abs(r.astype(int) - v).mean() < 6


def test_webm_decode(tmp_path):
    import imageio.v3 as iio

    v = smooth_video(t=4, h=16, w=16)
    iio.imwrite(
        tmp_path / "a.webm",
        v,
        plugin="FFMPEG",
        fps=6,
        codec="libvpx-vp9",
        macro_block_size=1,
        output_params=["-crf", "20", "-b:v", "0"],
        ffmpeg_log_level="error",
    )
    r, fps = vio.read_video(tmp_path / "a.webm")
    assert r.shape == v.shape and fps == pytest.approx(6)
    assert np.abs(r.astype(int) - v).mean() < 8


def test_mp4_odd_size_is_padded(tmp_path):
    v = smooth_video(t=3, h=15, w=21)
    r, _ = vio.read_video(vio.write_mp4(tmp_path / "odd.mp4", v, fps=8))
    assert r.shape == (3, 16, 22, 3)
    assert np.abs(r[:, :15, :21].astype(int) - v).mean() < 6
    with pytest.raises(ValueError, match="even"):
        vio.write_mp4(tmp_path / "odd2.mp4", v, pad_to_even_size=False)


def test_gif_frames_and_npy_roundtrip(tmp_path):
    v = smooth_video()
    r, fps = vio.read_video(vio.write_gif(tmp_path / "a.gif", v, fps=10))
    assert r.shape == v.shape and fps == pytest.approx(10, rel=0.1)
    assert np.abs(r.astype(int) - v).mean() < 8
    r, fps = vio.read_video(vio.write_frames(tmp_path / "frames", v))
    np.testing.assert_array_equal(r, v)
    assert fps is None
    r, fps = vio.read_video(vio.write_npy(tmp_path / "a.npy", v), max_frames=2)
    np.testing.assert_array_equal(r, v[:2])


def test_frames_folder_natural_order(tmp_path):
    d = tmp_path / "f"
    d.mkdir()
    v = smooth_video(t=12)
    from PIL import Image

    for i, f in enumerate(v):  # unpadded names: f2 must come before f10
        Image.fromarray(f).save(d / f"f{i}.png")
    (d / "notes.txt").write_text("ignored")
    r, _ = vio.read_video(d)
    np.testing.assert_array_equal(r, v)


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("missing.mp4", None, "not found"),
        ("empty.mp4", b"", "empty"),
        ("corrupt.mp4", np.random.default_rng(0).bytes(2000), "cannot decode"),
        ("corrupt.gif", b"GIF89a" + np.random.default_rng(1).bytes(50), "cannot decode"),
        ("emptydir", "dir", "no frame images"),
    ],
    ids=["missing", "empty", "corrupt-mp4", "corrupt-gif", "empty-dir"],
)
def test_decode_errors_name_the_file(tmp_path, name, content, reason):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(vio.VideoDecodeError, match=reason) as e:
        vio.read_video(path)
    assert name in str(e.value) and e.value.path == str(path)


def test_resize_and_center_crop():
    v = np.zeros((2, 40, 80, 3), np.uint8)
    v[:, :, 20:60] = 255  # centre square white, sides black
    out = vio.resize_and_center_crop(v, 20)
    assert out.shape == (2, 20, 20, 3) and out.dtype == np.uint8
    assert out.min() == 255  # only the centre survives
    up = vio.resize_and_center_crop(v[0], (60, 30))
    assert up.shape == (60, 30, 3)
    assert vio.resize_and_center_crop(v, (40, 80)).shape == v.shape
    with pytest.raises(ValueError, match="resample"):
        vio.resize_and_center_crop(v, 8, resample="nearestish")


def test_temporal_resampling_and_clips():
    np.testing.assert_array_equal(vio.resample_indices(10, 30, 10), [0, 3, 6, 9])
    np.testing.assert_array_equal(vio.resample_indices(4, 10, 20), [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(vio.resample_indices(8, 8.33, 8), np.arange(8))  # gif rounding
    np.testing.assert_array_equal(vio.resample_indices(5, None, 8), np.arange(5))
    assert len(vio.resample_indices(300, 30, 8)) == 80
    assert vio.clip_starts(10, 4) == [0, 4]
    assert vio.clip_starts(10, 4, stride=2) == [0, 2, 4, 6]
    assert vio.clip_starts(10, 4, stride=2, max_clips=2) == [0, 2]
    assert vio.clip_starts(3, 4) == []
    v = np.arange(30, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    clip = vio.sample_clip(v, 30, num_frames=4, target_fps=10, start=1, size=2)
    assert clip.shape == (4, 2, 2, 3)
    np.testing.assert_array_equal(clip[:, 0, 0, 0], [3, 6, 9, 12])
    with pytest.raises(ValueError, match="too short"):
        vio.sample_clip(v, 30, num_frames=20, target_fps=10)


def test_contact_sheet_and_png(tmp_path):
    vids = np.zeros((2, 3, 4, 5, 3), np.uint8)
    vids[1] = 100
    sheet = vio.contact_sheet(vids, separator=1)
    assert sheet.shape == (2 * 4 + 1, 3 * 5 + 2, 3) and sheet.dtype == np.uint8
    assert (sheet[4] == 255).all() and (sheet[:, 5] == 255).all()  # separators
    assert (sheet[5:, :5] == 100).all() and (sheet[:4, :5] == 0).all()
    floats = vio.contact_sheet(np.full((3, 4, 5, 3), -1.0, np.float32), max_frames=2)
    assert floats.shape == (4, 12, 3) and floats[:, :5].max() == 0
    path = vio.save_png(tmp_path / "sub" / "sheet.png", sheet)
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(path)), sheet)
