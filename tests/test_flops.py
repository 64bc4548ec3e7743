"""The analytic FLOPs count (lumiere_jax/flops.py) equals the matmul/conv FLOPs of the traced model."""

import dataclasses

import jax
import pytest

from lumiere_jax import flops
from lumiere_jax.models import STUNet, UNet
from lumiere_jax.models.stunet import dummy_inputs
from tests.models.conftest import CONFIGS, MICRO


@pytest.mark.parametrize("name", ["micro", "if", "no_temporal_downsampling", "image"])
def test_analytic_flops_match_the_program(name):
    cfg = {"micro": MICRO, **CONFIGS}.get(name, MICRO)
    if name == "no_temporal_downsampling":
        cfg = dataclasses.replace(CONFIGS["imagen"], num_temporal_downsamples=0)
    batch, frames, size, text_len = 2, 8, 16, 5
    x, t, text, mask = dummy_inputs(cfg, frames, size, batch=batch, text_len=text_len)
    text = jax.ShapeDtypeStruct(text.shape[:-1] + (cfg.unet.text_dim,), text.dtype)
    model = UNet(cfg.unet) if name == "image" else STUNet(cfg)
    if name == "image":
        x = x[:, 0]
        frames = 1
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x, t, text, mask)
    jaxpr = jax.make_jaxpr(model.apply)(params, x, t, text, mask)
    counted = flops.program_matmul_flops(jaxpr)
    analytic = flops.denoiser_flops(
        cfg.unet if name == "image" else cfg, batch=batch, frames=frames, size=size, text_len=text_len
    )
    assert analytic == counted
