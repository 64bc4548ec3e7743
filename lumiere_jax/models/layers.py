"""Small shared layers: annotated Dense/Conv factories, fp32 GroupNorm, activations,
sinusoidal embeddings.

Every parameter created here carries logical axis names (`lumiere_jax.axes`), so
a mesh + rules shard it without touching model code.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from lumiere_jax import axes

Dtype = Any

# PyTorch's default init for Linear/Conv (kaiming_uniform with a=sqrt(5)), which is
# what the T2I checkpoints we import were trained from.
torch_default_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
zeros = nn.initializers.zeros_init()

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "silu": nn.silu,
    "swish": nn.silu,
    "gelu": lambda x: nn.gelu(x, approximate=False),  # exact (erf) GELU, as torch's default
    "gelu_tanh": lambda x: nn.gelu(x, approximate=True),
    "relu": nn.relu,
    "mish": lambda x: x * jnp.tanh(nn.softplus(x)),
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def dense(
    features: int,
    *,
    name: str | None = None,
    dtype: Dtype = jnp.float32,
    param_dtype: Dtype = jnp.float32,
    use_bias: bool = True,
    kernel_init=torch_default_init,
    axis_names: tuple[str, str] = (axes.IN, axes.OUT),
) -> nn.Dense:
    """`nn.Dense` whose kernel/bias carry logical axis names."""
    return nn.Dense(
        features,
        use_bias=use_bias,
        dtype=dtype,
        param_dtype=param_dtype,
        name=name,
        kernel_init=nn.with_logical_partitioning(kernel_init, axis_names),
        bias_init=nn.with_logical_partitioning(zeros, (axis_names[-1],)),
    )


def activation_axes(ndim: int) -> tuple[str | None, ...]:
    """Logical names of a channels-last activation of rank `ndim`: video [B, T, H, W, C], image
    [B, H, W, C], otherwise [B, ..., C] with the middle axes unsplit."""
    if ndim == 5:
        return axes.VIDEO
    if ndim == 4:
        return axes.IMAGE
    return (axes.BATCH,) + (None,) * (ndim - 2) + (axes.EMBED,)


class Conv(nn.Conv):
    """`nn.Conv` whose input is constrained to the activation layout (batch over the batch mesh
    axes, channels per the `activation_embed` rule: unsplit by default) before the convolution.

    Why: with the input's channels left to sharding propagation, a kernel split over (fsdp: in,
    tensor: out) and the batch over (data, fsdp) on a mesh where data, fsdp and tensor are all > 1,
    XLA's SPMD partitioner (Shardy and GSPMD, jax 0.10.2) computes the input gradient on a
    permuted batch shard and never permutes it back: the loss is right and the gradients are
    wrong (`tools/repro_spmd_conv_grad.py` shows it on 8 CPU devices). With the input constrained
    the partitioner all-gathers the channels (as it did anyway for the forward convolution) and
    the gradients match the single-device step; `tests/parallel` checks that on a 2 x 2 x 2 mesh.
    Without a mesh in context the constraint is a no-op. Same parameters and names as `nn.Conv`.
    """

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        inputs = nn.with_logical_constraint(inputs, activation_axes(inputs.ndim))
        return super().__call__(inputs)


def conv(
    features: int,
    kernel_size: Sequence[int],
    *,
    name: str | None = None,
    strides: Sequence[int] | int = 1,
    padding: Any = "SAME",
    dtype: Dtype = jnp.float32,
    param_dtype: Dtype = jnp.float32,
    kernel_init=torch_default_init,
    use_bias: bool = True,
) -> nn.Conv:
    """`Conv` (any number of batch dims) whose kernel/bias carry logical axis names.

    A 2-D kernel is (H, W, in, out); a 3-D kernel (T, H, W, in, out).
    """
    kernel_size = tuple(kernel_size)
    spatial_names = {1: (axes.CONV_T,), 2: (axes.CONV_H, axes.CONV_W), 3: (axes.CONV_T, axes.CONV_H, axes.CONV_W)}[
        len(kernel_size)
    ]
    return Conv(
        features,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        dtype=dtype,
        param_dtype=param_dtype,
        name=name,
        kernel_init=nn.with_logical_partitioning(kernel_init, spatial_names + (axes.IN, axes.OUT)),
        bias_init=nn.with_logical_partitioning(zeros, (axes.OUT,)),
    )


class GroupNorm(nn.Module):
    """GroupNorm computed in float32, statistics per example over `num_reduce_axes`
    trailing non-channel axes and the channels of each group.

    For a video [B, T, H, W, C] with ``num_reduce_axes=2`` the statistics are per
    frame (over H, W), so frames never mix: an image model applied to a video's
    frames behaves exactly as on the images. Tokens [B, L, C] use ``num_reduce_axes=1``.
    """

    num_groups: int = 32
    epsilon: float = 1e-5
    num_reduce_axes: int = 2
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    act: str | None = None  # an activation applied to the output, in float32, inside the norm's backward

    @nn.compact
    def __call__(
        self, x: jax.Array, mask: jax.Array | None = None, scale_shift: tuple[jax.Array, jax.Array] | None = None
    ) -> jax.Array:
        """`mask` (shape x.shape[:-1], True = valid) excludes positions (e.g. padding
        tokens) from the statistics. `scale_shift` (s, b), each broadcastable to x with the channels
        last (e.g. a time embedding's [B, 1, 1, 1, C]): the output is norm(x) * (1 + s) + b, then
        `act`."""
        c = x.shape[-1]
        if c % self.num_groups:
            raise ValueError(f"GroupNorm: {c} channels not divisible by num_groups={self.num_groups}")
        scale = self.param(
            "scale", nn.with_logical_partitioning(nn.initializers.ones_init(), (axes.NORM,)), (c,), self.param_dtype
        )
        bias = self.param("bias", nn.with_logical_partitioning(zeros, (axes.NORM,)), (c,), self.param_dtype)
        if self.act is not None:
            activation(self.act)  # an unknown name fails here, before tracing further
        scale, bias = scale.astype(jnp.float32), bias.astype(jnp.float32)
        if scale_shift is not None:  # folded into the affine: (xhat * scale + bias) * (1 + s) + b
            mult = 1.0 + scale_shift[0].astype(jnp.float32)
            scale, bias = scale * mult, bias * mult + scale_shift[1].astype(jnp.float32)
        if mask is None:
            y = group_norm(x, scale, bias, self.num_groups, self.num_reduce_axes, self.epsilon, self.act)
            return y.astype(self.dtype)
        g, red = _grouped(x, self.num_groups, self.num_reduce_axes)
        w = jnp.broadcast_to(mask.astype(jnp.float32)[..., None, None], g.shape)
        count = jnp.maximum(jnp.sum(w, axis=red, keepdims=True), 1.0)
        mean = jnp.sum(g * w, axis=red, keepdims=True) / count
        var = jnp.sum(jnp.square(g - mean) * w, axis=red, keepdims=True) / count
        g = (g - mean) * jax.lax.rsqrt(var + self.epsilon)
        y = g.reshape(x.shape) * scale + bias
        return (activation(self.act)(y) if self.act else y).astype(self.dtype)


def _grouped(x: jax.Array, num_groups: int, num_reduce_axes: int) -> tuple[jax.Array, tuple[int, ...]]:
    """x as float32 [..., groups, channels per group] and the axes its statistics reduce."""
    c = x.shape[-1]
    g = x.astype(jnp.float32).reshape(x.shape[:-1] + (num_groups, c // num_groups))
    return g, tuple(range(g.ndim - 2 - num_reduce_axes, g.ndim - 2)) + (g.ndim - 1,)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6))
def group_norm(
    x: jax.Array,
    scale: jax.Array,
    bias: jax.Array,
    num_groups: int,
    num_reduce_axes: int,
    epsilon: float,
    act: str | None = None,
) -> jax.Array:
    """act(GroupNorm(x) * scale + bias) in float32 (x any dtype; scale and bias float32, [C] or
    broadcastable to x with the channels last, e.g. [B, 1, 1, 1, C] for a per-example time
    modulation), with a hand-written backward pass: the normalised x and the activation's input are
    recomputed from x and the per-group statistics (the only residuals), and
    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = d(pre-scale output), the two means over
    each group's statistics axes. Autodiff of the same forward differentiates the mean and the
    variance as separate reductions and keeps the activation's input: more passes over the
    activation and one more activation-sized residual (docs/performance.md)."""
    return _group_norm_fwd(x, scale, bias, num_groups, num_reduce_axes, epsilon, act)[0]


def _normalised(x, mean, rstd, num_groups, num_reduce_axes):
    g, _ = _grouped(x, num_groups, num_reduce_axes)
    return ((g - mean) * rstd).reshape(x.shape)


def _group_norm_fwd(x, scale, bias, num_groups, num_reduce_axes, epsilon, act):
    g, red = _grouped(x, num_groups, num_reduce_axes)
    mean = jnp.mean(g, axis=red, keepdims=True)
    rstd = jax.lax.rsqrt(jnp.mean(jnp.square(g - mean), axis=red, keepdims=True) + epsilon)
    y = ((g - mean) * rstd).reshape(x.shape) * scale + bias
    return (activation(act)(y) if act else y), (x, mean, rstd, scale, bias)


def _sum_to(a: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """`a` summed over the axes that broadcasting `shape` to a.shape expanded."""
    lead = a.ndim - len(shape)
    axes_ = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and a.shape[i + lead] != 1)
    return jnp.sum(a, axis=axes_).reshape(shape)


def _group_norm_bwd(num_groups, num_reduce_axes, epsilon, act, res, dout):
    del epsilon
    x, mean, rstd, scale, bias = res
    xhat = _normalised(x, mean, rstd, num_groups, num_reduce_axes)
    dy = dout.astype(jnp.float32)
    if act:
        _, act_vjp = jax.vjp(activation(act), xhat * scale + bias)
        (dy,) = act_vjp(dy)
    dscale, dbias = _sum_to(dy * xhat, scale.shape), _sum_to(dy, bias.shape)
    g, red = _grouped(dy * scale, num_groups, num_reduce_axes)
    xg = xhat.reshape(g.shape)
    dx = rstd * (g - jnp.mean(g, axis=red, keepdims=True) - xg * jnp.mean(g * xg, axis=red, keepdims=True))
    return dx.reshape(x.shape).astype(x.dtype), dscale, dbias


group_norm.defvjp(_group_norm_fwd, _group_norm_bwd)


class LayerNorm(nn.Module):
    """LayerNorm over the last axis, computed in float32, annotated params."""

    epsilon: float = 1e-5
    use_bias: bool = True
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.LayerNorm(
            epsilon=self.epsilon,
            use_bias=self.use_bias,
            dtype=jnp.float32,
            param_dtype=self.param_dtype,
            scale_init=nn.with_logical_partitioning(nn.initializers.ones_init(), (axes.NORM,)),
            bias_init=nn.with_logical_partitioning(zeros, (axes.NORM,)),
            name="ln",
        )(x.astype(jnp.float32)).astype(self.dtype)


def masked_mean(x: jax.Array, mask: jax.Array | None) -> jax.Array:
    """[B, L, D] -> [B, D]: the mean over the positions where `mask` [B, L] is True (all without a
    mask; zeros for a row with none)."""
    if mask is None:
        return jnp.mean(x, axis=1)
    m = mask.astype(x.dtype)[..., None]
    return jnp.sum(x * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1.0)


def sinusoidal_embedding(
    positions: jax.Array,
    dim: int,
    *,
    flip_sin_to_cos: bool = True,
    freq_shift: float = 0.0,
    max_period: float = 10000.0,
) -> jax.Array:
    """Sinusoidal embedding of (possibly fractional) positions, [..., dim], float32.

    Same convention as diffusers' `get_timestep_embedding`: frequencies
    exp(-log(max_period) * i / (half - freq_shift)), [sin, cos] halves, swapped to
    [cos, sin] when `flip_sin_to_cos`.
    """
    half = dim // 2
    exponent = -math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / (half - freq_shift)
    args = positions.astype(jnp.float32)[..., None] * jnp.exp(exponent)
    emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)
    if flip_sin_to_cos:
        emb = jnp.concatenate([emb[..., half:], emb[..., :half]], axis=-1)
    if dim % 2:
        emb = jnp.pad(emb, [(0, 0)] * (emb.ndim - 1) + [(0, 1)])
    return emb
