"""ResNet block and spatial resamplers of the T2I U-Net, on video-shaped tensors.

All modules take [B, T, H, W, C] and treat every frame independently (T may be 1
for images), so the same parameters serve the T2I model and the spatial layers of
an inflated STUNet.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lumiere_jax import axes
from lumiere_jax.models import layers

Dtype = Any


def avg_pool_2x(x: jax.Array) -> jax.Array:
    """2x2 average pooling over (H, W) of [..., H, W, C]."""
    *lead, h, w, c = x.shape
    return x.reshape(*lead, h // 2, 2, w // 2, 2, c).mean(axis=(-4, -2)).astype(x.dtype)


def nearest_up_2x(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x up-sampling over (H, W) of [..., H, W, C]."""
    return jnp.repeat(jnp.repeat(x, 2, axis=-3), 2, axis=-2)


class ResnetBlock(nn.Module):
    """GroupNorm -> act -> conv -> (+time: scale-shift or add) -> GroupNorm -> act ->
    dropout -> conv, plus a (1x1-projected) shortcut; optional 2x down/up-sampling
    inside the block (diffusers' ResnetBlock2D with down=/up=, used by IF).
    """

    out_channels: int
    norm_groups: int = 32
    norm_eps: float = 1e-5
    act: str = "silu"
    time_scale_shift: bool = True
    skip_time_act: bool = False
    output_scale_factor: float = 1.0
    dropout: float = 0.0
    resample: str | None = None  # None | "down" | "up"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, emb: jax.Array, deterministic: bool = True) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        act = layers.activation(self.act)
        # GroupNorm -> activation in one op (its backward recomputes what the activation needs)
        norm = lambda name: layers.GroupNorm(self.norm_groups, self.norm_eps, name=name, act=self.act, **kw)
        h = norm("norm1")(x)
        if self.resample == "down":
            x, h = avg_pool_2x(x), avg_pool_2x(h)
        elif self.resample == "up":
            x, h = nearest_up_2x(x), nearest_up_2x(h)
        elif self.resample is not None:
            raise ValueError(f"unknown resample {self.resample!r}")
        h = layers.conv(self.out_channels, (3, 3), name="conv1", **kw)(h)
        e = emb if self.skip_time_act else act(emb)
        mult = 2 if self.time_scale_shift else 1
        e = layers.dense(self.out_channels * mult, name="time_emb_proj", **kw)(e)
        e = e[:, None, None, None, :].astype(self.dtype)  # broadcast over T, H, W
        if self.time_scale_shift:
            h = norm("norm2")(h, scale_shift=tuple(jnp.split(e, 2, axis=-1)))
        else:
            h = norm("norm2")(h + e)
        h = nn.Dropout(self.dropout)(h, deterministic=deterministic)
        h = layers.conv(self.out_channels, (3, 3), name="conv2", **kw)(h)
        if x.shape[-1] != self.out_channels:
            x = layers.conv(self.out_channels, (1, 1), name="conv_shortcut", **kw)(x)
        out = (x + h) / self.output_scale_factor
        return nn.with_logical_constraint(out.astype(self.dtype), axes.VIDEO)


class ConvDownsample(nn.Module):
    """Strided 3x3 convolution (torch padding=1) halving H and W."""

    out_channels: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return layers.conv(
            self.out_channels,
            (3, 3),
            strides=(2, 2),
            padding=((1, 1), (1, 1)),
            name="conv",
            dtype=self.dtype,
            param_dtype=self.param_dtype,
        )(x)


class ConvUpsample(nn.Module):
    """Nearest 2x up-sampling followed by a 3x3 convolution."""

    out_channels: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return layers.conv(self.out_channels, (3, 3), name="conv", dtype=self.dtype, param_dtype=self.param_dtype)(
            nearest_up_2x(x)
        )
