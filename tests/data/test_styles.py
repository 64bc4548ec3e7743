"""Style variants of moving_shapes frames (config.data.style)."""

import os

import numpy as np
import pytest

from lumiere_jax import config as config_lib
from lumiere_jax.data import moving_shapes as ms
from lumiere_jax.data import sources, styles
from lumiere_jax.data.input_pipeline import uint8_to_float
from lumiere_jax.eval import probe
from lumiere_jax.train import validation
from tests.helpers import ROOT

COMBOS = [
    ("red", "square", "left"),
    ("green", "circle", "up"),
    ("blue", "triangle", "right"),
    ("white", "triangle", "down"),
    ("yellow", "circle", "left"),
]


def clip(combo, size=32, frames=8, seed=0):
    spec = ms.sample_spec(np.random.default_rng(seed), size, frames, combo=combo)
    return ms.render_clip(spec, frames, size)


def noisy(frames, seed=1, std=10.0):
    """Frames as a generator might produce them: Gaussian pixel noise, then float -> uint8."""
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(frames + rng.normal(0.0, std, frames.shape)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("combo", COMBOS)
def test_transforms(combo):
    video = clip(combo)
    assert styles.apply_style(video, "none") is video
    lit = video.max(-1) > styles.LIT_THRESHOLD
    interior = styles.interior_mask(lit)
    assert interior.any()

    out = styles.apply_style(video, "outline")
    assert out.shape == video.shape and out.dtype == np.uint8
    assert (out[interior] == 0).all()  # interior -> background
    np.testing.assert_array_equal(out[~interior], video[~interior])  # ring (and the rest) kept
    ring = lit & ~interior
    assert ring.any() and not styles.interior_mask(out.max(-1) > styles.LIT_THRESHOLD).any()  # 1 px ring

    tint = styles.apply_style(video, "tinted")
    background = video.max(-1) == 0
    assert (tint[background] == styles.TINT).all()
    full = video.max(-1) == 255
    np.testing.assert_array_equal(tint[full], video[full])  # object keeps its colour
    edge = ~background & ~full  # anti-aliased: a*colour + (1-a)*tint
    a = video[edge].max(-1, keepdims=True) / 255.0
    colour = np.asarray(ms.COLORS[combo[0]])
    np.testing.assert_allclose(tint[edge], a * colour + (1 - a) * np.asarray(styles.TINT), atol=0.6)


def test_tinted_keeps_the_probe_reading():
    """The tint stays below the probe's object threshold: the probe reads tinted clips like untinted
    ones; with generator-like noise at least presence, colour and direction (its fill-ratio shape
    reading is sensitive to any non-black background)."""
    for combo in COMBOS:
        video = clip(combo)
        tinted = styles.apply_style(video, "tinted")
        clean = probe.probe(tinted)
        assert (clean.color, clean.shape, clean.direction, clean.presence) == (*combo, 1.0)
        for seed in range(3):
            a, b = probe.probe(noisy(video, seed)), probe.probe(noisy(tinted, seed))
            assert (b.color, b.direction, b.presence) == (a.color, a.direction, a.presence) == (combo[0], combo[2], 1)


@pytest.mark.parametrize("make_noisy", [False, True])
def test_statistics_separate_styles(make_noisy):
    for i, combo in enumerate(COMBOS):
        video = clip(combo, seed=i)
        stats = {}
        for style in styles.STYLES:
            frames = styles.apply_style(video, style)
            if make_noisy:
                frames = uint8_to_float(noisy(frames, seed=i))  # float in [-1, 1] (model output) works too
            stats[style] = styles.style_statistics(frames)
        none, outline, tinted = stats["none"], stats["outline"], stats["tinted"]
        for s in stats.values():
            assert s["object_frames"] == 8
        np.testing.assert_allclose(none["background_rgb"], 0, atol=3)
        np.testing.assert_allclose(outline["background_rgb"], 0, atol=3)
        np.testing.assert_allclose(tinted["background_rgb"], styles.TINT, atol=3)
        assert none["interior_ratio"] > 0.3 and tinted["interior_ratio"] > 0.3
        assert outline["interior_ratio"] < 0.05
        assert outline["fill_ratio"] < none["fill_ratio"] - 0.2
        assert abs(tinted["fill_ratio"] - none["fill_ratio"]) < 0.1


def test_errors():
    frames = clip(COMBOS[0])
    with pytest.raises(ValueError, match=r"unknown style 'sketch'; valid styles: \('none', 'outline', 'tinted'\)"):
        styles.apply_style(frames, "sketch")
    with pytest.raises(TypeError, match="uint8"):
        styles.apply_style(frames.astype(np.float32), "outline")
    with pytest.raises(ValueError, match=r"\[\.\.\., H, W, 3\]"):
        styles.apply_style(frames[..., :2], "tinted")
    config = config_lib.load_config_file(os.path.join(ROOT, "configs", "tiny.py"), "t2i")
    config.data.style = "sketch"
    with pytest.raises(ValueError, match="config.data.style must be one of"):
        validation.validate(config)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("styled_data"))


@pytest.mark.parametrize("stage", ["t2i", "video"])
def test_pipeline_batches_are_styled(data_dir, stage):
    config = config_lib.load_config_file(os.path.join(ROOT, "configs", "tiny.py"), stage)
    config.data.data_dir = data_dir
    config.model.resolution = 16  # D = 4 px: every object has interior pixels
    config.data.num_train, config.data.num_eval = 4, 2
    batches = {}
    for style in ("none", "outline"):
        config.data.style = style
        model_cfg = validation.validate(config)
        batches[style] = sources.make_pipeline(config, model_cfg).get_batch(0)
    key = "image" if stage == "t2i" else "video"
    plain, styled = batches["none"], batches["outline"]
    np.testing.assert_array_equal(plain["index"], styled["index"])
    assert plain["caption"].tolist() == styled["caption"].tolist()
    as_uint8 = np.rint((plain[key] + 1.0) * 127.5).astype(np.uint8)
    np.testing.assert_array_equal(styled[key], uint8_to_float(styles.apply_style(as_uint8, "outline")))
    assert not np.array_equal(styled[key], plain[key])
