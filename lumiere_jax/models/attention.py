"""Attention: the kernel registry, spatial (self + text) attention, attention pooling.

`attention_impl` (config.model.unet.attention_impl) selects the kernel:
  * ``"xla"``        -- `jax.nn.dot_product_attention(implementation="xla")`, everywhere; logits and
                        softmax in float32 whatever the input dtype.
  * ``"cudnn"``      -- the cuDNN fused (flash) kernel: GPU, bf16/fp16, head dim a multiple of 8.
  * ``"pallas_tpu"`` -- the Pallas TPU flash-attention kernel (jax.experimental.pallas.ops.tpu), TPU only;
                        sequences padded to its 128-blocks, padding and key masks as segment ids.
  * ``"auto"``       -- cudnn on GPU, pallas_tpu on TPU, xla elsewhere.
  * ``"reference"``  -- explicit einsum with a float32 softmax (the parity baseline).

A fused kernel falls back to xla, logged once per reason, where it cannot run or does not pay:
another platform, the TPU kernel not importable, an unsupported dtype / head dim / mask layout,
or a sequence shorter than `attention_min_length` (temporal attention over a few frames).
"""

from __future__ import annotations

import logging
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lumiere_jax import axes
from lumiere_jax.models import layers

Dtype = Any
ATTENTION_IMPLS = ("auto", "xla", "cudnn", "pallas_tpu", "reference")
FUSED = {"gpu": "cudnn", "tpu": "pallas_tpu"}  # what "auto" picks per platform
PALLAS_BLOCK = 128  # the TPU kernel's default block sizes

log = logging.getLogger(__name__)
_logged: set[tuple[str, str]] = set()


def _log_once(requested: str, reason: str) -> None:
    if (requested, reason) not in _logged:
        _logged.add((requested, reason))
        log.info("attention_impl=%r: using xla (%s)", requested, reason)


def _pallas_flash():
    """The Pallas TPU flash-attention module, or None where it cannot be imported."""
    try:
        from jax.experimental.pallas.ops.tpu import flash_attention
    except Exception:  # noqa: BLE001 -- any import failure means "not available here"
        return None
    return flash_attention


def _fallback_reason(
    kernel: str, q: jax.Array, k: jax.Array, key_mask: jax.Array | None, min_length: int, platform: str
) -> str | None:
    lq, lk, head_dim = q.shape[1], k.shape[1], q.shape[-1]
    if kernel == "cudnn":
        if platform != "gpu":
            return f"cudnn needs a GPU, running on {platform}"
        if q.dtype not in (jnp.bfloat16, jnp.float16):
            return f"cudnn needs bfloat16/float16 inputs, got {q.dtype}"
        if head_dim % 8 or head_dim > 128:
            return f"cudnn needs a head dim that is a multiple of 8 and <= 128, got {head_dim}"
        if key_mask is not None and lq % 2:
            return f"cudnn with a key mask needs an even query length, got {lq}"
    elif kernel == "pallas_tpu":
        if platform != "tpu":
            return f"the Pallas TPU kernel needs a TPU, running on {platform}"
        if _pallas_flash() is None:
            return "jax.experimental.pallas.ops.tpu.flash_attention cannot be imported"
        if q.dtype not in (jnp.bfloat16, jnp.float32):
            return f"the Pallas TPU kernel needs bfloat16/float32 inputs, got {q.dtype}"
    if max(lq, lk) < min_length:
        return f"sequence length {max(lq, lk)} < attention_min_length={min_length}"
    return None


def resolve_impl(
    impl: str,
    q: jax.Array,
    k: jax.Array,
    key_mask: jax.Array | None = None,
    *,
    min_length: int = 0,
    platform: str | None = None,
) -> str:
    """The kernel `dot_product_attention` runs for these inputs: "xla", "reference", "cudnn" or
    "pallas_tpu". `platform` defaults to JAX's default backend ("cpu", "gpu", "tpu")."""
    if impl not in ATTENTION_IMPLS:
        raise ValueError(f"unknown attention_impl {impl!r}; choose one of {ATTENTION_IMPLS}")
    if impl in ("xla", "reference"):
        return impl
    platform = platform or jax.default_backend()
    kernel = FUSED.get(platform, "xla") if impl == "auto" else impl
    if kernel == "xla":
        return kernel
    reason = _fallback_reason(kernel, q, k, key_mask, min_length, platform)
    if reason is not None:
        _log_once(impl, reason)
        return "xla"
    return kernel


def _reference(q, k, v, key_mask):
    scale = q.shape[-1] ** -0.5
    logits = jnp.einsum("bqnd,bknd->bnqk", q, k, preferred_element_type=jnp.float32) * scale
    if key_mask is not None:
        logits = jnp.where(key_mask[:, None, None, :], logits, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    return jnp.einsum("bnqk,bknd->bqnd", probs, v)


def _cudnn(q, k, v, key_mask):
    mask = None
    if key_mask is not None:
        if k.shape[1] % 2:  # cuDNN's masked (bias) training kernels need even lengths: one masked key more
            pad = ((0, 0), (0, 1), (0, 0), (0, 0))
            k, v, key_mask = jnp.pad(k, pad), jnp.pad(v, pad), jnp.pad(key_mask, ((0, 0), (0, 1)))
        mask = key_mask[:, None, None, :]
    return jax.nn.dot_product_attention(q, k, v, mask=mask, implementation="cudnn")


def _pallas_tpu(q, k, v, key_mask):
    fa = _pallas_flash()
    b, lq, _, d = q.shape
    lk = k.shape[1]
    pq, pk = -lq % PALLAS_BLOCK, -lk % PALLAS_BLOCK
    to_bnld = lambda x, p: jnp.pad(x, ((0, 0), (0, p), (0, 0), (0, 0))).transpose(0, 2, 1, 3)
    segment_ids = None
    if key_mask is not None or pk:
        # Segment ids: queries 1; keys 1 where attended, 0 for masked and padded keys.
        valid = jnp.ones((b, lk), bool) if key_mask is None else key_mask
        segment_ids = fa.SegmentIds(
            q=jnp.ones((b, lq + pq), jnp.int32), kv=jnp.pad(valid, ((0, 0), (0, pk))).astype(jnp.int32)
        )
    o = fa.flash_attention(to_bnld(q, pq), to_bnld(k, pk), to_bnld(v, pk), segment_ids=segment_ids, sm_scale=d**-0.5)
    return o.transpose(0, 2, 1, 3)[:, :lq]


def dot_product_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    key_mask: jax.Array | None = None,
    *,
    impl: str = "xla",
    min_length: int = 0,
) -> jax.Array:
    """Multi-head attention. q [B, Lq, N, D], k/v [B, Lk, N, D], key_mask [B, Lk] (True = attend).
    `impl` and `min_length` as in the module docstring."""
    key_mask = None if key_mask is None else key_mask.astype(bool)
    kernel = resolve_impl(impl, q, k, key_mask, min_length=min_length)
    if kernel == "reference":
        return _reference(q, k, v, key_mask)
    if kernel == "cudnn":
        return _cudnn(q, k, v, key_mask)
    if kernel == "pallas_tpu":
        return _pallas_tpu(q, k, v, key_mask)
    mask = None if key_mask is None else key_mask[:, None, None, :]
    return jax.nn.dot_product_attention(q, k, v, mask=mask, implementation="xla")


class SpatialAttention(nn.Module):
    """Per-frame self-attention with the text tokens' keys/values prepended (joint
    self + cross attention), as Imagen / DeepFloyd IF ("SimpleCrossAttn", diffusers'
    `AttnAddedKVProcessor`).

    h: [B, T, H, W, C]; text: [B, L, Dt] or None; text_mask: [B, L] or None.
    Residual; `only_cross_attention` drops the image keys/values.
    """

    head_dim: int = 64
    norm_groups: int = 32
    text_norm: str | None = "group_norm"  # "group_norm" | "layer_norm" | None
    only_cross_attention: bool = False
    rescale_output_factor: float = 1.0
    text_norm_groups: int | None = None  # None: norm_groups
    attention_impl: str = "xla"
    attention_min_length: int = 0
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, h: jax.Array, text: jax.Array | None = None, text_mask: jax.Array | None = None) -> jax.Array:
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
        o = dot_product_attention(q, k, v, key_mask, impl=self.attention_impl, min_length=self.attention_min_length)
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
        pos = self.param(
            "positional_embedding",
            nn.with_logical_partitioning(nn.initializers.normal(d**-0.5), (axes.POS, axes.EMBED)),
            (1, d),
            self.param_dtype,
        )
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
