"""T5 v1.1 encoder (the text encoder of Imagen and DeepFloyd IF) in Flax linen.

Mirrors transformers' `T5EncoderModel` so its checkpoints load unchanged
(`lumiere_jax.models.t5_checkpoint`):
  * token embedding (``shared``), no positional embedding;
  * per block: RMSNorm -> self-attention -> residual, RMSNorm -> feed-forward -> residual;
  * RMSNorm (``T5LayerNorm``): ``x * rsqrt(mean(x^2) + eps) * scale``, no mean subtraction, no bias,
    statistics in float32;
  * self-attention without biases and without the 1/sqrt(d) scaling (T5 folds it into the
    initialisation), plus a learned relative-position bias: bidirectional log buckets
    (``relative_attention_num_buckets``, ``relative_attention_max_distance``) owned by the first
    block and shared by all blocks; padded tokens are masked out as keys;
  * gated-GELU feed-forward (v1.1): ``wo(gelu_tanh(wi_0 x) * wi_1 x)``; T5 v1.0's ``relu`` too;
  * final RMSNorm. Dropout is not implemented (inference / frozen encoder).

Outputs at padded positions are what `T5EncoderModel` returns there (not zeroed): IF's U-Net sees
all 77 positions.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lumiere_jax import axes
from lumiere_jax.models import layers
from lumiere_jax.models.unet import to_dtype

# transformers' activation names -> ours ("gelu_new" is the tanh approximation).
ACTIVATIONS = {
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu": "gelu",
    "relu": "relu",
    "silu": "silu",
}


@dataclasses.dataclass(frozen=True)
class T5Config:
    """Architecture (transformers' `T5Config` names) plus how we run it. `max_length`: tokens per
    prompt (the tokenizer pads / truncates to it; IF uses 77)."""

    vocab_size: int = 32128
    d_model: int = 4096
    d_kv: int = 64
    d_ff: int = 10240
    num_layers: int = 24
    num_heads: int = 64
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    dense_act_fn: str = "gelu_new"
    feed_forward_proj: str = "gated-gelu"
    max_length: int = 77
    dtype: str = "float32"
    param_dtype: str = "float32"

    def __post_init__(self):
        act = self.feed_forward_proj.split("-")[-1]
        if self.feed_forward_proj not in (act, f"gated-{act}") or act not in ("gelu", "relu", "silu"):
            raise ValueError(
                f"feed_forward_proj must be 'relu', 'gelu', 'silu' or 'gated-<one of them>', "
                f"got {self.feed_forward_proj!r}"
            )
        if self.dense_act_fn not in ACTIVATIONS:
            raise ValueError(
                f"dense_act_fn {self.dense_act_fn!r} is not supported; choose one of {sorted(ACTIVATIONS)}"
            )
        if self.feed_forward_proj == "gated-gelu" and self.dense_act_fn != "gelu_new":
            raise ValueError("feed_forward_proj='gated-gelu' uses dense_act_fn='gelu_new' (as transformers sets it)")
        if self.relative_attention_num_buckets < 4 or self.relative_attention_num_buckets % 2:
            raise ValueError(
                f"relative_attention_num_buckets must be even and >= 4, got {self.relative_attention_num_buckets}"
            )
        for name in ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"T5Config.{name} must be positive, got {getattr(self, name)}")

    @property
    def width(self) -> int:
        """Embedding width (the U-Net's text_dim)."""
        return self.d_model

    @property
    def is_gated(self) -> bool:
        return self.feed_forward_proj.startswith("gated-")

    def replace(self, **kw) -> "T5Config":
        return dataclasses.replace(self, **kw)

    # Fields that are transformers' T5Config keys (the rest are ours).
    HF_KEYS = (
        "vocab_size",
        "d_model",
        "d_kv",
        "d_ff",
        "num_layers",
        "num_heads",
        "relative_attention_num_buckets",
        "relative_attention_max_distance",
        "layer_norm_epsilon",
        "dense_act_fn",
        "feed_forward_proj",
    )

    @classmethod
    def from_hf(cls, hf: Mapping[str, Any], **ours) -> "T5Config":
        """From a transformers config.json dict (keys it lacks keep our defaults); `ours`:
        max_length / dtype / param_dtype."""
        kw = {k: hf[k] for k in cls.HF_KEYS if k in hf}
        if kw.get("feed_forward_proj") == "gated-gelu":
            kw["dense_act_fn"] = "gelu_new"
        elif "feed_forward_proj" in kw and "dense_act_fn" not in hf:
            kw["dense_act_fn"] = kw["feed_forward_proj"].split("-")[-1]
        return cls(**kw, **ours)

    def to_hf(self) -> dict[str, Any]:
        """transformers `T5Config` keys of an encoder with this architecture."""
        out = {k: getattr(self, k) for k in self.HF_KEYS}
        out.update(
            architectures=["T5EncoderModel"],
            model_type="t5",
            is_gated_act=self.is_gated,
            pad_token_id=0,
            eos_token_id=1,
            tie_word_embeddings=False,
        )
        return out


# T5 v1.1 XXL, the text encoder of DeepFloyd IF (google/t5-v1_1-xxl; IF's text_encoder/config.json).
T5_V1_1_XXL = T5Config()
PRESETS = {"t5_v1_1_xxl": T5_V1_1_XXL}


def relative_position_bucket(
    relative_position: np.ndarray | jax.Array, num_buckets: int, max_distance: int
) -> jax.Array:
    """Bidirectional T5 bucket of (key - query) positions: half the buckets for keys after the
    query; in each half, exact buckets for distances < num_buckets / 4, then log-spaced up to
    max_distance (further distances share the last bucket)."""
    rel = jnp.asarray(relative_position, jnp.int32)
    half = num_buckets // 2
    bucket = jnp.where(rel > 0, half, 0)
    dist = jnp.abs(rel)
    max_exact = half // 2
    safe = jnp.maximum(dist, 1).astype(jnp.float32)
    large = max_exact + (jnp.log(safe / max_exact) / math.log(max_distance / max_exact) * (half - max_exact)).astype(
        jnp.int32
    )
    large = jnp.minimum(large, half - 1)
    return bucket + jnp.where(dist < max_exact, dist, large)


class RMSNorm(nn.Module):
    """T5LayerNorm: scale * x / rms(x), rms in float32, no mean subtraction, no bias."""

    epsilon: float = 1e-6
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param(
            "scale",
            nn.with_logical_partitioning(nn.initializers.ones_init(), (axes.NORM,)),
            (x.shape[-1],),
            self.param_dtype,
        )
        x32 = x.astype(jnp.float32)
        y = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.epsilon)
        return (scale.astype(jnp.float32) * y).astype(self.dtype)


def _dense(features: int, name: str, std: float, axis_names, kw) -> nn.Dense:
    # T5's own initialisation (normal, std folded with the attention scale); no biases.
    return layers.dense(
        features, name=name, use_bias=False, kernel_init=nn.initializers.normal(std), axis_names=axis_names, **kw
    )


class T5Block(nn.Module):
    config: T5Config

    @nn.compact
    def __call__(self, x: jax.Array, bias: jax.Array, key_mask: jax.Array) -> jax.Array:
        cfg = self.config
        kw = dict(dtype=to_dtype(cfg.dtype), param_dtype=to_dtype(cfg.param_dtype))
        b, length, d = x.shape
        inner = cfg.num_heads * cfg.d_kv
        h = RMSNorm(cfg.layer_norm_epsilon, name="attention_norm", **kw)(x)
        q, k, v = (
            _dense(inner, n, std, (axes.IN, axes.OUT), kw)(h).reshape(b, length, cfg.num_heads, cfg.d_kv)
            for n, std in (("q", (d * cfg.d_kv) ** -0.5), ("k", d**-0.5), ("v", d**-0.5))
        )
        logits = jnp.einsum("bqnd,bknd->bnqk", q, k, preferred_element_type=jnp.float32) + bias
        logits = jnp.where(key_mask[:, None, None, :], logits, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
        o = jnp.einsum("bnqk,bknd->bqnd", probs, v).reshape(b, length, inner)
        # Row-parallel output projection: its input (heads x d_kv) is sharded like q/k/v's output.
        x = x + _dense(d, "o", inner**-0.5, (axes.OUT, axes.IN), kw)(o)
        x = nn.with_logical_constraint(x, axes.TOKENS)
        h = RMSNorm(cfg.layer_norm_epsilon, name="mlp_norm", **kw)(x)
        act = layers.activation(ACTIVATIONS[cfg.dense_act_fn])
        if cfg.is_gated:
            h = act(_dense(cfg.d_ff, "wi_0", d**-0.5, (axes.IN, axes.MLP), kw)(h)) * _dense(
                cfg.d_ff, "wi_1", d**-0.5, (axes.IN, axes.MLP), kw
            )(h)
        else:
            h = act(_dense(cfg.d_ff, "wi", d**-0.5, (axes.IN, axes.MLP), kw)(h))
        x = x + _dense(d, "wo", cfg.d_ff**-0.5, (axes.MLP, axes.OUT), kw)(h)
        return nn.with_logical_constraint(x, axes.TOKENS)


class T5Encoder(nn.Module):
    """(token_ids int [B, L], mask [B, L], True = token) -> last hidden state float32 [B, L, d_model]."""

    config: T5Config = T5_V1_1_XXL

    @nn.compact
    def __call__(self, token_ids: jax.Array, mask: jax.Array) -> jax.Array:
        cfg = self.config
        kw = dict(dtype=to_dtype(cfg.dtype), param_dtype=to_dtype(cfg.param_dtype))
        if token_ids.ndim != 2 or mask.shape != token_ids.shape:
            raise ValueError(f"token_ids and mask must both be [B, L], got {token_ids.shape} and {mask.shape}")
        length = token_ids.shape[1]
        embed = nn.Embed(
            cfg.vocab_size,
            cfg.d_model,
            name="shared",
            param_dtype=kw["param_dtype"],
            embedding_init=nn.with_logical_partitioning(nn.initializers.normal(1.0), (axes.VOCAB, axes.EMBED)),
        )
        x = embed(token_ids).astype(kw["dtype"])
        x = nn.with_logical_constraint(x, axes.TOKENS)
        table = self.param(
            "relative_attention_bias",
            nn.with_logical_partitioning(nn.initializers.normal(cfg.d_model**-0.5), (axes.POS, axes.HEADS)),
            (cfg.relative_attention_num_buckets, cfg.num_heads),
            kw["param_dtype"],
        )
        pos = np.arange(length)
        buckets = relative_position_bucket(
            pos[None, :] - pos[:, None], cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance
        )
        bias = jnp.transpose(table.astype(jnp.float32)[buckets], (2, 0, 1))[None]  # [1, N, Lq, Lk]
        key_mask = mask.astype(bool)
        for i in range(cfg.num_layers):
            x = T5Block(cfg, name=f"block_{i}")(x, bias, key_mask)
        return RMSNorm(cfg.layer_norm_epsilon, name="final_norm", **kw)(x).astype(jnp.float32)


def num_params(config: T5Config) -> int:
    """Parameter count of the encoder, from its abstract initialisation."""
    ids = jax.ShapeDtypeStruct((1, 8), jnp.int32)
    shapes = jax.eval_shape(lambda k, i: T5Encoder(config).init(k, i, i > 0), jax.random.PRNGKey(0), ids)
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(nn.meta.unbox(shapes))))
