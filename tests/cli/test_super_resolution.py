"""The CLI's super-resolution paths: up-sampling files and the cascade."""

import json

import numpy as np
import pytest

from lumiere_jax import cli
from tests.eval.test_fvd import _ColourMotion
from tests.helpers import load_config
from tests.sampling.test_super_resolution import _fresh_ssr_generator, _low


def _flags(**kw):
    base = dict(
        mode="sample",
        workdir=None,
        checkpoint=None,
        num_steps=2,
        guidance_scale=None,
        sampler=None,
        seed=0,
        prompt=[],
        prompts_file=None,
        output_dir=None,
        num_samples=None,
        input_video=[],
        multidiffusion=True,
    )
    return cli.RunArgs(**{**base, **kw})


def test_cli_upsamples_video_files(ssr_run, tmp_path):
    from lumiere_jax.data import video_io

    workdir, config, _ = ssr_run
    src = video_io.write_npy(str(tmp_path / "low.npy"), _low(1)[0])
    out = tmp_path / "out"
    r = cli.run(
        config, _flags(checkpoint=workdir, input_video=[src], prompt=["a red square moving left"], output_dir=str(out))
    )
    assert r.videos.shape == (1, 4, 8, 8, 3)
    manifest = json.load(open(out / "manifest.json"))
    np.testing.assert_array_equal(np.load(out / manifest[0]["npy"]), r.videos[0])
    np.testing.assert_array_equal(np.load(out / manifest[0]["low_res_npy"]), _low(1)[0])
    with pytest.raises(ValueError, match="pass --input_video"):
        cli.run(config, _flags(checkpoint=workdir))
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        cli.run(config, _flags(checkpoint=workdir, input_video=[str(tmp_path / "missing.npy")]))


def test_cli_cascade_sample_and_eval(video_run, tmp_path, monkeypatch):
    from lumiere_jax.train import checkpoint

    ssr = _fresh_ssr_generator(8, 16)
    checkpoint.export(str(tmp_path / "ssr"), ssr.params, ssr.config, "float32")
    config = load_config("tiny", "ssr", video_run[1].data.data_dir)
    config.model.low_resolution, config.model.resolution = 8, 16
    config.cascade.base, config.cascade.ssr = video_run[0], str(tmp_path / "ssr")
    config.sample.thresholding = False  # the CLI config is the SSR stage's; the base keeps its stored settings
    r = cli.run(config, _flags(output_dir=str(tmp_path / "out"), prompt=["a red square moving left"]))
    assert r.videos.shape == (1, 4, 16, 16, 3)
    entry = json.load(open(tmp_path / "out" / "manifest.json"))[0]
    assert entry["ssr"]["num_steps"] == entry["base"]["num_steps"] == 2  # --num_steps: both stages
    assert entry["ssr"]["thresholding"] is False and entry["base"]["thresholding"] is True
    config.eval.fvd_num_real = 4  # FVD of both stages, with a cheap stand-in for the I3D (tests/eval/test_fvd.py)
    monkeypatch.setitem(cli._FEATURES, "i3d", _ColourMotion())
    scores = cli.run(
        config, _flags(mode="eval", eval_split="held_out", eval_num_prompts=2, output_dir=str(tmp_path / "eval"))
    )["held_out"]
    assert scores["base"]["fvd"]["num_real"] == scores["ssr"]["fvd"]["num_real"] == 4
    assert scores["base"]["fvd"]["fvd"] != scores["ssr"]["fvd"]["fvd"]  # each stage against real clips at its size
    assert scores["num_videos"] == 2 and set(scores) >= {"base", "ssr"}
    assert scores["ssr"]["num_videos"] == scores["base"]["num_videos"] == 2
    assert set(scores["agreement"]) == {"color", "shape", "direction"}
    assert all(0.0 <= v <= 1.0 for v in scores["agreement"].values())
    on_disk = json.load(open(tmp_path / "eval" / "eval_held_out.json"))
    assert on_disk["base"]["num_videos"] == 2
    config.cascade.ssr = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="missing"):
        cli.run(config, _flags())
