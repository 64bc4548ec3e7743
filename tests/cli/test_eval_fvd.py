"""--mode=eval reports FVD against the split's real clips and the real-vs-real floor (the I3D itself:
tests/eval/test_i3d.py; the statistics, cache and floor: tests/eval/test_fvd.py)."""

import json

import numpy as np
import pytest

from lumiere_jax import cli
from tests.eval.test_fvd import _ColourMotion
from tests.helpers import load_config


def test_eval_mode_reports_fvd_and_its_floor(video_run, tmp_path, monkeypatch):
    """--mode=eval with config.eval.fvd_num_real > 0 scores FVD and the floor in its JSON and printout."""
    workdir, config, _ = video_run
    config = load_config("tiny", "video", config.data.data_dir, **{"eval.fvd_num_real": 4})
    monkeypatch.setitem(cli._FEATURES, "i3d", _ColourMotion())
    args = cli.RunArgs(mode="eval", checkpoint=workdir, num_steps=1, eval_num_prompts=2, output_dir=str(tmp_path))
    scores = cli.run(config, args)["held_out"]
    assert scores["fvd"]["num_generated"] == 2 and scores["fvd"]["num_real"] == 4
    assert scores["fvd"]["fvd"] > 0 and scores["fvd"]["fvd_floor"] >= 0
    assert np.load(tmp_path / "fvd_features_held_out.npy").shape == (2, 8)  # for FVD at other counts
    with open(tmp_path / "eval_held_out.json") as f:
        assert json.load(f)["fvd"]["fvd"] == pytest.approx(scores["fvd"]["fvd"])


def test_eval_mode_scores_a_t2i_model_on_single_frames(t2i_run, tmp_path):
    """A T2I model's images are probed as one-frame videos: colour and shape, no direction, jitter or
    FVD (config.eval.fvd_num_real > 0 is not applied to images)."""
    workdir, config, _ = t2i_run
    config = load_config("tiny", "t2i", config.data.data_dir, **{"eval.fvd_num_real": 4})
    args = cli.RunArgs(mode="eval", checkpoint=workdir, num_steps=1, eval_num_prompts=2, output_dir=str(tmp_path))
    scores = cli.run(config, args)["held_out"]
    assert scores["images"] and scores["num_videos"] == 2 and "fvd" not in scores
    assert 0.0 <= scores["color_accuracy"] <= 1.0 and np.isnan(scores["direction_accuracy"])
    assert all(p["direction"] == "none" and p["direction_correct"] is None for p in scores["per_video"])
    with open(tmp_path / "eval_held_out.json") as f:
        assert json.load(f)["num_videos"] == 2
