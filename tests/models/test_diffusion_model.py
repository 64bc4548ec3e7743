"""DiffusionModel: conversion of an unconditional model into the 7-channel conditional one."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.models.diffusion_model import DiffusionModel, expand_input_channels
from lumiere_jax.train import validation
from tests.helpers import load_config, perturbed, perturbed_params


def _conditional(m):
    unet = dataclasses.replace(m.stunet.unet, in_channels=7)
    return m.replace(conditioning="masked", stunet=dataclasses.replace(m.stunet, unet=unet))


@pytest.mark.parametrize("stage", ["video", "t2i"])
def test_three_to_seven_channels_computes_the_unconditional_model(stage):
    m = validation.validate(load_config("tiny", stage, ""))
    base, cond_model = DiffusionModel(m), DiffusionModel(_conditional(m))
    params = perturbed_params(base)
    converted = expand_input_channels(params, 7)
    shape = m.sample_shape(2)
    x = jax.random.normal(jax.random.PRNGKey(2), shape)
    cond = jax.random.normal(jax.random.PRNGKey(3), shape[:-1] + (4,))
    t = jnp.array([10, 700])
    want = jax.jit(lambda p: base.denoise(p, x, t, *base.null_text(p, 2)))(params)
    cond_denoise = jax.jit(lambda p, c: cond_model.denoise(p, x, t, *cond_model.null_text(p, 2), cond=c))
    got = cond_denoise(converted, cond)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the new channels are live parameters: once they are non-zero, the conditioning matters
    live = perturbed(converted, 4)
    a, b = cond_denoise(live, cond), cond_denoise(live, -cond)
    assert float(jnp.abs(a - b).mean()) > 1e-3
    # only the first convolution changed
    flat = lambda p: jax.tree_util.tree_leaves_with_path(p)
    changed = [
        jax.tree_util.keystr(k)
        for (k, a), (_, b) in zip(flat(params), flat(converted))
        if a.shape != b.shape or not np.array_equal(a, b)
    ]
    assert len(changed) == 1 and "conv_in" in changed[0] and "kernel" in changed[0]


def test_expand_input_channels_rejects_shrinking():
    m = validation.validate(load_config("tiny", "video", ""))
    params = jax.eval_shape(DiffusionModel(m).init, jax.random.PRNGKey(0))
    params = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), params)
    with pytest.raises(ValueError, match="from 3 to 2 channels"):
        expand_input_channels(params, 2)


def test_abstract_params_are_init_s_shapes_traced_once_per_config():
    import flax.linen as nn

    from lumiere_jax.models import diffusion_model

    config = load_config("tiny", "video", "/nonexistent")
    config.model.unet.base_channels = 16  # a config no other test traced
    model = DiffusionModel(validation.validate(config))
    shapes = lambda tree: jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), tree)  # noqa: E731
    before = diffusion_model._abstract_init.cache_info()
    got = model.abstract_params()
    assert shapes(got) == shapes(jax.eval_shape(model.init, jax.random.PRNGKey(0)))
    boxed = model.abstract_params(boxed=True)
    assert shapes(nn.meta.unbox(boxed)) == shapes(got)
    assert nn.get_partition_spec(boxed)["denoiser"]["temporal"] != jax.tree_util.tree_map(lambda _: None, got)
    got["denoiser"] = None  # a copy: the next caller gets the whole tree
    again = DiffusionModel(validation.validate(config)).abstract_params()
    assert shapes(again["denoiser"]) == shapes(model.abstract_params()["denoiser"])
    after = diffusion_model._abstract_init.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 3)  # traced once per config
