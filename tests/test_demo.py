"""`make demo` (lumiere_jax/demo.py) end to end, on the tiny config and the tests' tiny runs as its
"shipped" references (the demo's own flags; the cascade step needs a base and an SSR model of matching
sizes, which the tiny runs are not, so it is the one step left out). The demo's T2I stage starts from a
copy of the shared tiny T2I run at its last step, so it resumes as finished (what a second `make demo`
does); its video stage trains from it."""

import json
import os
import shutil

import jax
import numpy as np
from absl import flags
from absl.testing import flagsaver

from lumiere_jax import demo
from tests.helpers import ROOT


def test_demo_trains_samples_and_scores_both_models(tmp_path, data_dir, t2i_run, video_run, conditional_run, capsys):
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    shutil.copytree(t2i_run[0], tmp_path / "t2i")
    os.symlink(data_dir, tmp_path / "data")  # the demo's data directory: the tiny runs' dataset, built
    settings = dict(
        workdir=str(tmp_path),
        config=os.path.join(ROOT, "configs", "tiny.py"),
        t2i_steps=t2i_run[1].train.num_steps,
        video_steps=video_run[1].train.num_steps,  # the fixture's schedule: its compiled train step
        t2i_batch=2,
        video_batch=2,
        num_train_prompts=1,
        num_eval=1,
        num_cascade=0,
        num_i2v=1,
        sample_steps=2,
        reference=video_run[0],
        reference_conditional=conditional_run[0],
    )
    cache = jax.config.jax_compilation_cache_dir
    with flagsaver.flagsaver(**settings):
        demo.main([])
    # the demo's `runtime.setup` kept this process's cache (a changed directory changes every cache key)
    assert jax.config.jax_compilation_cache_dir == cache
    out = capsys.readouterr().out
    for stage in ("[1/6]", "[2/6]", "[3/6]", "[4/6]", "[5/6]", "[6/6]", "demo done in"):
        assert stage in out, (stage, out[-2000:])
    assert "this run, held-out prompts" in out and "reference, held-out prompts" in out  # the side-by-side table
    for folder, n in (("samples", 2), ("samples_reference", 2), ("samples_reference_i2v", 1)):
        manifest = json.load(open(tmp_path / folder / "manifest.json"))
        assert len(manifest) == n, (folder, manifest)
        video = np.load(tmp_path / folder / manifest[0]["npy"])
        assert video.dtype == np.uint8 and video.shape == (4, 8, 8, 3) and video.std() > 0, folder
    assert (tmp_path / "t2i" / "checkpoints").is_dir() and (tmp_path / "video" / "checkpoints").is_dir()
