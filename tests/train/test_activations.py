"""Saved activations (the residuals autodiff keeps between forward and backward), counted on
abstract inputs: the numbers the memory plan reports for each remat policy."""

import jax
import jax.numpy as jnp
import pytest

from lumiere_jax import config as config_lib
from lumiere_jax.train import validation
from lumiere_jax.diffusion import schedules
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.train import activations, step as step_lib

sds = jax.ShapeDtypeStruct


def _mlp(w, x):
    return jnp.sum(jnp.sin(x @ w))


def test_counts_residuals_not_arguments():
    w, x = sds((8, 16), jnp.float32), sds((4, 8), jnp.float32)
    saved = activations.saved_activations(_mlp, w, x)
    # d/dw sum(sin(x w)) = x^T cos(x w): x is an argument (not counted), cos(x w) is [4, 16] f32.
    assert saved.nbytes == 4 * 16 * 4
    assert saved.residuals[0].source.startswith("cos")
    # A linear function of its arguments keeps nothing but them.
    assert activations.saved_activations(lambda w, x: jnp.sum(x @ w), w, x).nbytes == 0
    # Full rematerialisation keeps only the inputs (arguments here).
    assert activations.saved_activations(jax.checkpoint(_mlp), w, x).nbytes == 0
    # Twice the batch, twice the residuals.
    assert activations.saved_activations(_mlp, w, sds((8, 8), jnp.float32)).nbytes == 2 * saved.nbytes


def test_only_the_differentiated_arguments_need_their_inputs():
    def two_layers(w1, w2, x):
        return jnp.sum(jnp.tanh(x @ w1) @ w2)

    w1, w2, x = sds((8, 8), jnp.float32), sds((8, 4), jnp.float32), sds((2, 8), jnp.float32)
    everything = activations.saved_activations(two_layers, w1, w2, x)
    w2_only = activations.saved_activations(two_layers, w1, w2, x, argnums=(1,))
    assert 0 < w2_only.nbytes < everything.nbytes


def _tiny_saved(remat: str) -> int:
    config = config_lib.load_config_file("configs/tiny.py", "video")
    config.model.remat = remat
    model = DiffusionModel(validation.validate(config))
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    mc = model.config
    batch = {
        "video": sds((2, mc.num_frames, mc.resolution, mc.resolution, 3), jnp.float32),
        "text_ids": sds((2, mc.text_length), jnp.int32),
        "text_mask": sds((2, mc.text_length), jnp.bool_),
    }
    sched = schedules.get_schedule(config.diffusion.schedule)
    loss = lambda p, b: step_lib.loss_fn(model, sched, config.diffusion, p, b, jax.random.PRNGKey(0))
    return activations.saved_activations(loss, params, batch, argnums=(0,)).nbytes


@pytest.fixture(scope="module")
def tiny_saved():
    return {r: _tiny_saved(r) for r in ("none", "dots_and_convs_saveable", "full")}


def test_remat_policies_order_the_saved_activations(tiny_saved):
    assert tiny_saved["full"] < tiny_saved["dots_and_convs_saveable"] < tiny_saved["none"]
    assert tiny_saved["full"] < 0.25 * tiny_saved["none"]
