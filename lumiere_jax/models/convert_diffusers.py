"""Import / export of diffusers ``UNet2DConditionModel`` checkpoints (DeepFloyd IF family).

A diffusers U-Net folder holds ``config.json`` and ``diffusion_pytorch_model.safetensors`` (or a
sharded ``diffusion_pytorch_model.safetensors.index.json``). :func:`unet_config_from_diffusers`
turns the config into a :class:`UNetConfig`; :func:`params_from_state_dict` maps the tensors into
our parameter tree (torch conv OIHW -> HWIO, torch Linear (out, in) -> (in, out), norm
weight -> scale) and :func:`state_dict_from_params` maps back to diffusers' names and layouts.

Supported: the blocks IF uses (``ResnetDownsampleBlock2D`` / ``SimpleCrossAttnDownBlock2D``,
``UNetMidBlock2DSimpleCrossAttn``, the mirrored up blocks), ``encoder_hid_dim_type="text_proj"``,
``addition_embed_type="text"``, ``class_embed_type="timestep"`` (IF-II's noise-augmentation
level). Anything else raises a ValueError naming the config key.
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lumiere_jax.models.unet import UNet, UNetConfig

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"
_DOWN = {"ResnetDownsampleBlock2D": False, "SimpleCrossAttnDownBlock2D": True}  # -> has attention
_UP = {"ResnetUpsampleBlock2D": False, "SimpleCrossAttnUpBlock2D": True}
_ACTS = {"gelu": "gelu", "silu": "silu", "swish": "silu", "mish": "mish", "relu": "relu"}
# Config keys that must keep diffusers' default (value: the accepted values).
_FIXED = {
    "center_input_sample": (False,),
    "time_embedding_type": ("positional",),
    "timestep_post_act": (None,),
    "time_cond_proj_dim": (None,),
    "conv_in_kernel": (3,),
    "conv_out_kernel": (3,),
    "class_embeddings_concat": (False,),
    "num_class_embeds": (None,),
    "dual_cross_attention": (False,),
    "projection_class_embeddings_input_dim": (None,),
    "attention_type": ("default",),
    "addition_time_embed_dim": (None,),
    "num_attention_heads": (None,),
    "reverse_transformer_layers_per_block": (None,),
}
# Keys this module reads.
_READ = {
    "down_block_types",
    "up_block_types",
    "mid_block_type",
    "block_out_channels",
    "layers_per_block",
    "act_fn",
    "time_embedding_act_fn",
    "resnet_time_scale_shift",
    "cross_attention_dim",
    "encoder_hid_dim_type",
    "encoder_hid_dim",
    "addition_embed_type",
    "addition_embed_type_num_heads",
    "class_embed_type",
    "cross_attention_norm",
    "only_cross_attention",
    "mid_block_only_cross_attention",
    "norm_num_groups",
    "norm_eps",
    "in_channels",
    "out_channels",
    "attention_head_dim",
    "dropout",
    "time_embedding_dim",
    "flip_sin_to_cos",
    "freq_shift",
    "resnet_skip_time_act",
    "resnet_out_scale_factor",
    "mid_block_scale_factor",
}
# Keys with no effect on the blocks above (kept for information).
_IGNORED = {
    "_class_name",
    "_diffusers_version",
    "_name_or_path",
    "_use_default_values",
    "_source",
    "sample_size",
    "upcast_attention",
    "use_linear_projection",
    "downsample_padding",
    "transformer_layers_per_block",
}


def _uniform(cfg: Mapping, key: str, default: Any) -> Any:
    """A per-block diffusers option that we support only with one value for every block."""
    v = cfg.get(key, default)
    if isinstance(v, (list, tuple)):
        if len(set(v)) != 1:
            raise ValueError(f"diffusers config {key}={list(v)}: only one value for every block is supported")
        v = v[0]
    return v


def unet_config_from_diffusers(cfg: Mapping[str, Any], **overrides: Any) -> UNetConfig:
    """Our :class:`UNetConfig` for a diffusers ``UNet2DConditionModel`` config (IF-I / IF-II style).

    ``overrides`` (e.g. ``attention_impl``, ``dtype``) are applied on top.
    """
    cfg = dict(cfg)
    if cfg.get("_class_name", "UNet2DConditionModel") != "UNet2DConditionModel":
        raise ValueError(f"expected a UNet2DConditionModel config, got _class_name={cfg['_class_name']!r}")
    unknown = sorted(set(cfg) - _READ - set(_FIXED) - _IGNORED)
    if unknown:
        raise ValueError(f"unknown diffusers UNet2DConditionModel config keys {unknown}")
    for key, ok in _FIXED.items():
        if key in cfg and cfg[key] not in ok:
            raise ValueError(f"unsupported diffusers config {key}={cfg[key]!r} (supported: {list(ok)})")
    down, up = list(cfg.get("down_block_types", ())), list(cfg.get("up_block_types", ()))
    for t in down:
        if t not in _DOWN:
            raise ValueError(f"unsupported down block type {t!r}; supported: {sorted(_DOWN)}")
    for t in up:
        if t not in _UP:
            raise ValueError(f"unsupported up block type {t!r}; supported: {sorted(_UP)}")
    if [_UP[t] for t in up] != [_DOWN[t] for t in reversed(down)]:
        raise ValueError(f"up_block_types {up} must mirror down_block_types {down} (attention at the same levels)")
    if cfg.get("mid_block_type", "UNetMidBlock2DCrossAttn") != "UNetMidBlock2DSimpleCrossAttn":
        raise ValueError(
            f"unsupported mid_block_type {cfg.get('mid_block_type')!r}; supported: 'UNetMidBlock2DSimpleCrossAttn'"
        )
    boc = list(cfg["block_out_channels"])
    if len(boc) != len(down):
        raise ValueError(f"block_out_channels {boc} and down_block_types {down} differ in length")
    base = boc[0]
    if any(c % base for c in boc):
        raise ValueError(f"block_out_channels {boc} must be multiples of the first one")
    lpb = cfg.get("layers_per_block", 2)
    if isinstance(lpb, (list, tuple)):
        if len(lpb) != len(down):
            raise ValueError(f"layers_per_block {list(lpb)} must name one count per block ({len(down)})")
        num_res, per_level = int(lpb[0]), tuple(int(n) for n in lpb)
    else:
        num_res, per_level = int(lpb), ()
    act = cfg.get("act_fn", "silu")
    if act not in _ACTS:
        raise ValueError(f"unsupported act_fn {act!r}; supported: {sorted(_ACTS)}")
    tact = cfg.get("time_embedding_act_fn")
    if tact is not None and tact not in _ACTS:
        raise ValueError(f"unsupported time_embedding_act_fn {tact!r}; supported: {sorted(_ACTS)}")
    shift = cfg.get("resnet_time_scale_shift", "default")
    if shift not in ("default", "scale_shift"):
        raise ValueError(f"unsupported resnet_time_scale_shift {shift!r}; supported: 'default', 'scale_shift'")
    cad = _uniform(cfg, "cross_attention_dim", 1280)
    hid_type, hid_dim = cfg.get("encoder_hid_dim_type"), cfg.get("encoder_hid_dim")
    if hid_type is None and hid_dim is not None:
        hid_type = "text_proj"  # diffusers' default when encoder_hid_dim is set
    if hid_type not in (None, "text_proj"):
        raise ValueError(f"unsupported encoder_hid_dim_type {hid_type!r}; supported: 'text_proj', None")
    add = cfg.get("addition_embed_type")
    if add not in (None, "text"):
        raise ValueError(f"unsupported addition_embed_type {add!r}; supported: 'text', None")
    cls = cfg.get("class_embed_type")
    if cls not in (None, "timestep"):
        raise ValueError(f"unsupported class_embed_type {cls!r}; supported: 'timestep', None")
    norm = cfg.get("cross_attention_norm")
    if norm not in (None, "group_norm", "layer_norm"):
        raise ValueError(f"unsupported cross_attention_norm {norm!r}")
    only_cross = bool(_uniform(cfg, "only_cross_attention", False))
    mid_only = cfg.get("mid_block_only_cross_attention")
    if mid_only is not None and bool(mid_only) != only_cross:
        raise ValueError(
            f"mid_block_only_cross_attention={mid_only} differing from only_cross_attention is not supported"
        )
    groups = cfg.get("norm_num_groups", 32)
    if groups is None:
        raise ValueError("norm_num_groups=None (no output norm) is not supported")
    kw = dict(
        in_channels=int(cfg.get("in_channels", 4)),
        out_channels=int(cfg.get("out_channels", 4)),
        base_channels=int(base),
        channel_mult=tuple(c // base for c in boc),
        num_res_blocks=num_res,
        layers_per_level=per_level,
        attention_resolutions=tuple(2**level for level, t in enumerate(down) if _DOWN[t]),
        mid_attention=True,
        head_dim=int(_uniform(cfg, "attention_head_dim", 8)),
        dropout=float(cfg.get("dropout", 0.0)),
        text_dim=int(hid_dim if hid_type == "text_proj" else cad),
        cross_attention_dim=int(cad) if hid_type == "text_proj" else None,
        text_pooling="attention" if add == "text" else "none",
        text_pool_heads=int(cfg.get("addition_embed_type_num_heads", 64)),
        text_pool_use_mask=False,
        text_norm=norm,
        text_norm_groups=32 if norm == "group_norm" else None,
        use_text_mask=False,
        aug_embedding=cls == "timestep",
        only_cross_attention=only_cross,
        time_embed_dim=cfg.get("time_embedding_dim"),
        time_embed_act=None if tact is None else _ACTS[tact],
        flip_sin_to_cos=bool(cfg.get("flip_sin_to_cos", True)),
        freq_shift=float(cfg.get("freq_shift", 0)),
        act=_ACTS[act],
        norm_groups=int(groups),
        norm_eps=float(cfg.get("norm_eps", 1e-5)),
        time_scale_shift=shift == "scale_shift",
        skip_time_act=bool(cfg.get("resnet_skip_time_act", False)),
        resnet_output_scale=float(cfg.get("resnet_out_scale_factor", 1.0)),
        mid_block_scale=float(cfg.get("mid_block_scale_factor", 1.0)),
        resample="resnet",
    )
    kw.update(overrides)
    return UNetConfig(**kw)


# ---------------------------------------------------------------------------------------------
# Parameter names.


def _module_key(cfg: UNetConfig, name: str) -> str:
    """diffusers module path of one of our top-level U-Net submodules."""
    fixed = {
        "conv_in": "conv_in",
        "conv_out": "conv_out",
        "norm_out": "conv_norm_out",
        "time_embed_1": "time_embedding.linear_1",
        "time_embed_2": "time_embedding.linear_2",
        "aug_embed_1": "class_embedding.linear_1",
        "aug_embed_2": "class_embedding.linear_2",
        "text_proj": "encoder_hid_proj",
        "text_pool_norm1": "add_embedding.norm1",
        "text_pool": "add_embedding.pool",
        "text_pool_proj": "add_embedding.proj",
        "text_pool_norm2": "add_embedding.norm2",
        "mid_res_0": "mid_block.resnets.0",
        "mid_res_1": "mid_block.resnets.1",
        "mid_attn": "mid_block.attentions.0",
    }
    if name in fixed:
        return fixed[name]
    m = re.fullmatch(r"(down|up)_(\d+)_(res|attn)_(\d+)", name)
    if m:
        side, level, kind, i = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        block = level if side == "down" else cfg.num_levels - 1 - level
        return f"{side}_blocks.{block}.{'resnets' if kind == 'res' else 'attentions'}.{i}"
    m = re.fullmatch(r"down_(\d+)_downsample", name)
    if m:
        return f"down_blocks.{int(m.group(1))}.downsamplers.0"
    m = re.fullmatch(r"up_(\d+)_upsample", name)
    if m:
        return f"up_blocks.{cfg.num_levels - 1 - int(m.group(1))}.upsamplers.0"
    raise ValueError(f"no diffusers name for U-Net module {name!r}")


_ATTN_SUB = {"norm": "group_norm", "norm_text": "norm_cross", "to_out": "to_out.0"}


def _diffusers_key(cfg: UNetConfig, path: tuple[str, ...]) -> str:
    """diffusers state-dict key of our parameter at `path` (e.g. ('down_1_attn_0', 'to_out', 'kernel'))."""
    head, *mid, leaf = path
    parts = [_module_key(cfg, head)]
    mid = [m for m in mid if m != "ln"]  # our LayerNorm wrapper's inner module
    if "_attn" in head or head == "mid_attn":
        mid = [_ATTN_SUB.get(m, m) for m in mid]
    parts += mid
    leaf = {"kernel": "weight", "scale": "weight"}.get(leaf, leaf)
    return ".".join(parts + [leaf])


def _to_torch(path: tuple[str, ...], x: np.ndarray) -> np.ndarray:
    if path[-1] == "kernel":
        return np.transpose(x, (3, 2, 0, 1)) if x.ndim == 4 else np.transpose(x)
    return x


def _from_torch(path: tuple[str, ...], x: np.ndarray) -> np.ndarray:
    if path[-1] == "kernel":
        return np.transpose(x, (2, 3, 1, 0)) if x.ndim == 4 else np.transpose(x)
    return x


@functools.lru_cache(maxsize=8)
def abstract_params(cfg: UNetConfig) -> dict:
    """Shapes/dtypes of our U-Net's parameters (no allocation; cached per config, do not mutate)."""
    x = jnp.zeros((1, cfg.spatial_factor, cfg.spatial_factor, cfg.in_channels))
    t = jnp.zeros((1,), jnp.int32)
    text = None if cfg.text_dim is None else jnp.zeros((1, 2, cfg.text_dim))
    aug = jnp.zeros((1,), jnp.int32) if cfg.aug_embedding else None
    shapes = jax.eval_shape(lambda: UNet(cfg).init(jax.random.PRNGKey(0), x, t, text, aug_level=aug))
    return nn.meta.unbox(shapes)["params"]


def _flat(tree: Mapping) -> dict[tuple[str, ...], Any]:
    return {tuple(str(k.key) for k in path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _unflat(flat: Mapping[tuple[str, ...], Any]) -> dict:
    out: dict = {}
    for path, v in flat.items():
        d = out
        for k in path[:-1]:
            d = d.setdefault(k, {})
        d[path[-1]] = v
    return out


def key_map(cfg: UNetConfig) -> dict[tuple[str, ...], str]:
    """Our parameter path -> diffusers state-dict key, for every parameter of `cfg`'s U-Net."""
    return {path: _diffusers_key(cfg, path) for path in _flat(abstract_params(cfg))}


def params_from_state_dict(cfg: UNetConfig, state: Mapping[str, np.ndarray], dtype=np.float32) -> dict:
    """Our parameter tree from a diffusers state dict (numpy arrays, torch layouts).

    Raises ValueError listing missing keys, unexpected keys, or the first shape mismatches."""
    expected = _flat(abstract_params(cfg))
    names = {path: _diffusers_key(cfg, path) for path in expected}
    missing = sorted(k for k in names.values() if k not in state)
    unexpected = sorted(set(state) - set(names.values()))
    if missing or unexpected:
        raise ValueError(
            f"diffusers state dict does not match the U-Net config: "
            f"{len(missing)} missing keys {missing[:8]}, {len(unexpected)} unexpected keys "
            f"{unexpected[:8]}"
        )
    out, bad = {}, []
    for path, leaf in expected.items():
        x = _from_torch(path, np.asarray(state[names[path]]))
        if tuple(x.shape) != tuple(leaf.shape):
            bad.append(
                f"{names[path]}: checkpoint {tuple(np.asarray(state[names[path]]).shape)} -> "
                f"{tuple(x.shape)}, model {tuple(leaf.shape)}"
            )
        out[path] = np.ascontiguousarray(x.astype(dtype))
    if bad:
        raise ValueError(f"{len(bad)} shape mismatches between the checkpoint and the config: {bad[:8]}")
    return _unflat(out)


def state_dict_from_params(cfg: UNetConfig, params: Mapping) -> dict[str, np.ndarray]:
    """diffusers state dict (numpy, torch layouts) of our U-Net parameters."""
    flat = _flat(params)
    expected = _flat(abstract_params(cfg))
    if set(flat) != set(expected):
        extra, missing = sorted(set(flat) - set(expected)), sorted(set(expected) - set(flat))
        raise ValueError(f"parameters do not match the config: missing {missing[:8]}, unexpected {extra[:8]}")
    return {_diffusers_key(cfg, path): np.ascontiguousarray(_to_torch(path, np.asarray(x))) for path, x in flat.items()}


# ---------------------------------------------------------------------------------------------
# Folders.


def read_state_dict(folder: str) -> dict[str, np.ndarray]:
    """All tensors of a diffusers model folder (single or sharded safetensors)."""
    from safetensors.numpy import load_file

    single, index = os.path.join(folder, WEIGHTS_NAME), os.path.join(folder, INDEX_NAME)
    if os.path.exists(single):
        return load_file(single)
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state: dict[str, np.ndarray] = {}
        for shard in shards:
            state.update(load_file(os.path.join(folder, shard)))
        return state
    raise ValueError(
        f"{folder} holds neither {WEIGHTS_NAME} nor {INDEX_NAME} (a diffusers U-Net folder, "
        "e.g. <IF-I-XL-v1.0>/unet, saved with safetensors)"
    )


def read_config(folder: str) -> dict:
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"{folder} has no config.json (expected a diffusers U-Net folder)")
    with open(path) as f:
        return json.load(f)


def load_unet(folder: str, **overrides: Any) -> tuple[UNetConfig, dict]:
    """(UNetConfig, params) of a diffusers ``UNet2DConditionModel`` folder."""
    cfg = unet_config_from_diffusers(read_config(folder), **overrides)
    return cfg, params_from_state_dict(cfg, read_state_dict(folder))


def diffusers_config(cfg: UNetConfig) -> dict:
    """A diffusers config.json for our U-Net config (inverse of :func:`unet_config_from_diffusers`)."""
    if cfg.resample != "resnet" or not cfg.mid_attention or cfg.text_dim is None:
        raise ValueError("only IF-style U-Nets (resample='resnet', mid attention, text) have a diffusers layout")
    if cfg.text_pooling == "mean":
        raise ValueError("text_pooling='mean' has no diffusers equivalent")
    if cfg.use_text_mask or cfg.text_pool_use_mask:
        raise ValueError(
            "diffusers' IF U-Net ignores the text mask: use_text_mask and text_pool_use_mask must be False to export"
        )
    if cfg.text_norm == "group_norm" and cfg.text_norm_groups != 32:
        raise ValueError(f"diffusers normalises the text with 32 groups; text_norm_groups={cfg.text_norm_groups}")
    levels = range(cfg.num_levels)
    down = ["SimpleCrossAttnDownBlock2D" if cfg.has_attention(lv) else "ResnetDownsampleBlock2D" for lv in levels]
    up = ["SimpleCrossAttnUpBlock2D" if cfg.has_attention(lv) else "ResnetUpsampleBlock2D" for lv in reversed(levels)]
    rev_act = {"gelu": "gelu", "silu": "silu", "mish": "mish", "relu": "relu"}
    return {
        "_class_name": "UNet2DConditionModel",
        "in_channels": cfg.in_channels,
        "out_channels": cfg.out_channels,
        "block_out_channels": list(cfg.channels),
        "layers_per_block": list(cfg.layers_per_level) if cfg.layers_per_level else cfg.num_res_blocks,
        "down_block_types": down,
        "up_block_types": up,
        "mid_block_type": "UNetMidBlock2DSimpleCrossAttn",
        "attention_head_dim": cfg.head_dim,
        "dropout": cfg.dropout,
        "cross_attention_dim": cfg.cross_attention_dim or cfg.text_dim,
        "encoder_hid_dim": cfg.text_dim if cfg.cross_attention_dim else None,
        "encoder_hid_dim_type": "text_proj" if cfg.cross_attention_dim else None,
        "addition_embed_type": "text" if cfg.text_pooling == "attention" else None,
        "addition_embed_type_num_heads": cfg.text_pool_heads,
        "class_embed_type": "timestep" if cfg.aug_embedding else None,
        "cross_attention_norm": cfg.text_norm,
        "only_cross_attention": cfg.only_cross_attention,
        "time_embedding_dim": cfg.time_embed_dim,
        "time_embedding_act_fn": None if cfg.time_embed_act is None else rev_act[cfg.time_embed_act],
        "flip_sin_to_cos": cfg.flip_sin_to_cos,
        "freq_shift": cfg.freq_shift,
        "act_fn": rev_act[cfg.act],
        "norm_num_groups": cfg.norm_groups,
        "norm_eps": cfg.norm_eps,
        "resnet_time_scale_shift": "scale_shift" if cfg.time_scale_shift else "default",
        "resnet_skip_time_act": cfg.skip_time_act,
        "resnet_out_scale_factor": cfg.resnet_output_scale,
        "mid_block_scale_factor": cfg.mid_block_scale,
    }


def save_unet(folder: str, cfg: UNetConfig, params: Mapping) -> None:
    """Writes a diffusers U-Net folder (config.json + diffusion_pytorch_model.safetensors)."""
    from safetensors.numpy import save_file

    os.makedirs(folder, exist_ok=True)
    save_file(state_dict_from_params(cfg, params), os.path.join(folder, WEIGHTS_NAME))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(diffusers_config(cfg), f, indent=2)
