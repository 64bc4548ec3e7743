"""Every config builds and validates; the paper-scale ones abstractly (no memory)."""
import glob
import os
import subprocess
import sys

import jax
import pytest

from lumiere_jax import config as config_lib
from lumiere_jax.models.diffusion_model import DiffusionModel
from tests.train.conftest import ROOT, load_config

CONFIGS = [(os.path.basename(p)[:-3], arg) for p in sorted(glob.glob(os.path.join(ROOT, "configs", "*.py")))
           for arg in (("t2i", "video") if os.path.basename(p) in ("tiny.py", "moving_shapes.py") else ("",))]


@pytest.mark.parametrize("name,arg", CONFIGS)
def test_config_builds_and_validates(name, arg):
    config = load_config(name, arg, "/nonexistent")
    model_cfg = config_lib.validate(config)
    params = jax.eval_shape(DiffusionModel(model_cfg).init, jax.random.PRNGKey(0))
    assert sum(a.size for a in jax.tree_util.tree_leaves(params)) > 0


def test_paper_scale_base():
    config = load_config("base", "", "/nonexistent")
    m = config_lib.validate(config)
    assert (m.num_frames, m.resolution, m.stunet.temporal_factor) == (80, 128, 16)
    params = jax.eval_shape(DiffusionModel(m).init, jax.random.PRNGKey(0))
    n = lambda tree: sum(a.size for a in jax.tree_util.tree_leaves(tree))
    assert n(params["denoiser"]["spatial"]) == 826_538_755          # the t2i_base U-Net, verbatim
    config.model.num_frames = 81
    with pytest.raises(ValueError, match=r"num_frames=81 .*multiple of 16, e.g. 80 or 96"):
        config_lib.validate(config)


def test_bad_values_raise():
    config = load_config("tiny", "video", "/nonexistent")
    config.diffusion.prediction_type = "score"
    with pytest.raises(ValueError, match="prediction"):
        config_lib.validate(config)
    config = load_config("tiny", "video", "/nonexistent")
    config.model.resolution = 9
    with pytest.raises(ValueError, match="height=9 is not divisible"):
        config_lib.validate(config)


def test_cli_rejects_unknown_config_keys():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--config",
                        os.path.join(ROOT, "configs/tiny.py"), "--config.train.num_stepz=3"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "num_stepz" in r.stderr
    r = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--config",
                        os.path.join(ROOT, "configs/tiny.py"), "--mode=train"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "needs --workdir" in r.stderr
