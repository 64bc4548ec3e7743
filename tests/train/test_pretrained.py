"""DeepFloyd-IF starting points: a diffusers U-Net folder imported into a project export, inflated by
the IF presets (configs/if_stage1.py, if_stage2.py); App. B identity at init for the inflated IF model."""

import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.train import validation
from lumiere_jax.models import build
from lumiere_jax.models import STUNet, UNet
from lumiere_jax.models import convert_diffusers as cd
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.models.unet import UNetConfig
from lumiere_jax import presets
from lumiere_jax.train import checkpoint, pretrained
from tests.helpers import load_config

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"


def _video_config(preset, arg, unet, **model):
    c = load_config(preset, arg, "/nonexistent")
    pretrained.set_unet(c, dataclasses.replace(unet, dtype="float32", attention_impl="reference"))
    c.model.temporal.temporal_head_dim = 8
    for k, v in model.items():
        c.model[k] = v
    return c


def test_if_stage1_import_inflate_identity_at_init(tmp_path):
    pretrained.import_diffusers_unet(str(FIXTURES / "if_tiny"), str(tmp_path / "if1"), resolution=16)
    params, stored = checkpoint.load(str(tmp_path / "if1"))
    assert stored["stage"] == "t2i" and stored["diffusion"]["variance_type"] == "learned_range"
    assert (
        stored["sample"]["sampler"],
        stored["sample"]["dynamic_thresholding_ratio"],
        stored["sample"]["sample_max_value"],
    ) == ("ddpm", 0.95, 1.5)
    unet, imported = cd.load_unet(str(FIXTURES / "if_tiny"))
    jax.tree_util.tree_map(np.testing.assert_array_equal, params["denoiser"], imported)
    assert build.model_config(stored).stunet.unet == unet

    cfg = _video_config("if_stage1", "video", unet, num_frames=4, resolution=16)
    cfg.model.temporal.num_temporal_downsamples = 1
    model = DiffusionModel(validation.validate(cfg))
    video = model.inflate(params, jax.random.PRNGKey(0))
    jax.tree_util.tree_map(np.testing.assert_array_equal, video["denoiser"]["spatial"], imported)
    labels = model.trainable_labels(video, train_spatial=False)
    assert set(jax.tree_util.tree_leaves(labels["denoiser"]["spatial"])) == {"frozen"}
    assert set(jax.tree_util.tree_leaves(labels["denoiser"]["temporal"])) == {"train"}

    # App. B: frames 0, N, 2N of the inflated model equal the imported T2I model on those frames.
    u, st = model.config.stunet.unet, model.config.stunet
    k = jax.random.split(jax.random.PRNGKey(3), 2)
    x = jax.random.normal(k[0], (2, 4, 16, 16, 3))
    t = jnp.array([37, 901])
    text = jax.random.normal(k[1], (2, 7, u.text_dim))
    out = np.asarray(jax.jit(lambda p: STUNet(st).apply({"params": p}, x, t, text))(video["denoiser"]))
    t2i = jax.jit(lambda p, xf: UNet(u).apply({"params": p}, xf, t, text))
    n = st.temporal_factor
    assert n == 2
    for f in range(4):
        ref = np.asarray(t2i(imported, x[:, f]))
        err = np.max(np.abs(out[:, f] - ref)) / np.max(np.abs(ref))
        assert (err < 1e-5) if f % n == 0 else (err > 1e-3), f"frame {f}: relative error {err:.2e}"


def test_if_stage2_import_and_inflate(tmp_path):
    with pytest.raises(ValueError, match="stage must be 't2i' .* or 'ssr_image'"):
        pretrained.import_diffusers_unet(str(FIXTURES / "if_sr_tiny"), str(tmp_path / "x"), stage="ssr")
    with pytest.raises(ValueError, match=r"null_embedding has shape \(3, 16\); expected \(77, 16\)"):
        pretrained.import_diffusers_unet(
            str(FIXTURES / "if_sr_tiny"),
            str(tmp_path / "x"),
            stage="ssr_image",
            resolution=16,
            low_resolution=8,
            null_embedding=np.zeros((3, 16)),
        )
    null = np.random.default_rng(0).normal(size=(77, 16)).astype(np.float32)
    pretrained.import_diffusers_unet(
        str(FIXTURES / "if_sr_tiny"),
        str(tmp_path / "if2"),
        stage="ssr_image",
        resolution=16,
        low_resolution=8,
        null_embedding=null,
    )
    params, stored = checkpoint.load(str(tmp_path / "if2"))
    assert stored["stage"] == "ssr_image" and stored["ssr"]["aug_level"] == 250
    np.testing.assert_array_equal(np.asarray(params["null_text"]), null)
    unet = build.model_config(stored).stunet.unet
    assert unet.aug_embedding and unet.layers_per_level == (1, 2) and unet.mid_block_scale > 1.4
    cfg = _video_config("if_stage2", "ssr", unet, num_frames=2, resolution=16, low_resolution=8, null_text="learned")
    model = DiffusionModel(validation.validate(cfg))
    abstract = jax.eval_shape(model.init, jax.random.PRNGKey(0))  # inflatable: same spatial tree
    shapes = lambda tree: jax.tree_util.tree_map(lambda a: a.shape, tree)
    assert shapes(abstract["denoiser"]["spatial"]) == shapes(params["denoiser"])
    assert abstract["null_text"].shape == null.shape


def test_if_presets_match_the_diffusers_configs():
    assert presets.UNET_FIELD_DEFAULTS == {k: v for k, v in dataclasses.asdict(UNetConfig()).items() if k != "remat"}
    with open(FIXTURES / "if_i_xl_unet_config.json") as f:
        assert cd.unet_config_from_diffusers(json.load(f)) == UNetConfig(**presets.IF_I_XL)
    UNetConfig(**presets.IF_II_L)  # every field known to the model
    c = load_config("if_stage1", "video", "/nonexistent")
    m = validation.validate(c)
    assert m.stunet.unet.out_channels == 6 and m.text_encoder is None and m.precomputed_text_length == 77
    assert (c.diffusion.schedule, c.diffusion.prediction_type, c.diffusion.variance_type) == (
        "squaredcos_cap_v2",
        "epsilon",
        "learned_range",
    )
    c.model.unet.out_channels = 3
    with pytest.raises(ValueError, match="learned_range' needs model.unet.out_channels = 6"):
        validation.validate(c)
