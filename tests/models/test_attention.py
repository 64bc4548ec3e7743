"""Attention kernel registry: parity of what runs on the CPU, kernel choice and fallbacks."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.models import UNetConfig
from lumiere_jax.models import attention as attn


def text_and_image_kv(seed, batch=2, lq=16, text_len=7, heads=2, head_dim=8, dtype=jnp.float32):
    """Queries of an image; keys/values = text tokens (padded: a valid prefix per example) followed by
    the image's own tokens, as `SpatialAttention` builds them."""
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    q = jax.random.normal(k[0], (batch, lq, heads, head_dim), dtype)
    kv = jax.random.normal(k[1], (2, batch, text_len + lq, heads, head_dim), dtype)
    lengths = jnp.array([2, text_len])[:batch]
    mask = jnp.concatenate([jnp.arange(text_len)[None] < lengths[:, None], jnp.ones((batch, lq), bool)], axis=1)
    return q, kv[0], kv[1], mask


def test_xla_matches_reference_with_text_padding_masks():
    q, k, v, mask = text_and_image_kv(0)
    run = jax.jit(attn.dot_product_attention, static_argnames=("impl", "min_length"))
    for key_mask in (mask, None):
        ref = run(q, k, v, key_mask, impl="reference")
        np.testing.assert_allclose(run(q, k, v, key_mask, impl="xla"), ref, rtol=1e-5, atol=1e-6)
    # Masked keys have no influence: changing them leaves the output unchanged.
    k2 = jnp.where(mask[:, :, None, None], k, 1e3)
    np.testing.assert_allclose(run(q, k2, v, mask, impl="xla"), run(q, k, v, mask, impl="xla"), atol=1e-6)
    # On the CPU "auto" and the fused kernels fall back to xla.
    for impl in ("auto", "cudnn", "pallas_tpu"):
        np.testing.assert_array_equal(run(q, k, v, mask, impl=impl), run(q, k, v, mask, impl="xla"))
    # bf16 inputs: close to the float32 reference (the softmax runs in float32).
    qb, kb, vb = (x.astype(jnp.bfloat16) for x in (q, k, v))
    out = run(qb, kb, vb, mask, impl="xla")
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(out.astype(jnp.float32), run(q, k, v, mask, impl="reference"), atol=0.05)


def test_pallas_tpu_kernel_matches_reference_in_interpret_mode():
    """The Pallas TPU flash kernel run by the Pallas interpreter on the CPU: our padding of both
    sequences to its 128-blocks and key masks as segment ids give the reference result."""
    pltpu = pytest.importorskip("jax.experimental.pallas.tpu")
    q, k, v, mask = text_and_image_kv(1, lq=64, text_len=13)  # 64 queries, 77 keys
    with pltpu.force_tpu_interpret_mode():
        out = attn._pallas_tpu(q, k, v, mask)
    np.testing.assert_allclose(out, attn.dot_product_attention(q, k, v, mask, impl="reference"), rtol=1e-5, atol=1e-5)


def test_kernel_choice_and_logged_fallbacks(caplog):
    q16, k16, _, mask = text_and_image_kv(2, lq=256, dtype=jnp.bfloat16)
    short = q16[:, :16]  # temporal attention: a few frames
    choose = lambda impl, q, k=None, m=None, **kw: attn.resolve_impl(impl, q, q if k is None else k, m, **kw)
    assert choose("auto", q16, k16, mask, platform="gpu", min_length=128) == "cudnn"
    assert choose("auto", q16, k16, mask, platform="tpu", min_length=128) == (
        "pallas_tpu" if attn._pallas_flash() is not None else "xla"
    )
    assert choose("auto", q16, k16, mask, platform="cpu") == "xla"
    assert choose("reference", q16, platform="gpu") == "reference"
    attn._logged.clear()
    with caplog.at_level(logging.INFO, logger=attn.__name__):
        assert choose("cudnn", short, platform="gpu", min_length=128) == "xla"  # too short
        assert choose("cudnn", short, platform="gpu", min_length=128) == "xla"
        assert choose("cudnn", q16.astype(jnp.float32), platform="gpu") == "xla"  # dtype
        assert choose("cudnn", q16[..., :4], platform="gpu") == "xla"  # head dim 4
        assert choose("cudnn", q16[:, :15], k16, mask, platform="gpu") == "xla"  # odd length + mask
        assert choose("cudnn", q16, platform="cpu") == "xla"  # platform
        assert choose("pallas_tpu", q16, platform="gpu") == "xla"
    reasons = [r.getMessage() for r in caplog.records]
    assert len(reasons) == 6, reasons  # the repeated fallback is logged once
    assert any("attention_min_length=128" in r for r in reasons)
    assert any("needs a GPU" in r for r in reasons) and any("needs a TPU" in r for r in reasons)
    with pytest.raises(ValueError, match="unknown attention_impl 'flash'"):
        choose("flash", q16)
    with pytest.raises(ValueError, match="attention_impl must be one of"):
        UNetConfig(attention_impl="flash")
