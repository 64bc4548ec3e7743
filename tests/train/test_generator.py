"""Sampling API: shapes, per-sample seeds, outputs on disk."""
import json
import os

import numpy as np
import pytest

from lumiere_jax import pipeline


@pytest.fixture(scope="module")
def generator(video_run):
    return pipeline.Generator.load(video_run[0])


def test_generate_shapes_and_per_sample_seeds(generator):
    prompts = ["a red square moving left", "a blue circle moving up"]
    r = generator.generate(prompts, num_samples=1, seed=5, progress=False)
    assert r.videos.shape == (2, 4, 8, 8, 3) and r.videos.dtype == np.uint8
    assert r.seeds == [5, 6] and r.prompts == prompts
    alone = generator.generate(prompts[1:], seed=6, progress=False)
    np.testing.assert_array_equal(alone.videos[0], r.videos[1])         # reproducible on its own
    other = generator.generate(prompts[1:], seed=7, progress=False)
    assert not np.array_equal(other.videos[0], r.videos[1])
    with pytest.raises(ValueError, match="unknown sampling setting"):
        generator.generate(prompts, cfg_scale=2.0)


def test_write_outputs(generator, tmp_path):
    r = generator.generate(["a white triangle moving down"], num_samples=2, seed=0, progress=False,
                           sampler="dpmpp_2m", num_steps=2)
    manifest = pipeline.write_outputs(r, str(tmp_path), fps=4)
    on_disk = json.load(open(tmp_path / "manifest.json"))
    assert manifest == on_disk and len(on_disk) == 2
    assert on_disk[1]["seed"] == 1 and on_disk[1]["sampler"] == "dpmpp_2m" and on_disk[1]["num_steps"] == 2
    for entry in on_disk:
        for key in ("mp4", "gif", "npy"):
            assert os.path.getsize(tmp_path / entry[key]) > 0
    np.testing.assert_array_equal(np.load(tmp_path / "0001.npy"), r.videos[1])
    assert os.path.getsize(tmp_path / "contact_sheet.png") > 0


def test_evaluate_split_is_strict_json(generator, video_run):
    from lumiere_jax.data import moving_shapes
    from lumiere_jax.eval import evaluate
    scores = evaluate.evaluate_split(generator, video_run[1], "held_out", 2, seed=0, num_steps=2)
    assert scores["num_videos"] == 2 and scores["split"] == "held_out"
    assert all(moving_shapes.parse_caption(v["prompt"]) in moving_shapes.HELD_OUT for v in scores["per_video"])
    text = json.dumps(evaluate.json_safe(scores), allow_nan=False)        # raises on NaN
    assert "color_accuracy" in text
    assert evaluate.format_scores(scores).startswith("[held_out, 2 videos]")
