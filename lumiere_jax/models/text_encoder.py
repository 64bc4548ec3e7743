"""A small trainable transformer text encoder: (token_ids, mask) -> [B, L, D].

Good enough for the project's synthetic captions; every diffusion model takes
embeddings, so this encoder, precomputed embeddings or (later) T5 are
interchangeable behind the same interface.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from lumiere_jax import axes
from lumiere_jax.models import layers
from lumiere_jax.models.attention import dot_product_attention
from lumiere_jax.models.tokenizer import VOCAB_SIZE
from lumiere_jax.models.unet import to_dtype


@dataclasses.dataclass(frozen=True)
class TextEncoderConfig:
    vocab_size: int = VOCAB_SIZE
    max_length: int = 32
    width: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: int = 4
    dtype: str = "float32"
    param_dtype: str = "float32"


class TextEncoder(nn.Module):
    """Pre-LN transformer over token ids with a padding mask; padded positions are
    excluded as keys, and their outputs zeroed."""

    config: TextEncoderConfig = TextEncoderConfig()

    @nn.compact
    def __call__(self, token_ids: jax.Array, mask: jax.Array) -> jax.Array:
        cfg = self.config
        b, length = token_ids.shape
        if length > cfg.max_length:
            raise ValueError(f"{length} tokens exceed the text encoder's max_length={cfg.max_length}")
        if cfg.width % cfg.num_heads:
            raise ValueError(f"width={cfg.width} not divisible by num_heads={cfg.num_heads}")
        kw = dict(dtype=to_dtype(cfg.dtype), param_dtype=to_dtype(cfg.param_dtype))
        emb = nn.Embed(
            cfg.vocab_size,
            cfg.width,
            name="token_embed",
            param_dtype=kw["param_dtype"],
            embedding_init=nn.with_logical_partitioning(nn.initializers.normal(0.02), (axes.VOCAB, axes.EMBED)),
        )
        pos = self.param(
            "pos_embed",
            nn.with_logical_partitioning(nn.initializers.normal(0.02), (axes.POS, axes.EMBED)),
            (cfg.max_length, cfg.width),
            kw["param_dtype"],
        )
        x = (emb(token_ids) + pos[:length]).astype(kw["dtype"])
        x = nn.with_logical_constraint(x, axes.TOKENS)
        mask = mask.astype(bool)
        hd = cfg.width // cfg.num_heads
        split = lambda y: y.reshape(b, length, cfg.num_heads, hd)
        for i in range(cfg.depth):
            y = layers.LayerNorm(name=f"layer_{i}_norm1", **kw)(x)
            q, k, v = (split(layers.dense(cfg.width, name=f"layer_{i}_{n}", **kw)(y)) for n in ("q", "k", "v"))
            o = dot_product_attention(q, k, v, mask, impl="reference").reshape(b, length, cfg.width)
            x = x + layers.dense(cfg.width, name=f"layer_{i}_out", **kw)(o)
            y = layers.LayerNorm(name=f"layer_{i}_norm2", **kw)(x)
            y = layers.dense(cfg.mlp_ratio * cfg.width, name=f"layer_{i}_mlp_in", axis_names=(axes.IN, axes.MLP), **kw)(
                y
            )
            x = x + layers.dense(cfg.width, name=f"layer_{i}_mlp_out", axis_names=(axes.MLP, axes.OUT), **kw)(
                layers.activation("gelu_tanh")(y)
            )
        x = layers.LayerNorm(name="final_norm", **kw)(x)
        return (x * mask[..., None]).astype(jnp.float32)
