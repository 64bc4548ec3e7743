"""runtime: process settings and `jit_once` (initialisation compiled without backend optimisation)."""

import jax
import numpy as np

from lumiere_jax import runtime
from lumiere_jax.models import build
from lumiere_jax.models.diffusion_model import DiffusionModel
from tests.helpers import load_config


def test_jit_once_initialises_as_jit_does(tmp_path):
    """The parameters of a tiny U-Net from `jit_once(model.init)` equal `jax.jit`'s up to float32
    rounding (the cheaper compile changes no value beyond it)."""
    config = load_config("tiny", "t2i", str(tmp_path))
    model = DiffusionModel(build.model_config(config.to_dict()))
    rng = jax.random.PRNGKey(3)
    once, ref = runtime.jit_once(model.init)(rng), jax.jit(model.init)(rng)
    assert jax.tree_util.tree_structure(once) == jax.tree_util.tree_structure(ref)
    for a, b in zip(jax.tree_util.tree_leaves(once), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert any(float(np.abs(a).max()) > 0 for a in jax.tree_util.tree_leaves(once))  # random, not all zero
