"""Temporal modules that inflate a T2I U-Net into a STUNet (Lumiere Fig. 4, App. B).

All take and return [B, T, H, W, C]:
  * `ConvInflationBlock` (Fig. 4b): factorized space-time convolution (2-D spatial
    conv, then 1-D temporal conv, each after norm + nonlinearity) and a zero-initialised
    linear projection, added residually: the identity at initialisation. With `text_film`
    the prompt (pooled) scales and shifts the features its temporal conv reads (`TextFiLM`,
    zero-initialised), so it can choose which spatial patterns are carried forward or
    backward in time, at every level.
  * `TemporalAttentionBlock` (Fig. 4c): self-attention along time at each spatial
    position, then an MLP; both end in zero-initialised projections (identity at init).
    With `text_cross_attention`, a cross-attention to the prompt's tokens sits between them
    (zero-initialised output too): the temporal layers read the text directly, so motion
    words reach them even when the frozen spatial layers carry no motion information.
    With `text_query_positions` the cross-attention's queries also carry the frame's
    position ("frame") and the pixel's ("space_time"), so frames and places can read the prompt
    differently: what a direction word says is where the object is in which frame.
  * `TemporalDownsample` / `TemporalUpsample` (App. B): a 1-D temporal conv initialised
    to the identity followed by stride 2; frame duplication followed by an
    identity-initialised 1-D temporal conv. At init they are nearest-neighbour
    temporal resizing.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lumiere_jax import axes
from lumiere_jax.models import layers
from lumiere_jax.models import remat as remat_lib
from lumiere_jax.models.attention import dot_product_attention

Dtype = Any
POSITION_ENCODINGS = ("sinusoidal", "rope", "learned", "none")
TEMPORAL_TEXT = ("none", "cross_attention")  # how the temporal attention blocks see the prompt
# What the temporal text cross-attention's queries know besides their token's content: nothing, the
# frame index, or the frame index and the pixel's (row, column) at that level (sinusoidal, no parameters).
TEXT_QUERY_POSITIONS = ("none", "frame", "space_time")


def identity_temporal_init(key, shape, dtype=jnp.float32):
    """Kernel (K, 1, 1, C, C) that copies the centre frame: a 1-D temporal identity."""
    del key
    k, _, _, cin, cout = shape
    if cin != cout:
        raise ValueError(f"identity init needs in == out channels, got {cin} -> {cout}")
    return jnp.zeros(shape, dtype).at[k // 2, 0, 0].set(jnp.eye(cin, dtype=dtype))


class TemporalConv(nn.Module):
    """1-D convolution along time of [B, T, H, W, C] (zero padding of kernel_size // 2 frames on each
    side, then `stride`), with `nn.Conv`'s parameters: kernel (K, 1, 1, in, out), bias (out,).

    Computed as one channel matmul per time offset, summed, not as a 3-D convolution: XLA:CPU runs
    3-D convolutions on a slow generic path (forward + backward of a 3 x 1 x 1 convolution of 32
    channels on 16 frames of 32 x 32: 17.1 ms against 9.7 ms, docs/performance.md), and a matmul is
    what every backend tiles best. The input is constrained to the activation layout first, as
    `layers.Conv` does (its docstring: SPMD gradients on data x fsdp x tensor meshes)."""

    features: int
    kernel_size: int
    stride: int = 1
    kernel_init: Any = layers.torch_default_init
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, s = self.kernel_size, self.stride
        kernel = self.param(
            "kernel",
            nn.with_logical_partitioning(self.kernel_init, (axes.CONV_T, axes.CONV_H, axes.CONV_W, axes.IN, axes.OUT)),
            (k, 1, 1, x.shape[-1], self.features),
            self.param_dtype,
        )
        bias = self.param(
            "bias", nn.with_logical_partitioning(layers.zeros, (axes.OUT,)), (self.features,), self.param_dtype
        )
        x = nn.with_logical_constraint(x, layers.activation_axes(x.ndim))
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        t_out = (x.shape[1] + 2 * (k // 2) - k) // s + 1
        if t_out < 1:
            raise ValueError(f"temporal conv of kernel {k}, stride {s}: {x.shape[1]} frames are too few")
        x = jnp.pad(x, ((0, 0), (k // 2, k // 2)) + ((0, 0),) * (x.ndim - 2))
        y = sum(
            jnp.einsum("bt...c,cd->bt...d", x[:, i : i + (t_out - 1) * s + 1 : s], kernel[i, 0, 0]) for i in range(k)
        )
        return y + bias


def _temporal_conv(
    features: int, kernel: int, *, stride: int = 1, identity: bool = False, name: str, dtype: Dtype, param_dtype: Dtype
) -> TemporalConv:
    return TemporalConv(
        features,
        kernel,
        stride,
        kernel_init=identity_temporal_init if identity else layers.torch_default_init,
        name=name,
        dtype=dtype,
        param_dtype=param_dtype,
    )


class TextFiLM(nn.Module):
    """Per-channel scale and shift from the pooled prompt (and, given `time`, the timestep's sinusoidal
    embedding [B, D]) for y: (gamma, beta), each [B, 1, ..., 1, C], applied as y * (1 + gamma) + beta
    (by the GroupNorm before it, `scale_shift`); gamma = beta = 0 at init (zero-initialised output),
    so the block it sits in keeps App. B's identity."""

    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(
        self, y: jax.Array, text: jax.Array, text_mask: jax.Array | None, time: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        c = y.shape[-1]
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        p = layers.LayerNorm(name="norm", **kw)(layers.masked_mean(text.astype(y.dtype), text_mask))
        if time is not None:
            p = jnp.concatenate([p, time.astype(p.dtype)], axis=-1)
        p = layers.activation("silu")(layers.dense(c, name="hidden", **kw)(p))
        gamma, beta = jnp.split(layers.dense(2 * c, name="out", kernel_init=layers.zeros, **kw)(p), 2, axis=-1)
        expand = (slice(None),) + (None,) * (y.ndim - 2) + (slice(None),)
        return gamma[expand], beta[expand]


class ConvInflationBlock(nn.Module):
    norm_groups: int = 32
    kernel_size: int = 3
    act: str = "silu"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    text_film: bool = False  # the prompt scales and shifts the features the temporal conv reads

    @nn.compact
    def __call__(
        self,
        h: jax.Array,
        text: jax.Array | None = None,
        text_mask: jax.Array | None = None,
        time: jax.Array | None = None,
    ) -> jax.Array:
        c = h.shape[-1]
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        y = layers.GroupNorm(self.norm_groups, name="norm_spatial", act=self.act, **kw)(h)
        y = layers.conv(c, (3, 3), name="conv_spatial", **kw)(y)
        film = None
        if self.text_film:
            if text is None:
                raise ValueError("temporal text FiLM needs the text embeddings (text=None given)")
            film = TextFiLM(name="text_film", **kw)(y, text, text_mask, time)
        # norm, FiLM and activation in one op (layers.group_norm's backward)
        y = layers.GroupNorm(self.norm_groups, name="norm_temporal", act=self.act, **kw)(y, scale_shift=film)
        y = _temporal_conv(c, self.kernel_size, name="conv_temporal", **kw)(y)
        y = layers.dense(c, name="proj_out", kernel_init=layers.zeros, **kw)(y)
        return nn.with_logical_constraint(h + y, axes.VIDEO)


def rope(x: jax.Array, positions: jax.Array, max_period: float = 10000.0) -> jax.Array:
    """Rotary position embedding over the sequence axis of x [N, T, heads, D]."""
    d = x.shape[-1]
    freqs = jnp.exp(-jnp.log(max_period) * jnp.arange(0, d // 2, dtype=jnp.float32) / (d // 2))
    ang = positions.astype(jnp.float32)[:, None] * freqs  # [T, D/2]
    cos, sin = jnp.cos(ang)[None, :, None, :], jnp.sin(ang)[None, :, None, :]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1).astype(x.dtype)


class TemporalAttentionBlock(nn.Module):
    head_dim: int = 32
    position_encoding: str = "sinusoidal"
    max_frames: int = 128
    mlp_ratio: int = 4
    attention_impl: str = "xla"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    attention_min_length: int = 0
    text_cross_attention: bool = False
    text_query_positions: str = "none"  # TEXT_QUERY_POSITIONS

    @nn.compact
    def __call__(self, h: jax.Array, text: jax.Array | None = None, text_mask: jax.Array | None = None) -> jax.Array:
        b, t, hh, ww, c = h.shape
        if self.position_encoding not in POSITION_ENCODINGS:
            raise ValueError(
                f"unknown temporal position_encoding {self.position_encoding!r}; choose one of {POSITION_ENCODINGS}"
            )
        if c % self.head_dim:
            raise ValueError(f"temporal attention: {c} channels not divisible by head_dim={self.head_dim}")
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        n = c // self.head_dim
        x = h.transpose(0, 2, 3, 1, 4).reshape(b * hh * ww, t, c)  # one sequence per pixel
        x = nn.with_logical_constraint(x, (axes.BATCH, axes.FRAMES, axes.EMBED))
        y = layers.LayerNorm(name="norm", **kw)(x)
        pos = jnp.arange(t)
        if self.position_encoding == "sinusoidal":
            y = y + layers.sinusoidal_embedding(pos, c).astype(y.dtype)
        elif self.position_encoding == "learned":
            if t > self.max_frames:
                raise ValueError(f"learned temporal positions cover {self.max_frames} frames, got {t}")
            table = self.param(
                "pos_embedding",
                nn.with_logical_partitioning(nn.initializers.normal(0.02), (axes.POS, axes.EMBED)),
                (self.max_frames, c),
                self.param_dtype,
            )
            y = y + table[:t].astype(y.dtype)
        split = lambda z: z.reshape(z.shape[:-1] + (n, self.head_dim))
        q, k, v = (split(layers.dense(c, name=nm, **kw)(y)) for nm in ("to_q", "to_k", "to_v"))
        if self.position_encoding == "rope":
            q, k = rope(q, pos), rope(k, pos)
        o = dot_product_attention(q, k, v, impl=self.attention_impl, min_length=self.attention_min_length)
        o = o.reshape(x.shape)
        x = x + layers.dense(c, name="proj_out", kernel_init=layers.zeros, **kw)(o)
        if self.text_cross_attention:
            x = self._cross_attend(x, text, text_mask, (b, hh, ww, t, c), n, kw)
        y = layers.LayerNorm(name="norm_mlp", **kw)(x)
        y = layers.dense(self.mlp_ratio * c, name="mlp_in", axis_names=(axes.IN, axes.MLP), **kw)(y)
        y = layers.dense(c, name="mlp_out", kernel_init=layers.zeros, axis_names=(axes.MLP, axes.OUT), **kw)(
            layers.activation("gelu_tanh")(y)
        )
        x = x + y
        out = x.reshape(b, hh, ww, t, c).transpose(0, 3, 1, 2, 4)
        return nn.with_logical_constraint(out, axes.VIDEO)

    def _cross_attend(self, x, text, text_mask, shape, n, kw):
        """x [B*H*W, T, C] += attention of every (pixel, frame) token to the text tokens [B, L, D]."""
        if text is None:
            raise ValueError("temporal text cross-attention needs the text embeddings (text=None given)")
        b, hh, ww, t, c = shape
        split = lambda z: z.reshape(z.shape[:-1] + (n, self.head_dim))
        y = layers.LayerNorm(name="norm_text_query", **kw)(x).reshape(b, hh, ww, t, c)
        if self.text_query_positions not in TEXT_QUERY_POSITIONS:
            raise ValueError(
                f"text_query_positions must be one of {TEXT_QUERY_POSITIONS}, got {self.text_query_positions!r}"
            )
        if self.text_query_positions != "none":  # each frame (and pixel) may read the prompt differently
            y = y + layers.sinusoidal_embedding(jnp.arange(t), c).astype(y.dtype)
        if self.text_query_positions == "space_time":
            half = c // 2
            rows = layers.sinusoidal_embedding(jnp.arange(hh), half)[:, None, None, :]
            cols = layers.sinusoidal_embedding(jnp.arange(ww), c - half)[None, :, None, :]
            y = y + jnp.concatenate(
                [jnp.broadcast_to(rows, (hh, ww, 1, half)), jnp.broadcast_to(cols, (hh, ww, 1, c - half))], -1
            ).astype(y.dtype)
        y = y.reshape(b, hh * ww * t, c)
        ctx = layers.LayerNorm(name="norm_text", **kw)(text.astype(y.dtype))
        q = split(layers.dense(c, name="text_q", **kw)(y))
        k = split(layers.dense(c, name="text_k", **kw)(ctx))
        v = split(layers.dense(c, name="text_v", **kw)(ctx))
        o = dot_product_attention(q, k, v, text_mask, impl=self.attention_impl).reshape(b, hh * ww * t, c)
        o = layers.dense(c, name="text_proj_out", kernel_init=layers.zeros, **kw)(o)
        return x + o.reshape(x.shape)


class TemporalAttentionStack(nn.Module):
    """`depth` temporal attention blocks in a row (Fig. 4c: stacked at the coarsest level)."""

    depth: int = 1
    head_dim: int = 32
    position_encoding: str = "sinusoidal"
    max_frames: int = 128
    mlp_ratio: int = 4
    attention_impl: str = "xla"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    attention_min_length: int = 0
    remat: str = "none"  # policy of models/remat.py, applied per block
    text_cross_attention: bool = False
    text_query_positions: str = "none"

    @nn.compact
    def __call__(self, h: jax.Array, text: jax.Array | None = None, text_mask: jax.Array | None = None) -> jax.Array:
        block = remat_lib.wrap(TemporalAttentionBlock, self.remat)
        for i in range(self.depth):
            layer = block(
                self.head_dim,
                self.position_encoding,
                self.max_frames,
                self.mlp_ratio,
                self.attention_impl,
                self.dtype,
                self.param_dtype,
                self.attention_min_length,
                self.text_cross_attention,
                self.text_query_positions,
                name=f"layer_{i}",
            )
            h = layer(h, text, text_mask) if self.text_cross_attention else layer(h)
        return h


class TemporalDownsample(nn.Module):
    kernel_size: int = 3
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        if h.shape[1] % 2:
            raise ValueError(f"temporal down-sampling needs an even number of frames, got {h.shape[1]}")
        return _temporal_conv(
            h.shape[-1],
            self.kernel_size,
            stride=2,
            identity=True,
            name="conv",
            dtype=self.dtype,
            param_dtype=self.param_dtype,
        )(h)


class TemporalUpsample(nn.Module):
    kernel_size: int = 3
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        h = jnp.repeat(h, 2, axis=1)
        return _temporal_conv(
            h.shape[-1], self.kernel_size, identity=True, name="conv", dtype=self.dtype, param_dtype=self.param_dtype
        )(h)
