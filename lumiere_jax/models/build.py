"""Typed model configs from run configs (live or stored as JSON): the one place that turns the
plain-data `config.model` section and the stage into a `DiffusionModelConfig`."""

from __future__ import annotations

from lumiere_jax.config import STAGES
from lumiere_jax.models.diffusion_model import DiffusionModelConfig


def model_config(config_dict: dict) -> DiffusionModelConfig:
    """Typed model config from a stored (JSON) run config."""
    stage = config_dict["stage"]
    if stage not in STAGES:
        raise ValueError(f"config.stage must be one of {tuple(STAGES)}, got {stage!r}")
    kind, conditioning = STAGES[stage]
    model = dict(config_dict["model"])
    if conditioning == "none":
        if model.get("low_resolution"):
            raise ValueError(f"config.model.low_resolution is for the super-resolution stages, not {stage!r}")
        model.pop("low_resolution", None)
    else:
        model["conditioning"] = conditioning
    return DiffusionModelConfig.from_config(model, kind)
