"""Pretrained starting points: a diffusers DeepFloyd-IF U-Net folder -> a project export.

:func:`import_diffusers_unet` reads ``<IF folder>/unet`` (config.json + safetensors, see
`models/convert_diffusers.py`) and writes a project export (``params/`` + ``config.json``, as
`train/checkpoint.export` writes) of stage ``t2i`` (IF-I) or ``ssr_image`` (IF-II), with IF's
diffusion and sampling settings (`presets.apply_if_preset`: plain data shared with
configs/if_stage*.py). Such an export is what ``config.train.init_from`` of a ``video`` / ``ssr``
run inflates (configs/if_stage1.py, if_stage2.py).

Text: the export takes precomputed T5 embeddings (``model.text_source="precomputed"``, 77 tokens,
width 4096); the null ("") embedding for classifier-free guidance is either given (IF encodes the
empty prompt with T5) or zero.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections
import numpy as np

from lumiere_jax import config as config_lib, presets
from lumiere_jax.models import convert_diffusers
from lumiere_jax.models.unet import UNetConfig
from lumiere_jax.train import checkpoint, validation


def set_unet(c: ml_collections.ConfigDict, unet: UNetConfig) -> None:
    """Writes every field of `unet` into ``c.model.unet``."""
    presets.set_unet(c, dataclasses.asdict(unet))


def import_diffusers_unet(
    unet_folder: str,
    out: str,
    *,
    stage: str = "t2i",
    resolution: int = 64,
    low_resolution: int = 0,
    null_embedding: np.ndarray | None = None,
    dtype: str = "float32",
) -> ml_collections.ConfigDict:
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
    presets.apply_if_preset(c, 1 if stage == "t2i" else 2)
    c.model.resolution = resolution
    c.model.low_resolution = low_resolution
    # unused by an image stage, but validated: one temporal down-sampling per level, none for the SSR
    c.model.temporal.num_temporal_downsamples = None if stage == "t2i" else 0
    params: dict[str, Any] = {"denoiser": denoiser}
    if null_embedding is None:
        c.model.null_text = "zero"
    else:
        null_embedding = np.asarray(null_embedding, np.float32)
        if null_embedding.shape != (presets.IF_TEXT_LENGTH, unet.text_dim):
            raise ValueError(
                f"null_embedding has shape {null_embedding.shape}; expected "
                f"({presets.IF_TEXT_LENGTH}, {unet.text_dim}) (the text encoder's output for '')"
            )
        c.model.null_text = "learned"
        params["null_text"] = null_embedding
    validation.validate(c)
    checkpoint.export(out, params, c.to_dict(), dtype=dtype)
    return c
