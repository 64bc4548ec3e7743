"""`temporal.TemporalConv` (lumiere_jax/models/temporal.py): the same parameters and outputs as the
3-D `nn.Conv` it replaces, for the kernels and strides the temporal layers use."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.models import temporal


@pytest.mark.parametrize("kernel,stride,frames", [(3, 1, 8), (3, 2, 8), (5, 1, 6), (3, 2, 2), (1, 1, 3)])
def test_temporal_conv_equals_the_3d_convolution(kernel, stride, frames):
    x = jnp.asarray(np.random.default_rng(kernel * 10 + stride).normal(size=(2, frames, 3, 5, 8)), jnp.float32)
    ours = temporal.TemporalConv(6, kernel, stride)
    params = ours.init(jax.random.PRNGKey(0), x)
    params = jax.tree.map(lambda a: a + 0.1, nn.meta.unbox(params))  # a nonzero bias too
    reference = nn.Conv(6, (kernel, 1, 1), strides=(stride, 1, 1), padding=((kernel // 2, kernel // 2), (0, 0), (0, 0)))
    want = jax.eval_shape(reference.init, jax.random.PRNGKey(0), x)
    assert jax.tree.map(lambda a: a.shape, params) == jax.tree.map(lambda a: a.shape, want)
    got, ref = jax.jit(ours.apply)(params, x), jax.jit(reference.apply)(params, x)
    assert got.shape == ref.shape == (2, (frames - 1) // stride + 1, 3, 5, 6)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_temporal_conv_initialises_as_nn_conv_and_its_identity_init_copies_the_input():
    x = jnp.ones((1, 4, 2, 2, 4))
    key = jax.random.PRNGKey(3)
    ours = nn.meta.unbox(temporal.TemporalConv(4, 3).init(key, x))
    ref = nn.Conv(4, (3, 1, 1), padding=((1, 1), (0, 0), (0, 0)), kernel_init=temporal.layers.torch_default_init).init(
        key, x
    )
    jax.tree.map(np.testing.assert_array_equal, ours, ref)
    h = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6, 3, 3, 4)), jnp.float32)
    ident = temporal.TemporalConv(4, 3, kernel_init=temporal.identity_temporal_init)
    np.testing.assert_array_equal(ident.apply(ident.init(key, h), h), h)  # exactly (App. B)
    with pytest.raises(ValueError, match="kernel 5, stride 1: 0 frames"):
        temporal.TemporalConv(4, 5).init(key, jnp.ones((1, 0, 2, 2, 4)))
