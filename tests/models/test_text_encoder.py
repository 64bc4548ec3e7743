"""Byte tokenizer and the small transformer text encoder."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.models.text_encoder import TextEncoder, TextEncoderConfig
from lumiere_jax.models.tokenizer import BOS, EOS, PAD, ByteTokenizer


def test_tokenizer_round_trip_and_truncation():
    tok = ByteTokenizer(max_length=16)
    ids, mask = tok(["a red square moving left", "héllo"])
    assert ids.shape == mask.shape == (2, 16) and ids.dtype == np.int32
    assert ids[0, 0] == BOS and ids[0, -1] == EOS and mask[0].all()  # truncated, eos kept
    assert tok.decode(ids[0]) == "a red square moving left"[:14]
    n = len("héllo".encode()) + 2
    assert tok.decode(ids[1]) == "héllo" and mask[1].sum() == n and (ids[1, n:] == PAD).all()
    with pytest.raises(ValueError):
        ByteTokenizer(max_length=2)


def test_text_encoder_shape_and_padding():
    cfg = TextEncoderConfig(max_length=16, width=32, depth=2, num_heads=4)
    tok = ByteTokenizer(cfg.max_length)
    ids, mask = tok(["a red square", "a blue circle moving up"])
    enc = TextEncoder(cfg)
    params = jax.jit(enc.init)(jax.random.PRNGKey(0), ids, mask)
    apply = jax.jit(enc.apply)
    out = np.asarray(apply(params, ids, mask))
    assert out.shape == (2, 16, 32)
    assert np.all(out[~mask] == 0) and np.all(np.abs(out[mask]).sum(-1) > 0)
    # Token ids under the padding mask do not leak into real positions.
    noisy = np.where(mask, ids, 77)
    np.testing.assert_allclose(np.asarray(apply(params, jnp.asarray(noisy), mask))[mask], out[mask], atol=1e-6)
    # Different captions give different embeddings.
    assert np.max(np.abs(out[0, 1:4] - out[1, 1:4])) > 1e-3
    with pytest.raises(ValueError, match="exceed the text encoder's max_length=16"):
        enc.apply(params, jnp.zeros((1, 20), jnp.int32), jnp.ones((1, 20), bool))
