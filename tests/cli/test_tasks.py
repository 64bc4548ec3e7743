"""`--mode=sample --task=...`: the conditional tasks and SDEdit from files."""

import json

import numpy as np
import pytest

from lumiere_jax import cli
from lumiere_jax.data import video_io
from tests.helpers import task_run_args

PROMPT = "a red square moving left"


@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)


def test_cli_tasks_from_files(conditional_run, video_run, clip, tmp_path):
    workdir, config, _ = conditional_run
    image = video_io.save_png(str(tmp_path / "image.png"), clip[0])
    region = np.zeros((8, 8, 3), np.uint8)
    region[:, 4:] = 255
    mask = video_io.save_png(str(tmp_path / "mask.png"), region)
    video = video_io.write_npy(str(tmp_path / "clip.npy"), clip)
    out = tmp_path / "i2v"
    r = cli.run(config, task_run_args(checkpoint=workdir, task="i2v", image=image, output_dir=str(out)))
    manifest = json.load(open(out / "manifest.json"))
    np.testing.assert_array_equal(np.load(out / manifest[0]["known_npy"])[0], clip[0])
    assert np.load(out / manifest[0]["mask_npy"])[0].all() and r.videos.shape == (1, 4, 8, 8, 3)
    r = cli.run(
        config,
        task_run_args(
            checkpoint=workdir, task="cinemagraph", image=image, mask=mask, output_dir=str(tmp_path / "cine")
        ),
    )
    assert r.mask[0, 1:, :, :4].all() and not r.mask[0, 1:, :, 4:].any()
    r = cli.run(
        config,
        task_run_args(
            checkpoint=workdir,
            task="inpaint",
            input_video=[video],
            mask=mask,
            output_dir=str(tmp_path / "inp"),
            paste_known=True,
        ),
    )
    np.testing.assert_array_equal(r.videos[0][..., :4, :], clip[..., :4, :])
    r = cli.run(
        config,
        task_run_args(
            checkpoint=workdir,
            task="outpaint",
            input_video=[video],
            outpaint_direction="left",
            outpaint_amount=0.5,
            output_dir=str(tmp_path / "out"),
        ),
    )
    assert not r.mask[0, :, :, :4].any() and r.mask[0, :, :, 4:].all()
    with pytest.raises(ValueError, match="needs --image"):
        cli.run(config, task_run_args(checkpoint=workdir, task="i2v"))
    with pytest.raises(ValueError, match="exactly one of --outpaint_padding"):
        cli.run(config, task_run_args(checkpoint=workdir, task="outpaint", input_video=[video]))
    with pytest.raises(FileNotFoundError, match="nope.png"):
        cli.run(config, task_run_args(checkpoint=workdir, task="i2v", image=str(tmp_path / "nope.png")))
    with pytest.raises(ValueError, match="needs a conditional model"):
        cli.run(video_run[1], task_run_args(checkpoint=video_run[0], task="i2v", image=image))
    r = cli.run(
        video_run[1],
        task_run_args(
            checkpoint=video_run[0], task="sdedit", input_video=[video], strength=0.5, output_dir=str(tmp_path / "sd")
        ),
    )
    assert r.settings["strength"] == 0.5
