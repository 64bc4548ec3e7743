"""Pretrained starting points: a diffusers DeepFloyd-IF U-Net folder -> a project export.

:func:`import_diffusers_unet` reads ``<IF folder>/unet`` (config.json + safetensors, see
`models/convert_diffusers.py`) and writes a project export (``params/`` + ``config.json``, as
`train/checkpoint.export` writes) of stage ``t2i`` (IF-I) or ``ssr_image`` (IF-II), with IF's
diffusion and sampling settings (:func:`apply_if_preset`). Such an export is what
``config.train.init_from`` of a ``video`` / ``ssr`` run inflates (configs/if_stage1.py, if_stage2.py).

Text: the export takes precomputed T5 embeddings (``model.text_source="precomputed"``, 77 tokens,
width 4096); the null ("") embedding for classifier-free guidance is either given (IF encodes the
empty prompt with T5) or zero.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections
import numpy as np

from lumiere_jax import config as config_lib
from lumiere_jax.models import convert_diffusers
from lumiere_jax.models.unet import UNetConfig
from lumiere_jax.train import checkpoint

# diffusers' IF schedulers (DDPMScheduler as the IF pipelines configure it).
IF_DIFFUSION = dict(schedule="squaredcos_cap_v2", prediction_type="epsilon", variance_type="learned_range")
IF_SAMPLE = {1: dict(sampler="ddpm", num_steps=100, timestep_spacing="leading", thresholding=True,
                     dynamic_thresholding_ratio=0.95, sample_max_value=1.5, eta=0.0),
             2: dict(sampler="ddpm", num_steps=50, timestep_spacing="leading", thresholding=True,
                     dynamic_thresholding_ratio=0.95, sample_max_value=1.0, eta=0.0)}
IF_TEXT_LENGTH = 77
IF_NOISE_LEVEL = 250        # IFSuperResolutionPipeline's default noise_level (the low-res augmentation)


def set_unet(c: ml_collections.ConfigDict, unet: UNetConfig) -> None:
    """Writes every field of `unet` into ``c.model.unet``."""
    for f in dataclasses.fields(unet):
        c.model.unet[f.name] = getattr(unet, f.name)


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


def import_diffusers_unet(unet_folder: str, out: str, *, stage: str = "t2i", resolution: int = 64,
                          low_resolution: int = 0, null_embedding: np.ndarray | None = None,
                          dtype: str = "float32") -> ml_collections.ConfigDict:
    """Writes a project export at `out` from a diffusers IF U-Net folder; returns its run config.

    stage: ``"t2i"`` (IF-I, 3 input channels) or ``"ssr_image"`` (IF-II: 6 input channels and the
    augmentation-level embedding; needs ``low_resolution``). null_embedding: [77, text_dim] (the
    T5 embedding of ""), stored as the learned null text; None uses a zero null embedding."""
    if stage not in ("t2i", "ssr_image"):
        raise ValueError(f"stage must be 't2i' (IF-I) or 'ssr_image' (IF-II), got {stage!r}")
    unet, denoiser = convert_diffusers.load_unet(unet_folder)
    c = config_lib.default_config()
    c.stage = stage
    set_unet(c, unet)
    apply_if_preset(c, 1 if stage == "t2i" else 2)
    c.model.resolution = resolution
    c.model.low_resolution = low_resolution
    # unused by an image stage, but validated: one temporal down-sampling per level, none for the SSR
    c.model.temporal.num_temporal_downsamples = None if stage == "t2i" else 0
    params: dict[str, Any] = {"denoiser": denoiser}
    if null_embedding is None:
        c.model.null_text = "zero"
    else:
        null_embedding = np.asarray(null_embedding, np.float32)
        if null_embedding.shape != (IF_TEXT_LENGTH, unet.text_dim):
            raise ValueError(f"null_embedding has shape {null_embedding.shape}; expected "
                             f"({IF_TEXT_LENGTH}, {unet.text_dim}) (the text encoder's output for '')")
        c.model.null_text = "learned"
        params["null_text"] = null_embedding
    config_lib.validate(c)
    checkpoint.export(out, params, c.to_dict(), dtype=dtype)
    return c
