"""T2I U-Net: shapes, text masking, logical-axis annotations, dtypes."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax import axes
from lumiere_jax.models import STUNet, UNet, UNetConfig
from lumiere_jax.models.layers import sinusoidal_embedding
from tests.models.conftest import FRAMES, SIZE, TEXT_DIM, TEXT_LEN, random_inputs


def test_output_shapes(models):
    x, t, text, mask = random_inputs(0, models.cfg)
    u = models.cfg.unet
    assert models.t2i_apply(models.t2i_params, x[:, 0], t, text, mask).shape == (2, SIZE, SIZE, u.out_channels)
    out = models.apply(models.params, x, t, text, mask)
    assert out.shape == (2, FRAMES, SIZE, SIZE, u.out_channels) and out.dtype == jnp.float32


def test_padded_text_tokens_are_ignored(imagen_models):
    """Masked-out token embeddings affect neither the pooled vector nor attention."""
    m = imagen_models
    x, t, text, _ = random_inputs(1, m.cfg)
    mask = jnp.array([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], bool)
    base = m.t2i_apply(m.t2i_params, x[:, 0], t, text, mask)
    garbage = jnp.where(mask[..., None], text, 100.0 * jax.random.normal(jax.random.PRNGKey(5), text.shape))
    np.testing.assert_allclose(m.t2i_apply(m.t2i_params, x[:, 0], t, garbage, mask), base, rtol=1e-5, atol=1e-5)
    changed = text.at[:, 0].add(1.0)
    assert np.max(np.abs(m.t2i_apply(m.t2i_params, x[:, 0], t, changed, mask) - base)) > 1e-3


def test_every_parameter_has_logical_axes(models):
    x, t, text, mask = random_inputs(0, models.cfg)
    boxed = jax.eval_shape(STUNet(models.cfg).init, jax.random.PRNGKey(0), x, t, text, mask)["params"]
    names = {v for k, v in vars(axes).items() if k.isupper() and isinstance(v, str)}
    leaves = jax.tree_util.tree_leaves_with_path(boxed, is_leaf=lambda a: isinstance(a, nn.Partitioned))
    assert leaves
    for path, leaf in leaves:
        assert isinstance(leaf, nn.Partitioned), f"{jax.tree_util.keystr(path)} has no logical axes"
        assert len(leaf.names) == leaf.value.ndim and set(leaf.names) <= names, jax.tree_util.keystr(path)


def test_bfloat16_compute_keeps_float32_params_and_output(imagen_models):
    cfg = imagen_models.cfg
    cfg = dataclasses.replace(cfg, unet=dataclasses.replace(cfg.unet, dtype="bfloat16"))
    x, t, text, mask = random_inputs(0, cfg)
    model = STUNet(cfg)
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x, t, text, mask)
    assert {a.dtype for a in jax.tree_util.tree_leaves(nn.meta.unbox(params))} == {jnp.dtype("float32")}
    out = jax.eval_shape(model.apply, params, x, t, text, mask)
    assert out.dtype == jnp.float32


def test_unconditional_model_and_text_validation():
    cfg = UNetConfig(
        base_channels=16,
        channel_mult=(1, 2),
        num_res_blocks=1,
        norm_groups=4,
        head_dim=8,
        text_dim=None,
        attention_resolutions=(2,),
    )
    x, t = jnp.zeros((1, SIZE, SIZE, 3)), jnp.zeros((1,), jnp.int32)
    params = jax.eval_shape(UNet(cfg).init, jax.random.PRNGKey(0), x, t)
    assert "text_pool_proj" not in params["params"]
    with pytest.raises(ValueError, match="text embeddings must be given iff"):
        jax.eval_shape(UNet(cfg).init, jax.random.PRNGKey(0), x, t, jnp.zeros((1, TEXT_LEN, TEXT_DIM)))
    with pytest.raises(ValueError, match="input has 4 channels, the model expects in_channels=3"):
        jax.eval_shape(UNet(cfg).init, jax.random.PRNGKey(0), jnp.zeros((1, SIZE, SIZE, 4)), t)


def test_config_validation():
    with pytest.raises(ValueError, match="not divisible by norm_groups"):
        UNetConfig(base_channels=20, norm_groups=32)
    with pytest.raises(ValueError, match="resample must be"):
        UNetConfig(resample="pixelshuffle")
    with pytest.raises(ValueError, match="unknown activation"):
        UNetConfig(act="tanhshrink")
    with pytest.raises(ValueError, match=r"layers_per_level=\(1, 2\) must name one count per level \(3 levels\)"):
        UNetConfig(layers_per_level=(1, 2))
    assert [UNetConfig(layers_per_level=(1, 2, 3)).res_blocks(lv) for lv in range(3)] == [1, 2, 3]


def test_sinusoidal_embedding_convention():
    """diffusers get_timestep_embedding: [sin, cos] halves, flipped to [cos, sin]."""
    t = jnp.array([0.0, 3.0])
    e = np.asarray(sinusoidal_embedding(t, 8, flip_sin_to_cos=True, freq_shift=1.0))
    freqs = np.exp(-np.log(10000.0) * np.arange(4) / 3.0)
    ref = np.concatenate([np.cos(3.0 * freqs), np.sin(3.0 * freqs)])
    np.testing.assert_allclose(e[1], ref, rtol=1e-6)
    np.testing.assert_allclose(e[0], [1, 1, 1, 1, 0, 0, 0, 0])
    e2 = np.asarray(sinusoidal_embedding(t, 8, flip_sin_to_cos=False))
    np.testing.assert_allclose(e2[1, :4], np.sin(3.0 * np.exp(-np.log(10000.0) * np.arange(4) / 4)), rtol=1e-6)
