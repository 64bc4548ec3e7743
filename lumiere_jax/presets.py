"""Pretrained-model presets as plain data (no jax): DeepFloyd IF's U-Nets, scheduler and sampler.

`configs/if_stage1.py` / `if_stage2.py` build their configs from these, and `train.pretrained`
writes them into the export of an imported diffusers U-Net. `UNET_FIELD_DEFAULTS` are the defaults
of `models.unet.UNetConfig` (tests/train/test_pretrained.py checks both against the models).
"""

from __future__ import annotations

from typing import Any, Mapping

import ml_collections

UNET_FIELD_DEFAULTS: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    base_channels=64,
    channel_mult=(1, 2, 4),
    num_res_blocks=2,
    layers_per_level=(),
    attention_resolutions=(4,),
    mid_attention=True,
    head_dim=32,
    dropout=0.0,
    text_dim=64,
    cross_attention_dim=None,
    text_pooling="mean",
    text_pool_heads=4,
    text_pool_use_mask=True,
    text_norm="group_norm",
    text_norm_groups=None,
    use_text_mask=True,
    aug_embedding=False,
    only_cross_attention=False,
    time_embed_dim=None,
    time_embed_act=None,
    flip_sin_to_cos=True,
    freq_shift=0.0,
    act="silu",
    norm_groups=32,
    norm_eps=1e-5,
    time_scale_shift=True,
    skip_time_act=False,
    resnet_output_scale=1.0,
    mid_block_scale=1.0,
    resample="conv",
    attention_impl="xla",
    attention_min_length=128,
    dtype="float32",
    param_dtype="float32",
)

# DeepFloyd/IF-I-XL-v1.0/unet (convert_diffusers.unet_config_from_diffusers of its config.json).
IF_I_XL = {
    **UNET_FIELD_DEFAULTS,
    **dict(
        out_channels=6,
        base_channels=704,
        channel_mult=(1, 2, 3, 4),
        num_res_blocks=3,
        attention_resolutions=(2, 4, 8),
        head_dim=64,
        text_dim=4096,
        cross_attention_dim=2816,
        text_pooling="attention",
        text_pool_heads=64,
        text_pool_use_mask=False,
        text_norm_groups=32,
        use_text_mask=False,
        act="gelu",
        resample="resnet",
    ),
}

_SQRT2 = 1.4142271248762552  # IF's resnet_out_scale_factor / mid_block_scale_factor
# DeepFloyd/IF-II-L-v1.0/unet.
IF_II_L = {
    **UNET_FIELD_DEFAULTS,
    **dict(
        in_channels=6,
        out_channels=6,
        base_channels=160,
        channel_mult=(1, 2, 4, 6, 8),
        layers_per_level=(2, 2, 3, 5, 5),
        attention_resolutions=(8, 16),
        head_dim=64,
        text_dim=4096,
        cross_attention_dim=1280,
        text_pooling="attention",
        text_pool_heads=64,
        text_pool_use_mask=False,
        text_norm_groups=32,
        use_text_mask=False,
        aug_embedding=True,
        time_embed_act="gelu",
        act="gelu",
        skip_time_act=True,
        resnet_output_scale=_SQRT2,
        mid_block_scale=_SQRT2,
        resample="resnet",
    ),
}

# diffusers' IF schedulers (DDPMScheduler as the IF pipelines configure it).
IF_DIFFUSION = dict(schedule="squaredcos_cap_v2", prediction_type="epsilon", variance_type="learned_range")
IF_SAMPLE = {
    1: dict(
        sampler="ddpm",
        num_steps=100,
        timestep_spacing="leading",
        thresholding=True,
        dynamic_thresholding_ratio=0.95,
        sample_max_value=1.5,
        eta=0.0,
    ),
    2: dict(
        sampler="ddpm",
        num_steps=50,
        timestep_spacing="leading",
        thresholding=True,
        dynamic_thresholding_ratio=0.95,
        sample_max_value=1.0,
        eta=0.0,
    ),
}
IF_TEXT_LENGTH = 77
IF_NOISE_LEVEL = 250  # IFSuperResolutionPipeline's default noise_level (the low-res augmentation)


def set_unet(c: ml_collections.ConfigDict, unet: Mapping[str, Any]) -> None:
    """Writes every U-Net field of `unet` (a full field dict, e.g. `IF_I_XL`) into ``c.model.unet``."""
    missing = sorted(set(UNET_FIELD_DEFAULTS) - set(unet))
    if missing:
        raise ValueError(f"set_unet needs every U-Net field; missing {missing}")
    for key, value in unet.items():
        if key != "remat":
            c.model.unet[key] = value


def apply_if_preset(c: ml_collections.ConfigDict, stage: int) -> None:
    """IF's scheduler (squaredcos_cap_v2, epsilon, learned-range variance) and sampler (DDPM,
    dynamic thresholding 0.95 with max 1.5 for stage I, 1.0 for stage II) and precomputed
    77-token text; stage II also IF's low-res augmentation level."""
    if stage not in IF_SAMPLE:
        raise ValueError(f"IF stage must be 1 or 2, got {stage!r}")
    c.diffusion.update(IF_DIFFUSION)
    c.sample.update(IF_SAMPLE[stage])
    c.model.text_source = "precomputed"
    c.model.text_encoder.max_length = IF_TEXT_LENGTH
    if stage == 2:
        c.ssr.aug_level = IF_NOISE_LEVEL
