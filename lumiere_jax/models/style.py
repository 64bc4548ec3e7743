"""Stylized generation (Lumiere §4.1): a video model with a style-fine-tuned T2I's spatial weights.

A T2I U-Net fine-tuned on a style (``W_style``) is blended into the spatial layers of a trained
video model (``W_orig``, the T2I weights the video model was inflated from)::

    spatial = alpha * W_style + (1 - alpha) * W_orig

while the video model's temporal layers are kept as trained: they were learned on top of W_orig and
still carry the motion prior. The paper finds alpha in [0.5, 1] useful (higher: more style, but
motion may degrade); any alpha in [0, 1] is accepted (0: the video model unchanged, 1: the style
U-Net verbatim).

Only the denoiser's spatial U-Net is blended. The text encoder and null embedding always come from
the video model: a style fine-tune may have moved (or not even kept) the text encoder, and the
temporal layers were trained against the video model's text embeddings.

Input channels: a conditional video model (e.g. the 7-channel <noisy video, masked video, mask>
model of §4.2) has a wider input convolution than a plain 3-channel style T2I. Then the first ``c``
input channels of ``conv_in/kernel`` ([kh, kw, c_in, out]) are blended and the extra conditioning
channels keep the video model's weights (the style model never saw those inputs).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from lumiere_jax.models.build import model_config
from lumiere_jax.models.stunet import SPATIAL, TEMPORAL

# UNetConfig fields that do not change the parameter tree (numerics, training regularisation).
NON_ARCHITECTURE_FIELDS = ("dropout", "attention_impl", "attention_min_length", "dtype", "param_dtype", "remat")
_CONV_IN_KERNEL = ("conv_in", "kernel")


def _path_str(path) -> str:
    return "/".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)


def _style_unet(style_t2i_params: Any) -> Any:
    """The U-Net params of a T2I model's params dict (``{"denoiser": ...}``) or a bare U-Net tree."""
    if not isinstance(style_t2i_params, dict):
        raise ValueError(f"style parameters must be a dict, got {type(style_t2i_params).__name__}")
    unet = style_t2i_params.get("denoiser", style_t2i_params)
    if isinstance(unet, dict) and (SPATIAL in unet or TEMPORAL in unet):
        raise ValueError(
            "the style parameters are a video model's (denoiser has 'spatial'/'temporal'); "
            "stylized generation takes a style-fine-tuned T2I (image) model"
        )
    return unet


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"style alpha must be in [0, 1] (the paper uses [0.5, 1]), got {alpha}")
    return alpha


@functools.partial(jax.jit, static_argnums=3)
def _blend(video_leaves, style_leaves, alpha, prefix):
    """One compiled program for the whole tree (eager per-leaf ops would compile per shape)."""
    out = []
    for v, s, c in zip(video_leaves, style_leaves, prefix):
        v32, s32 = v.astype(jnp.float32), s.astype(jnp.float32)
        if c is None:
            blended = alpha * s32 + (1.0 - alpha) * v32
        else:
            mixed = alpha * s32 + (1.0 - alpha) * v32[..., :c, :]
            blended = jnp.concatenate([mixed, v32[..., c:, :]], axis=-2)
        out.append(blended.astype(v.dtype))
    return out


def interpolate_spatial(video_params: dict, style_t2i_params: Any, alpha: float) -> dict:
    """Video-model params whose spatial U-Net is ``alpha * style + (1 - alpha) * video``.

    ``video_params``: a video model's params (``denoiser = {"spatial", "temporal"}``).
    ``style_t2i_params``: a T2I model's params (its ``denoiser`` is used; text encoder and null
    embedding are ignored) or a bare U-Net param tree. Leaves are blended in float32 and cast back
    to the video leaf's dtype; temporal layers, text encoder and null embedding are the video
    model's (same objects). See the module docstring for conv_in with fewer style input channels.

    Raises ValueError for alpha outside [0, 1] or when the U-Net trees differ (the first differing
    path is named, with both shapes).
    """
    alpha = _check_alpha(alpha)
    den = video_params.get("denoiser") if isinstance(video_params, dict) else None
    if not isinstance(den, dict) or SPATIAL not in den or TEMPORAL not in den:
        raise ValueError(
            "video_params must be a video model's parameters (denoiser with 'spatial' and 'temporal' subtrees)"
        )
    style = _style_unet(style_t2i_params)
    video_spatial = den[SPATIAL]

    s_by_name = {_path_str(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(style)[0]}
    v_flat, treedef = jax.tree_util.tree_flatten_with_path(video_spatial)
    v_paths = [_path_str(p) for p, _ in v_flat]
    missing = [p for p in v_paths if p not in s_by_name]
    extra = sorted(set(s_by_name) - set(v_paths))
    if missing or extra:
        what = (
            f"the video model's denoiser/{SPATIAL}/{missing[0]} is missing from the style checkpoint"
            if missing
            else f"the style checkpoint's denoiser/{extra[0]} is not in the video model"
        )
        raise ValueError(
            f"style U-Net and the video model's spatial U-Net differ: {what} "
            f"({len(missing)} missing, {len(extra)} extra parameters); was the style T2I "
            "trained with the same model.unet config?"
        )

    style_leaves, prefix = [], []  # prefix: blend only the first c input channels (conv_in), else None
    for path, v in v_flat:
        name = _path_str(path)
        s = s_by_name[name]
        vs, ss = tuple(jnp.shape(v)), tuple(jnp.shape(s))
        fewer_inputs = (
            tuple(getattr(p, "key", None) for p in path) == _CONV_IN_KERNEL
            and len(vs) == len(ss) >= 2
            and ss[-2] < vs[-2]
            and ss[:-2] == vs[:-2]
            and ss[-1] == vs[-1]
        )
        if vs != ss and not fewer_inputs:
            raise ValueError(
                f"style checkpoint's denoiser/{name} is {ss}, the video model's "
                f"denoiser/{SPATIAL}/{name} is {vs}: the style T2I must have the video model's "
                "spatial U-Net architecture (only conv_in may have fewer input channels)"
            )
        style_leaves.append(s)
        prefix.append(ss[-2] if fewer_inputs else None)
    out = _blend([v for _, v in v_flat], style_leaves, jnp.float32(alpha), tuple(prefix))
    spatial = jax.tree_util.tree_unflatten(treedef, out)
    return {**video_params, "denoiser": {**den, SPATIAL: spatial}}


def check_architecture(video_model_cfg, style_model_cfg) -> None:
    """ValueError naming the U-Net config fields (other than in_channels and the numerics fields
    NON_ARCHITECTURE_FIELDS) in which the style T2I differs from the video model's spatial U-Net,
    or when the style model has more input channels."""
    v = dataclasses.asdict(video_model_cfg.stunet.unet)
    s = dataclasses.asdict(style_model_cfg.stunet.unet)
    skip = set(NON_ARCHITECTURE_FIELDS) | {"in_channels"}
    diff = [f"{k}: style {s[k]!r} vs video {v[k]!r}" for k in v if k not in skip and s.get(k) != v[k]]
    if diff:
        raise ValueError(
            "the style T2I's U-Net differs from the video model's spatial U-Net in "
            f"model.unet fields {{{'; '.join(diff)}}}"
        )
    if s["in_channels"] > v["in_channels"]:
        raise ValueError(
            f"the style T2I takes {s['in_channels']} input channels, more than the video model's {v['in_channels']}"
        )


def blend_style(
    video_params: dict,
    video_config_dict: dict,
    style_params: dict,
    style_config_dict: dict,
    alpha: float,
    source: str = "the style checkpoint",
) -> dict:
    """:func:`interpolate_spatial` of a style T2I's parameters into a video model's, after checking
    the stored configs: the style model must be a ``'t2i'`` stage whose ``model.unet`` equals the
    video model's (``video_config_dict``: the video run's stored config) except for in_channels
    (may be fewer) and the numerics fields in NON_ARCHITECTURE_FIELDS. ``source`` names the style
    model in errors (loading it from disk is `pipeline.load_style`)."""
    alpha = _check_alpha(alpha)
    video_cfg = model_config(video_config_dict)
    if video_cfg.kind != "video":
        raise ValueError(
            f"stylized generation blends into a video model; the given config is stage "
            f"{video_config_dict.get('stage')!r} ({video_cfg.kind} model)"
        )
    stage = style_config_dict.get("stage")
    if stage != "t2i":
        raise ValueError(
            f"style checkpoint {source} is a {stage!r} stage; stylized generation needs a "
            "'t2i' checkpoint (the T2I model fine-tuned on the style)"
        )
    try:
        check_architecture(video_cfg, model_config(style_config_dict))
    except ValueError as e:
        raise ValueError(f"style checkpoint {source}: {e}") from None
    return interpolate_spatial(video_params, style_params, alpha)
