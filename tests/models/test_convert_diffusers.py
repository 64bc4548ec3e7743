"""diffusers UNet2DConditionModel (DeepFloyd IF) import/export: parity with diffusers outputs on tiny
IF-I-like and IF-II-like models (fixtures from tools/make_if_fixtures.py), round trip, the full
IF-I-XL parameter count, clear errors."""

import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.models import convert_diffusers as cd
from lumiere_jax.models.unet import UNet

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"
OUT = np.load(FIXTURES / "if_unet_outputs.npz")
NAMES = ("if_tiny", "if_sr_tiny")
_LOADED = {}


def loaded(name):
    if name not in _LOADED:
        _LOADED[name] = cd.load_unet(str(FIXTURES / name), attention_impl="reference")
    return _LOADED[name]


@pytest.mark.parametrize("name", NAMES)
def test_matches_diffusers(name):
    cfg, params = loaded(name)
    x = jnp.asarray(OUT[f"{name}_sample"]).transpose(0, 2, 3, 1)  # NCHW -> NHWC
    t = jnp.asarray(OUT[f"{name}_timestep"], jnp.int32)
    text = jnp.asarray(OUT[f"{name}_encoder_hidden_states"])
    aug = jnp.asarray(OUT[f"{name}_class_labels"], jnp.int32) if f"{name}_class_labels" in OUT else None
    assert cfg.aug_embedding == (aug is not None)
    apply = jax.jit(lambda p, *a: UNet(cfg).apply({"params": p}, *a[:4], aug_level=a[4]))
    everything = jnp.ones((2, text.shape[1]), bool)
    out = apply(params, x, t, text, everything, aug)
    ref = OUT[f"{name}_output"].transpose(0, 2, 3, 1)
    assert out.shape == ref.shape
    err = float(np.max(np.abs(np.asarray(out) - ref)))
    assert err <= 1e-4, f"max abs difference {err}"
    # IF passes no text mask to the U-Net: an imported model ignores one.
    mask = jnp.array([[1] * 3 + [0] * 4, [1] * 7], bool)
    masked = apply(params, x, t, text, mask, aug)
    np.testing.assert_array_equal(np.asarray(masked), np.asarray(out))


@pytest.mark.parametrize("name", NAMES)
def test_round_trip(name, tmp_path):
    cfg, params = loaded(name)
    from safetensors.numpy import load_file

    original = load_file(str(FIXTURES / name / cd.WEIGHTS_NAME))
    state = cd.state_dict_from_params(cfg, params)
    assert set(state) == set(original)
    for k, v in original.items():
        np.testing.assert_array_equal(state[k], v, err_msg=k)
    cd.save_unet(str(tmp_path / "unet"), cfg, params)
    cfg2, params2 = cd.load_unet(str(tmp_path / "unet"), attention_impl="reference")
    assert cfg2 == cfg
    jax.tree_util.tree_map(np.testing.assert_array_equal, params2, params)


def test_if_i_xl_parameter_count():
    with open(FIXTURES / "if_i_xl_unet_config.json") as f:
        cfg = cd.unet_config_from_diffusers(json.load(f))
    assert cfg.channels == (704, 1408, 2112, 2816) and cfg.attention_resolutions == (2, 4, 8)
    n = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(cd.abstract_params(cfg)))
    assert n == int(OUT["param_count_if_i_xl"]) == 4_304_695_110


def test_config_errors():
    with open(FIXTURES / "if_tiny" / "config.json") as f:
        base = json.load(f)
    bad = [
        ({"down_block_types": ["CrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"]}, "unsupported down block"),
        ({"up_block_types": ["ResnetUpsampleBlock2D", "SimpleCrossAttnUpBlock2D"]}, "must mirror"),
        ({"class_embed_type": "projection"}, "unsupported class_embed_type"),
        ({"time_embedding_type": "fourier"}, "time_embedding_type='fourier'"),
        ({"encoder_hid_dim_type": "image_proj"}, "unsupported encoder_hid_dim_type"),
        ({"some_new_option": 1}, r"unknown diffusers UNet2DConditionModel config keys \['some_new_option'\]"),
        ({"attention_head_dim": [8, 16]}, "only one value for every block"),
    ]
    for change, msg in bad:
        with pytest.raises(ValueError, match=msg):
            cd.unet_config_from_diffusers({**base, **change})


def test_state_dict_errors():
    cfg, params = loaded("if_tiny")
    state = cd.state_dict_from_params(cfg, params)
    missing = dict(state)
    del missing["mid_block.attentions.0.add_k_proj.weight"]
    with pytest.raises(ValueError, match=r"1 missing keys \['mid_block.attentions.0.add_k_proj.weight'\]"):
        cd.params_from_state_dict(cfg, missing)
    with pytest.raises(ValueError, match=r"1 unexpected keys \['extra.weight'\]"):
        cd.params_from_state_dict(cfg, {**state, "extra.weight": np.zeros(1)})
    wrong = {**state, "conv_in.weight": np.zeros((8, 3, 5, 5), np.float32)}
    with pytest.raises(ValueError, match="1 shape mismatches.*conv_in.weight"):
        cd.params_from_state_dict(cfg, wrong)
    with pytest.raises(ValueError, match="neither diffusion_pytorch_model.safetensors"):
        cd.read_state_dict(str(FIXTURES))


def test_export_rejects_non_diffusers_settings():
    cfg, _ = loaded("if_tiny")
    for change, msg in (
        ({"use_text_mask": True}, "ignores the text mask"),
        ({"text_norm_groups": 4}, "32 groups"),
        ({"resample": "conv"}, "only IF-style U-Nets"),
    ):
        with pytest.raises(ValueError, match=msg):
            cd.diffusers_config(dataclasses.replace(cfg, **change))
