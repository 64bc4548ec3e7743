"""Fixed byte n-gram text features (the temporal layers' word-distinct text) and how a video model
carries them next to the encoder's output."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.models.diffusion_model import DiffusionModel, DiffusionModelConfig
from lumiere_jax.models.stunet import STUNetConfig
from lumiere_jax.models.text_encoder import TextEncoderConfig
from lumiere_jax.models.text_features import byte_ngram_features
from lumiere_jax.models.tokenizer import VOCAB_SIZE, ByteTokenizer
from lumiere_jax.models.unet import UNetConfig
from tests.helpers import random_params

TOK = ByteTokenizer(32)


def _rel(a, b, m):
    return float(np.linalg.norm((a - b)[m]) / np.linalg.norm(a[m]))


def test_features_keep_direction_words_apart_and_ignore_padding():
    ids, mask = TOK(["a red square moving left", "a red square moving down", "a red square moving left"])
    f = np.asarray(byte_ngram_features(jnp.asarray(ids), jnp.asarray(mask), 64, VOCAB_SIZE))
    m = mask[0]
    np.testing.assert_array_equal(f[0], f[2])  # deterministic
    assert np.all(f[:, ~m] == 0)  # zero where padded
    last = slice(int(m.sum()) - 5, int(m.sum()))  # the direction word's positions
    diff = np.linalg.norm(f[0, last] - f[1, last]) / np.linalg.norm(f[0, last])
    assert diff > 1.0, diff  # nearly orthogonal n-grams
    np.testing.assert_array_equal(f[0, :10], f[1, :10])  # the shared prefix is shared
    with pytest.raises(ValueError, match="dim > 0"):
        byte_ngram_features(jnp.asarray(ids), jnp.asarray(mask), 0, VOCAB_SIZE)


def _model(features=16, kind="video"):
    unet = UNetConfig(
        base_channels=8,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_resolutions=(2,),
        head_dim=8,
        norm_groups=4,
        text_dim=8,
    )
    st = STUNetConfig(
        unet=unet,
        num_temporal_downsamples=1,
        temporal_head_dim=8,
        temporal_text="cross_attention",
        temporal_text_features=features,
    )
    return DiffusionModel(
        DiffusionModelConfig(
            kind=kind,
            stunet=st,
            num_frames=4,
            resolution=8,
            text_encoder=TextEncoderConfig(max_length=32, width=8, depth=1, num_heads=2),
        )
    )


def test_video_model_carries_the_features_to_the_temporal_layers_only():
    model = _model()
    # random parameters (numpy: no init compile, and every path open) but the temporal text
    # cross-attention's output projection zero, as `init` leaves it
    text_out = lambda p: "text_proj_out" in jax.tree_util.keystr(p)  # noqa: E731
    params = random_params(jax.eval_shape(model.init, jax.random.PRNGKey(0)), 0)
    params = jax.tree_util.tree_map_with_path(lambda p, a: jnp.zeros_like(a) if text_out(p) else a, params)
    assert params["null_text"].shape == (32, 8)  # the T2I's null, unchanged
    ids, mask = TOK(["a red square moving left", "a red square moving down"])
    emb = jax.jit(model.encode_text)(params, jnp.asarray(ids), jnp.asarray(mask))
    assert emb.shape == (2, 32, 8 + 16)
    null, null_mask = model.null_text(params, 2)
    assert null.shape == (2, 32, 24) and np.all(np.asarray(null[..., 8:]) == 0)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 8, 8, 3))
    t = jnp.array([5, 500])
    # With that projection zero the features change nothing (they reach nothing else)...
    denoise = jax.jit(model.denoise)  # one compile for every call below (eager ops compile per op)
    out = denoise(params, x, t, emb, jnp.asarray(mask))
    same = denoise(params, x, t, emb.at[..., 8:].set(0.0), jnp.asarray(mask))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(same))
    # ...once the temporal text cross-attention is trained, they matter.
    bumped = jax.tree_util.tree_map_with_path(lambda p, a: a + 0.1 if text_out(p) else a, params)
    diff = denoise(bumped, x, t, emb, jnp.asarray(mask)) - denoise(
        bumped, x, t, emb.at[..., 8:].set(0.0), jnp.asarray(mask)
    )
    assert float(jnp.abs(diff).max()) > 1e-4
    with pytest.raises(ValueError, match="text_dim \\+ temporal_text_features = 24"):
        denoise(params, x, t, emb[..., :8], jnp.asarray(mask))


def test_feature_config_validation():
    with pytest.raises(ValueError, match="needs temporal_text='cross_attention'"):
        STUNetConfig(unet=UNetConfig(text_dim=8), temporal_text_features=4)
    with pytest.raises(ValueError, match="image model"):
        _model(kind="image")
    cfg = _model().config
    with pytest.raises(ValueError, match="byte text encoder"):
        dataclasses.replace(cfg, text_encoder=None)
