"""Stylized generation: blending a style T2I's U-Net into a video model's spatial layers."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax import config as config_lib
from lumiere_jax.models.diffusion_model import DiffusionModel, expand_input_channels
from lumiere_jax.models.style import interpolate_spatial
from lumiere_jax.sampling.generator import load_style
from lumiere_jax.train import checkpoint, validation
from tests.helpers import ROOT


def tiny_config(stage):
    return config_lib.load_config_file(os.path.join(ROOT, "configs", "tiny.py"), stage)


def random_params(stage, seed):
    """Parameters of the tiny `stage` model with random leaves (abstract init: nothing compiled;
    random rather than initial values, so norms/zero-init layers do not hide mistakes)."""
    abstract = jax.eval_shape(DiffusionModel(validation.validate(tiny_config(stage))).init, jax.random.PRNGKey(0))
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda a: jnp.asarray(rng.standard_normal(a.shape), a.dtype), abstract)


@pytest.fixture(scope="module")
def params():
    return {"video": random_params("video", 0), "style": random_params("t2i", 1)}


def leaves(tree):
    return jax.tree_util.tree_leaves(tree)


def assert_trees_equal(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(leaves(a), leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_alpha_endpoints_and_midpoint(params):
    video, style = params["video"], params["style"]
    out0 = interpolate_spatial(video, style, 0.0)
    assert_trees_equal(out0, video)
    out1 = interpolate_spatial(video, style, 1.0)
    assert_trees_equal(out1["denoiser"]["spatial"], style["denoiser"])
    # temporal layers, text encoder and null embedding are the video model's, untouched
    assert out1["denoiser"]["temporal"] is video["denoiser"]["temporal"]
    assert out1["text_encoder"] is video["text_encoder"] and out1["null_text"] is video["null_text"]
    half = interpolate_spatial(video, style["denoiser"], 0.5)  # a bare U-Net tree works too
    for h, v, s in zip(
        leaves(half["denoiser"]["spatial"]), leaves(video["denoiser"]["spatial"]), leaves(style["denoiser"])
    ):
        np.testing.assert_allclose(h, (np.asarray(v) + np.asarray(s)) / 2, rtol=1e-6, atol=1e-7)


def test_dtype_kept(params):
    video = jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16), params["video"])
    out = interpolate_spatial(video, params["style"], 0.7)
    assert {a.dtype for a in leaves(out)} == {jnp.dtype(jnp.bfloat16)}


def test_alpha_range(params):
    for alpha in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
            interpolate_spatial(params["video"], params["style"], alpha)


def test_shape_and_structure_mismatch(params):
    video, style = params["video"], params["style"]
    den = style["denoiser"]
    bad = {**style, "denoiser": {**den, "conv_out": {**den["conv_out"], "kernel": jnp.zeros((3, 3, 8, 6))}}}
    with pytest.raises(
        ValueError,
        match=r"denoiser/conv_out/kernel is \(3, 3, 8, 6\), the video model's "
        r"denoiser/spatial/conv_out/kernel is \(3, 3, 8, 3\)",
    ):
        interpolate_spatial(video, bad, 0.5)
    missing = {**style, "denoiser": {k: v for k, v in den.items() if k != "mid_attn"}}
    with pytest.raises(ValueError, match="denoiser/spatial/mid_attn/.* is missing from the style"):
        interpolate_spatial(video, missing, 0.5)
    with pytest.raises(ValueError, match="a video model's"):  # style given as a video model
        interpolate_spatial(video, video, 0.5)
    with pytest.raises(ValueError, match="video_params must be a video model"):
        interpolate_spatial(style, style, 0.5)
    # a style model with *more* input channels than the video model is an error
    wide = expand_input_channels(style, 7)
    with pytest.raises(ValueError, match=r"conv_in/kernel is \(3, 3, 7, 8\)"):
        interpolate_spatial(video, wide, 0.5)


def test_conditional_video_model_keeps_extra_input_channels(params):
    video = expand_input_channels(params["video"], 7)  # the 7-channel <J, C, M> conditional model
    kernel = video["denoiser"]["spatial"]["conv_in"]["kernel"]
    kernel = kernel.at[..., 3:, :].set(jax.random.normal(jax.random.PRNGKey(3), kernel[..., 3:, :].shape))
    video["denoiser"]["spatial"]["conv_in"]["kernel"] = kernel
    style_kernel = params["style"]["denoiser"]["conv_in"]["kernel"]
    out = interpolate_spatial(video, params["style"], 0.75)["denoiser"]["spatial"]["conv_in"]["kernel"]
    assert out.shape == (3, 3, 7, 8)
    np.testing.assert_array_equal(out[..., 3:, :], kernel[..., 3:, :])
    np.testing.assert_allclose(out[..., :3, :], 0.75 * style_kernel + 0.25 * kernel[..., :3, :], rtol=1e-6)


def test_load_style_from_checkpoint(tmp_path, params):
    video_cfg = tiny_config("video").to_dict()
    style_cfg = tiny_config("t2i").to_dict()
    path = str(tmp_path / "style")
    checkpoint.export(path, params["style"], style_cfg, "float32")
    out = load_style(params["video"], video_cfg, path, 1.0)
    assert_trees_equal(out["denoiser"]["spatial"], params["style"]["denoiser"])
    assert out["denoiser"]["temporal"] is params["video"]["denoiser"]["temporal"]

    # stored config checks: the stage, then the U-Net architecture (fields named)
    checkpoint.export(str(tmp_path / "video_ckpt"), params["style"], video_cfg, "float32")
    with pytest.raises(ValueError, match="is a 'video' stage; .* needs a 't2i' checkpoint"):
        load_style(params["video"], video_cfg, str(tmp_path / "video_ckpt"), 0.5)
    other = tiny_config("t2i")
    other.model.unet.base_channels, other.model.unet.num_res_blocks = 16, 2
    checkpoint.export(str(tmp_path / "other"), params["style"], other.to_dict(), "float32")
    with pytest.raises(
        ValueError,
        match=r"model.unet fields \{base_channels: style 16 vs video 8; "
        r"num_res_blocks: style 2 vs video 1\}",
    ):
        load_style(params["video"], video_cfg, str(tmp_path / "other"), 0.5)
    with pytest.raises(ValueError, match="alpha"):
        load_style(params["video"], video_cfg, path, 2.0)
