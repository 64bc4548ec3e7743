"""models/layers.py: GroupNorm's hand-written backward pass against autodiff of the plain formula and
against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from lumiere_jax.models import layers


def plain_group_norm(x, scale, bias, groups, num_reduce_axes, eps=1e-5):
    """The textbook formula, differentiated by autodiff."""
    g = x.astype(jnp.float32).reshape(x.shape[:-1] + (groups, x.shape[-1] // groups))
    red = tuple(range(g.ndim - 2 - num_reduce_axes, g.ndim - 2)) + (g.ndim - 1,)
    mean = g.mean(red, keepdims=True)
    var = jnp.square(g - mean).mean(red, keepdims=True)
    return ((g - mean) / jnp.sqrt(var + eps)).reshape(x.shape) * scale + bias


def inputs(shape, dtype=jnp.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(1.5, 3.0, size=shape), dtype)
    scale = jnp.asarray(rng.normal(1.0, 0.5, size=shape[-1:]), jnp.float32)
    bias = jnp.asarray(rng.normal(0.0, 0.5, size=shape[-1:]), jnp.float32)
    weight = jnp.asarray(rng.normal(size=shape), jnp.float32)  # a loss that weighs every output differently
    return x, scale, bias, weight


@pytest.mark.parametrize(
    "shape,groups,num_reduce_axes",
    [((2, 3, 4, 5, 8), 4, 2), ((2, 6, 12), 3, 1), ((3, 4, 4, 6), 6, 2), ((2, 3, 4, 5, 8), 1, 3)],
    ids=["video-per-frame", "tokens", "image-one-channel-per-group", "whole-clip"],
)
def test_group_norm_gradients_match_autodiff_of_the_formula(shape, groups, num_reduce_axes):
    x, scale, bias, w = inputs(shape)

    def loss(fn):
        return jax.jit(jax.grad(lambda *a: jnp.sum(jax.nn.silu(fn(*a, groups, num_reduce_axes)) * w), (0, 1, 2)))

    np.testing.assert_allclose(
        layers.group_norm(x, scale, bias, groups, num_reduce_axes, 1e-5),
        plain_group_norm(x, scale, bias, groups, num_reduce_axes),
        rtol=1e-5,
        atol=1e-5,
    )
    ours = loss(lambda *a: layers.group_norm(*a, 1e-5))(x, scale, bias)
    ref = loss(plain_group_norm)(x, scale, bias)
    for name, a, b in zip(("dx", "dscale", "dbias"), ours, ref):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5 * float(jnp.max(jnp.abs(b))), err_msg=name)


def test_group_norm_gradients_match_finite_differences():
    x, scale, bias, w = inputs((1, 2, 3, 3, 4), seed=1)
    x, scale, bias = (a.astype(jnp.float64) for a in (x, scale, bias)) if jax.config.x64_enabled else (x, scale, bias)
    check_grads(
        lambda x, s, b: jnp.sum(layers.group_norm(x, s, b, 2, 2, 1e-5) * w),
        (x, scale, bias),
        order=1,
        modes=("rev",),
        eps=1e-2,
        atol=5e-2,
        rtol=5e-2,
    )


def test_group_norm_module_keeps_the_input_dtype_of_its_gradient_and_masks():
    x, _, _, w = inputs((2, 5, 8), dtype=jnp.bfloat16)
    mod = layers.GroupNorm(num_groups=4, num_reduce_axes=1, dtype=jnp.bfloat16)
    params = mod.init(jax.random.PRNGKey(0), x)
    dx = jax.grad(lambda x: jnp.sum(mod.apply(params, x).astype(jnp.float32) * w))(x)
    assert dx.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(dx.astype(jnp.float32))))
    # a mask keeps the masked positions out of the statistics (the masked path is autodiff's)
    mask = jnp.arange(5)[None, :] < jnp.array([[5], [3]])
    y = mod.apply(params, x.astype(jnp.float32), mask)
    y_short = mod.apply(params, x[1:, :3].astype(jnp.float32))
    np.testing.assert_allclose(np.float32(y[1, :3]), np.float32(y_short[0]), rtol=2e-2, atol=2e-2)
