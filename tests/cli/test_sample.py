"""`--mode=sample` text-to-video: --negative_prompt and --latents reach the sampler."""

import json

import jax
import numpy as np
import pytest

from lumiere_jax import cli, sampling

PROMPT = "a red square moving left"


def test_negative_prompt_and_latents_flags(video_run, tmp_path):
    workdir, config, _ = video_run
    gen = sampling.Generator.load(workdir)
    shape = gen.model.config.sample_shape(1)[1:]
    latents = np.stack([np.asarray(jax.random.normal(jax.random.PRNGKey(9 + i), shape)) for i in range(2)])
    np.save(tmp_path / "lat.npy", latents[::-1])
    args = dict(mode="sample", checkpoint=workdir, prompt=[PROMPT], num_samples=2, seed=0, num_steps=2)
    r = cli.run(
        config,
        cli.RunArgs(
            **args,
            negative_prompt="a blue circle moving up",
            latents=str(tmp_path / "lat.npy"),
            output_dir=str(tmp_path / "a"),
        ),
    )
    want = gen.generate(
        [PROMPT],
        num_samples=2,
        seed=0,
        num_steps=2,
        negative_prompt="a blue circle moving up",
        latents=latents[::-1],
        progress=False,
    )
    np.testing.assert_array_equal(r.videos, want.videos)
    assert json.load(open(tmp_path / "a" / "manifest.json"))[0]["negative_prompt"] == "a blue circle moving up"
    np.save(tmp_path / "bad.npy", latents[:1])
    with pytest.raises(ValueError, match=r"--latents must be \[2, "):
        cli.run(config, cli.RunArgs(**args, latents=str(tmp_path / "bad.npy"), output_dir=str(tmp_path / "b")))
