"""Super-resolution sampling: Generator.upsample (MultiDiffusion windows) and the Cascade."""

import numpy as np
import pytest

from lumiere_jax import sampling
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.train import trainer, validation
from tests.helpers import load_config, perturbed_params


@pytest.fixture(scope="module")
def ssr(ssr_run):
    return sampling.Generator.load(ssr_run[0])


def _low(n=2, t=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, t, 4, 4, 3), dtype=np.uint8)


def test_upsample_shapes_seeds_and_windows(ssr):
    low = _low()
    r = ssr.upsample(low, ["a red square moving left", "a blue circle moving up"], seed=3, progress=False, num_steps=2)
    assert r.videos.shape == (2, 4, 8, 8, 3) and r.videos.dtype == np.uint8
    np.testing.assert_array_equal(r.low_res, low)
    assert r.seeds == [3, 4] and r.settings["overlap"] == 1 and r.settings["multidiffusion"]
    alone = ssr.upsample(low[1:], "a blue circle moving up", seed=4, progress=False, num_steps=2)
    np.testing.assert_array_equal(alone.videos[0], r.videos[1])
    # baseline without overlap, and one window over the whole clip: valid but different results
    stitched = ssr.upsample(low, "x", seed=3, progress=False, num_steps=2, multidiffusion=False)
    whole = ssr.upsample(low, "x", seed=3, progress=False, num_steps=2, window=4)
    assert stitched.settings["multidiffusion"] is False
    assert not np.array_equal(stitched.videos, whole.videos)


def test_upsample_is_conditioned_on_its_input_and_level(ssr):
    """Same seed and prompt: a different low-res input or augmentation level changes the output
    (the conditioning reaches the model), the same ones reproduce it."""
    a, b = _low(1, seed=1), _low(1, seed=2)
    run = lambda v, lvl: ssr.upsample(v, "x", seed=0, progress=False, num_steps=2, aug_level=lvl).videos
    ref = run(a, 0)
    np.testing.assert_array_equal(run(a, 0), ref)
    assert np.abs(run(b, 0).astype(int) - ref).mean() > 1
    assert np.abs(run(a, 900).astype(int) - ref).mean() > 1


def test_upsample_takes_the_guidance_interval(ssr):
    """`high_noise_guidance_scale` reaches the super-resolution step: equal to the base scale it
    changes nothing (up to rounding: another compiled step), another scale changes the video, and
    one that starts above every sampled timestep is never used."""
    low = _low(1, seed=1)
    run = lambda **kw: ssr.upsample(low, "x", seed=0, progress=False, num_steps=2, guidance_scale=3.0, **kw).videos
    base = run().astype(int)
    assert np.abs(run(high_noise_guidance_scale=3.0).astype(int) - base).max() <= 1
    assert np.abs(run(high_noise_guidance_scale=3.0, high_noise_from=1.0).astype(int) - base).max() <= 1
    assert np.abs(run(high_noise_guidance_scale=12.0).astype(int) - base).mean() > 1


def test_upsample_validates_inputs(ssr, video_run):
    with pytest.raises(ValueError, match="4x4 inputs, got 8x8"):
        ssr.upsample(np.zeros((1, 4, 8, 8, 3), np.uint8), "x", progress=False)
    with pytest.raises(ValueError, match="2 prompts for 3 videos"):
        ssr.upsample(_low(3), ["a", "b"], progress=False)
    with pytest.raises(ValueError, match=r"expected videos \[N, T, h, w, 3\]"):
        ssr.upsample(np.zeros((4, 4, 4, 3), np.uint8), "x", progress=False)
    with pytest.raises(ValueError, match="shorter than one window|num_frames"):
        ssr.upsample(_low(1, t=1), "x", progress=False)
    with pytest.raises(ValueError, match="unknown super-resolution setting"):
        ssr.upsample(_low(1), "x", progress=False, windows=3)
    with pytest.raises(ValueError, match="use Generator.upsample"):
        ssr.generate(["a red square moving left"])
    base = sampling.Generator.load(video_run[0])
    with pytest.raises(ValueError, match="needs a super-resolution model"):
        base.upsample(_low(1), "x")
    with pytest.raises(ValueError, match="makes 8px frames, the SSR model takes 4px"):
        sampling.Cascade(base, ssr)


def _fresh_ssr_generator(low_resolution: int, resolution: int) -> sampling.Generator:
    config = load_config("tiny", "ssr", "")
    config.model.low_resolution, config.model.resolution = low_resolution, resolution
    model = DiffusionModel(validation.validate(config))
    return sampling.Generator(model, perturbed_params(model), trainer.config_json(config))


def test_cascade_chains_base_and_ssr(video_run):
    base = sampling.Generator.load(video_run[0])
    cascade = sampling.Cascade(base, _fresh_ssr_generator(8, 16))
    r = cascade.generate(
        ["a red square moving left"],
        seed=2,
        progress=False,
        base_overrides={"num_steps": 2},
        ssr_overrides={"num_steps": 2},
    )
    assert r.videos.shape == (1, 4, 16, 16, 3) and r.low_res.shape == (1, 4, 8, 8, 3)
    low = base.generate(["a red square moving left"], seed=2, progress=False, num_steps=2)
    np.testing.assert_array_equal(r.low_res, low.videos)
    assert r.settings["base"]["num_steps"] == 2 and r.settings["ssr"]["num_steps"] == 2
