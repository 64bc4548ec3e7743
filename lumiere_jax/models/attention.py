"""Attention: the kernel dispatch, spatial (self + text) attention, attention pooling.

`attention_impl` selects the kernel:
  * ``"xla"``       -- `jax.nn.dot_product_attention(implementation="xla")`, everywhere.
  * ``"cudnn"``     -- the cuDNN fused kernel (GPU, bf16/fp16).
  * ``"reference"`` -- explicit einsum with a float32 softmax (the parity baseline).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lumiere_jax import axes
from lumiere_jax.models import layers

Dtype = Any
ATTENTION_IMPLS = ("xla", "cudnn", "reference")


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, key_mask: jax.Array | None = None,
                          *, impl: str = "xla") -> jax.Array:
    """Multi-head attention. q [B, Lq, N, D], k/v [B, Lk, N, D], key_mask [B, Lk] (True = attend)."""
    if impl not in ATTENTION_IMPLS:
        raise ValueError(f"unknown attention_impl {impl!r}; choose one of {ATTENTION_IMPLS}")
    mask = None if key_mask is None else key_mask[:, None, None, :].astype(bool)
    if impl == "reference":
        scale = q.shape[-1] ** -0.5
        logits = jnp.einsum("bqnd,bknd->bnqk", q, k, preferred_element_type=jnp.float32) * scale
        if mask is not None:
            logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
        return jnp.einsum("bnqk,bknd->bqnd", probs, v)
    return jax.nn.dot_product_attention(q, k, v, mask=mask, implementation=impl)


class SpatialAttention(nn.Module):
    """Per-frame self-attention with the text tokens' keys/values prepended (joint
    self + cross attention), as Imagen / DeepFloyd IF ("SimpleCrossAttn", diffusers'
    `AttnAddedKVProcessor`).

    h: [B, T, H, W, C]; text: [B, L, Dt] or None; text_mask: [B, L] or None.
    Residual; `only_cross_attention` drops the image keys/values.
    """
    head_dim: int = 64
    norm_groups: int = 32
    text_norm: str | None = "group_norm"       # "group_norm" | "layer_norm" | None
    only_cross_attention: bool = False
    rescale_output_factor: float = 1.0
    text_norm_groups: int | None = None        # None: norm_groups
    attention_impl: str = "xla"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, h: jax.Array, text: jax.Array | None = None,
                 text_mask: jax.Array | None = None) -> jax.Array:
        b, t, hh, ww, c = h.shape
        if c % self.head_dim:
            raise ValueError(f"attention: {c} channels not divisible by head_dim={self.head_dim}")
        n = c // self.head_dim
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = layers.GroupNorm(self.norm_groups, name="norm", **kw)(h)
        x = x.reshape(b * t, hh * ww, c)
        x = nn.with_logical_constraint(x, (axes.BATCH, axes.LENGTH, axes.EMBED))
        split = lambda y: y.reshape(y.shape[:-1] + (n, self.head_dim))
        q = split(layers.dense(c, name="to_q", **kw)(x))
        ks, vs, masks = [], [], []
        if text is not None:
            if self.text_norm == "group_norm":
                groups = self.text_norm_groups or self.norm_groups
                text = layers.GroupNorm(groups, num_reduce_axes=1, name="norm_text", **kw)(text, text_mask)
            elif self.text_norm == "layer_norm":
                text = layers.LayerNorm(name="norm_text", **kw)(text)
            elif self.text_norm is not None:
                raise ValueError(f"unknown text_norm {self.text_norm!r}")
            tk = split(layers.dense(c, name="add_k_proj", **kw)(text))
            tv = split(layers.dense(c, name="add_v_proj", **kw)(text))
            # Text K/V are shared by every frame of a video: repeat along the folded batch.
            ks.append(jnp.repeat(tk, t, axis=0))
            vs.append(jnp.repeat(tv, t, axis=0))
            tm = jnp.ones(text.shape[:2], bool) if text_mask is None else text_mask.astype(bool)
            masks.append(jnp.repeat(tm, t, axis=0))
        elif self.only_cross_attention:
            raise ValueError("only_cross_attention=True needs text embeddings")
        if not self.only_cross_attention:
            ks.append(split(layers.dense(c, name="to_k", **kw)(x)))
            vs.append(split(layers.dense(c, name="to_v", **kw)(x)))
            masks.append(jnp.ones((b * t, hh * ww), bool))
        k, v = jnp.concatenate(ks, axis=1), jnp.concatenate(vs, axis=1)
        key_mask = None if text_mask is None else jnp.concatenate(masks, axis=1)
        q = nn.with_logical_constraint(q, (axes.BATCH, axes.LENGTH, axes.HEADS, axes.KV))
        o = dot_product_attention(q, k, v, key_mask, impl=self.attention_impl)
        o = layers.dense(c, name="to_out", **kw)(o.reshape(b * t, hh * ww, c))
        o = o.reshape(b, t, hh, ww, c)
        return ((h + o) / self.rescale_output_factor).astype(self.dtype)


class AttentionPooling(nn.Module):
    """Pool tokens [B, L, D] -> [B, D] by attention from a class token (the mean of
    the tokens plus a learned positional embedding), as CLIP / DeepFloyd IF.

    With `use_mask`, padding tokens are excluded from the mean and the keys; IF does
    not mask (set False for parity with imported IF weights).
    """
    num_heads: int
    use_mask: bool = True
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        b, l, d = x.shape
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        pos = self.param("positional_embedding",
                         nn.with_logical_partitioning(nn.initializers.normal(d ** -0.5), (axes.POS, axes.EMBED)),
                         (1, d), self.param_dtype)
        if self.use_mask and mask is not None:
            m = mask.astype(x.dtype)[..., None]
            mean = jnp.sum(x * m, axis=1, keepdims=True) / jnp.maximum(jnp.sum(m, axis=1, keepdims=True), 1.0)
            key_mask = jnp.concatenate([jnp.ones((b, 1), bool), mask.astype(bool)], axis=1)
        else:
            mean, key_mask = jnp.mean(x, axis=1, keepdims=True), None
        cls = mean + pos.astype(x.dtype)
        seq = jnp.concatenate([cls, x], axis=1)
        split = lambda y: y.reshape(y.shape[:-1] + (self.num_heads, d // self.num_heads))
        q = split(layers.dense(d, name="q_proj", **kw)(cls))
        k = split(layers.dense(d, name="k_proj", **kw)(seq))
        v = split(layers.dense(d, name="v_proj", **kw)(seq))
        return dot_product_attention(q, k, v, key_mask, impl="reference").reshape(b, d)
