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
    "shape,groups,num_reduce_axes,act,per_example",
    [
        ((2, 3, 4, 5, 8), 4, 2, None, False),
        ((2, 3, 4, 5, 8), 4, 2, "silu", True),
        ((2, 6, 12), 3, 1, "gelu", False),
        ((3, 4, 4, 6), 6, 2, "silu", False),
        ((2, 3, 4, 5, 8), 1, 3, "mish", True),
    ],
    ids=["video-per-frame", "video-silu-time-modulated", "tokens-gelu", "image-one-channel-per-group", "whole-clip"],
)
def test_group_norm_gradients_match_autodiff_of_the_formula(shape, groups, num_reduce_axes, act, per_example):
    x, scale, bias, w = inputs(shape)
    if per_example:  # a [B, 1, ..., 1, C] affine, as a time embedding's scale-shift gives
        mod = (shape[0],) + (1,) * (len(shape) - 2) + shape[-1:]
        scale = scale * jnp.asarray(np.random.default_rng(2).normal(1.0, 0.3, size=mod), jnp.float32)
        bias = bias + jnp.asarray(np.random.default_rng(3).normal(size=mod), jnp.float32)
    f = layers.activation(act) if act else (lambda y: y)

    def loss(fn):
        return jax.jit(jax.grad(lambda *a: jnp.sum(jnp.square(fn(*a)) * w), (0, 1, 2)))

    ours_fn = lambda x, s, b: layers.group_norm(x, s, b, groups, num_reduce_axes, 1e-5, act)
    ref_fn = lambda x, s, b: f(plain_group_norm(x, s, b, groups, num_reduce_axes))
    np.testing.assert_allclose(ours_fn(x, scale, bias), ref_fn(x, scale, bias), rtol=1e-5, atol=1e-5)
    ours, ref = loss(ours_fn)(x, scale, bias), loss(ref_fn)(x, scale, bias)
    for name, a, b in zip(("dx", "dscale", "dbias"), ours, ref):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5 * float(jnp.max(jnp.abs(b))), err_msg=name)


def test_group_norm_gradients_match_finite_differences():
    x, scale, bias, w = inputs((1, 2, 3, 3, 4), seed=1)  # float32: eps and tolerances are set for it
    check_grads(
        lambda x, s, b: jnp.sum(layers.group_norm(x, s, b, 2, 2, 1e-5, "silu") * w),
        (x, scale, bias),
        order=1,
        modes=("rev",),
        eps=1e-2,
        atol=5e-2,
        rtol=5e-2,
    )


def test_group_norm_module_fuses_the_time_modulation_and_the_activation():
    x, _, _, _ = inputs((2, 3, 4, 4, 8), seed=4)
    s, b = (jnp.asarray(np.random.default_rng(k).normal(size=(2, 1, 1, 1, 8)), jnp.float32) for k in (5, 6))
    plain = layers.GroupNorm(num_groups=4)
    fused = layers.GroupNorm(num_groups=4, act="silu")
    params = plain.init(jax.random.PRNGKey(0), x)
    params = jax.tree.map(lambda p: p + 0.1 * jnp.arange(p.size, dtype=p.dtype).reshape(p.shape), params)
    want = jax.nn.silu(plain.apply(params, x) * (1 + s) + b)
    np.testing.assert_allclose(fused.apply(params, x, scale_shift=(s, b)), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        layers.GroupNorm(num_groups=4, act="swishy").init(jax.random.PRNGKey(0), x)


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
