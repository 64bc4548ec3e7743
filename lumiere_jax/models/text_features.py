"""Fixed byte n-gram text features: a text representation that keeps every word distinct.

The small text encoder is trained with the T2I model on single frames, where motion words carry no
signal, and maps them to almost the same vectors (relative L2 0.04 between "... moving left" and
"... moving down", against 0.96 between two colours). A frozen pretrained T5 keeps such words
apart; these features are our analogue for the byte tokenizer: at every position i, the sum of
fixed random vectors of the n bytes around it (one table per offset), so different n-grams get
nearly orthogonal features, with no parameters to train or forget. STUNet's temporal layers read
them (`STUNetConfig.temporal_text_features`) next to the encoder's output; the frozen spatial layers
never see them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NGRAM = 3
SEED = 0


def byte_ngram_features(
    ids: jax.Array, mask: jax.Array, dim: int, vocab_size: int, *, ngram: int = NGRAM, seed: int = SEED
) -> jax.Array:
    """ids, mask [B, L] -> float32 [B, L, dim], zero at padded positions; deterministic (a fixed table
    drawn from `seed`). Offsets outside the text contribute nothing."""
    if dim <= 0:
        raise ValueError(f"byte n-gram features need dim > 0, got {dim}")
    table = jax.random.normal(jax.random.PRNGKey(seed), (ngram, vocab_size, dim), jnp.float32)
    table = table / jnp.sqrt(float(ngram))
    mask = mask.astype(bool)
    ids = jnp.where(mask, ids, 0)
    out = jnp.zeros(ids.shape + (dim,), jnp.float32)
    half = ngram // 2
    for k in range(ngram):
        shift = k - half
        shifted = jnp.roll(ids, -shift, axis=1)
        valid = jnp.roll(mask, -shift, axis=1)
        pos = jnp.arange(ids.shape[1]) + shift
        valid = valid & (pos >= 0)[None] & (pos < ids.shape[1])[None]
        out = out + jnp.where(valid[..., None], table[k][shifted], 0.0)
    return out * mask[..., None]
