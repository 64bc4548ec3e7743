"""The training objective (`train.step.loss_fn`) reads its config."""

import jax
import jax.numpy as jnp
import numpy as np

from lumiere_jax.train import validation
from lumiere_jax.diffusion import schedules
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.train import step

from tests.helpers import load_config, perturbed_params


def test_loss_draws_timesteps_as_configured(data_dir):
    """The v-prediction target is ~eps (E[v^2] = 1) at t = 0 and ~-x0 (x0 = 0.1 here) at t = T - 1, and a
    fresh model outputs little, so the loss is ~1 with every timestep pushed to 0 and far smaller with
    every timestep pushed to T - 1. Were the setting ignored, both would draw the same timesteps and
    give the same loss (random parameters, no init compile, with the output convolution zero as at init)."""
    # configs/tiny.py:t2i with a one-level U-Net: four losses to compile, each cheaper than the video model's
    config = load_config("tiny", "t2i", data_dir)
    config.model.unet.channel_mult, config.model.unet.attention_resolutions = (1,), (1,)
    config.model.temporal.num_temporal_downsamples = 0
    model = DiffusionModel(validation.validate(config))
    params = perturbed_params(model)
    params["denoiser"]["conv_out"] = jax.tree.map(jnp.zeros_like, params["denoiser"]["conv_out"])
    shape = model.config.sample_shape(2)
    ids = jnp.ones((2, model.config.text_length), jnp.int32)
    batch = {"image": jnp.full(shape, 0.1), "text_ids": ids, "text_mask": ids > 0}
    sched = schedules.get_schedule(config.diffusion.schedule)

    def loss(mean, **kw):
        d = {
            **config.diffusion.to_dict(),
            "timestep_sampling": "logit_normal",
            "timestep_logit_mean": mean,
            "timestep_logit_std": 0.01,
            "cond_drop_prob": 0.0,
            **kw,
        }
        return float(jax.jit(lambda p: step.loss_fn(model, sched, d, p, batch, jax.random.PRNGKey(1)))(params))

    assert config.diffusion.prediction_type == "v_prediction"
    np.testing.assert_allclose(loss(-12.0), 1.0, atol=0.1)
    assert loss(12.0) < 0.2
    # the mixture's second component, read from the config: all of the batch there at weight 1
    mixture = dict(timestep_sampling="logit_normal_mixture", timestep_logit_mean2=12.0)
    assert loss(-12.0, **mixture, timestep_mixture_weight=1.0) < 0.2
    np.testing.assert_allclose(loss(-12.0, **mixture, timestep_mixture_weight=0.0), 1.0, atol=0.1)
