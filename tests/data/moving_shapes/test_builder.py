"""moving_shapes tfds builder (data/moving_shapes/builder.py): build, read-back, splits, determinism, pickling."""

import pickle

import numpy as np
import pytest

from lumiere_jax.data import moving_shapes as ms
from tests.data.moving_shapes.test_render import _centroids

tfds = pytest.importorskip("tensorflow_datasets")

TINY = dict(num_train=48, num_test=16, num_held_out=16)


# ---------------------------------------------------------------- tfds build


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("moving_shapes")
    builder = ms.build(str(data_dir), "32px_16f", **TINY)
    return str(data_dir), builder


def _all(source):
    return [source[i] for i in range(len(source))]


def test_config_names():
    assert ms.get_config().name == "32px_16f" and ms.get_config().size == 32
    assert ms.get_config("64px_16f").size == 64 and ms.get_config("64px_16f").num_frames == 16
    cfg = ms.get_config("32px_16f", **TINY)
    assert cfg.name != "32px_16f" and cfg.num_train == 48
    assert ms.get_config("32px_16f", seed=1).name != cfg.name
    assert ms.get_config("32px_16f", size=64) is ms.get_config("64px_16f")
    assert ms.get_config("32px_16f", size=48).name == "48px_16f"
    with pytest.raises(ValueError):
        ms.get_config("128px_99f")


def test_build_and_read_back_with_tfds_data_source(built):
    data_dir, builder = built
    cfg = builder.builder_config
    assert builder.info.splits["train"].num_examples == 48
    src = tfds.data_source(
        "moving_shapes", split="test", data_dir=data_dir, builder_kwargs={"config": cfg}, download=False
    )
    assert len(src) == 16
    rec = src[3]
    assert rec["video"].shape == (16, 32, 32, 3) and rec["video"].dtype == np.uint8
    assert isinstance(rec["caption"], (bytes, str))
    assert ms.decode_record(rec)["caption"] == ms.caption(ms.spec_from_record(rec))


@pytest.mark.parametrize("split", ms.SPLITS)
def test_records_match_generator_and_metadata(built, split):
    data_dir, builder = built
    cfg = builder.builder_config
    src = ms.load_source(data_dir, cfg, split, build_if_missing=False)
    assert len(src) == cfg.num_examples(split)
    records = _all(src)
    expected = [ms.example_spec(cfg.seed, split, i, 32, 16) for i in range(len(src))]
    by_start = {tuple(np.float32(s.start)): s for s in expected}
    assert len(by_start) == len(expected)
    for rec in records:
        assert set(rec) >= {"video", "caption", "color", "shape", "direction", "start", "velocity", "diameter"}
        assert isinstance(rec["caption"], str) and isinstance(rec["color"], str)
        assert rec["video"].shape == (16, 32, 32, 3) and rec["video"].dtype == np.uint8
        assert rec["start"].dtype == np.float32 and rec["velocity"].shape == (2,)
        assert ms.parse_caption(rec["caption"]) == (rec["color"], rec["shape"], rec["direction"])
        spec = by_start.pop(tuple(rec["start"]))  # each generated example exactly once
        assert rec["caption"] == ms.caption(spec)
        np.testing.assert_array_equal(rec["video"], ms.render_clip(spec, 16, 32))
        np.testing.assert_allclose(rec["velocity"], spec.velocity, rtol=1e-6)
        # Metadata agrees with the pixels: centroid velocity and colour.
        slope = np.polyfit(np.arange(16), _centroids(rec["video"]), 1)[0]
        np.testing.assert_allclose(slope, rec["velocity"], atol=0.02)
        unit = ms.DIRECTION_VECTORS[rec["direction"]]
        assert np.dot(slope, unit) > 0.5
        full = rec["video"][rec["video"].max(axis=-1) == 255]
        assert (full == np.array(ms.COLORS[rec["color"]])).all()
    assert not by_start


def test_splits_hold_the_right_combos(built):
    data_dir, builder = built
    cfg = builder.builder_config
    combos = {
        s: {(r["color"], r["shape"], r["direction"]) for r in _all(ms.load_source(data_dir, cfg, s))} for s in ms.SPLITS
    }
    assert not combos["train"] & ms.HELD_OUT and not combos["test"] & ms.HELD_OUT
    assert combos["held_out"] == set(ms.HELD_OUT)  # 16 examples, balanced over 8 combos
    assert len(combos["train"]) == 48  # balanced: 48 distinct of the 76 train combos
    train = ms.load_source(data_dir, cfg, "train")
    test = ms.load_source(data_dir, cfg, "test")
    starts = {tuple(r["start"]) for r in _all(train)}
    assert not starts & {tuple(r["start"]) for r in _all(test)}  # disjoint seeds


def test_build_is_deterministic(built, tmp_path):
    data_dir, builder = built
    ms.build(str(tmp_path), "32px_16f", **TINY)
    for split in ms.SPLITS:
        a = ms.load_source(data_dir, builder.builder_config, split)
        b = ms.load_source(str(tmp_path), "32px_16f", split, **TINY)
        assert len(a) == len(b)
        for i in range(len(a)):
            ra, rb = a[i], b[i]
            np.testing.assert_array_equal(ra["video"], rb["video"])
            assert ra["caption"] == rb["caption"]
            np.testing.assert_array_equal(ra["start"], rb["start"])
    # A different seed gives different clips.
    c = ms.load_source(str(tmp_path), "32px_16f", "held_out", seed=1, **TINY)
    assert {tuple(r["start"]) for r in _all(c)} != {tuple(r["start"]) for r in _all(b)}


def test_64px_config_and_batched_access(tmp_path):
    src = ms.load_source(str(tmp_path), "64px_16f", "train", num_train=3, num_test=1, num_held_out=1)
    recs = src.__getitems__([0, 2, -1])
    assert [r["video"].shape for r in recs] == [(16, 64, 64, 3)] * 3
    np.testing.assert_array_equal(recs[1]["video"], src[2]["video"])
    assert recs[2]["caption"] == src[2]["caption"]
    assert all(r["diameter"] == 16 for r in recs)
    with pytest.raises(IndexError):
        src[3]
    with pytest.raises(FileNotFoundError):
        ms.load_source(str(tmp_path), "32px_16f", "train", build_if_missing=False)


def test_sources_and_builders_pickle(built, tmp_path):
    """grain worker processes receive sources by pickling."""
    data_dir, builder = built
    src = ms.load_source(data_dir, builder.builder_config, "held_out")
    copy = pickle.loads(pickle.dumps(src))
    assert len(copy) == len(src) and copy[3]["caption"] == src[3]["caption"]
    np.testing.assert_array_equal(copy[3]["video"], src[3]["video"])
    named = pickle.loads(pickle.dumps(ms.builder(str(tmp_path), "64px_16f")))  # registered config
    assert named.builder_config.name == "64px_16f" and named.builder_config.size == 64
