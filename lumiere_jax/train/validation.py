"""Checks a run config before anything is built or compiled; each error names the key and what is
allowed."""
from __future__ import annotations

import ml_collections

from lumiere_jax.config import DATASETS, STAGES
from lumiere_jax.data.styles import STYLES
from lumiere_jax.diffusion import conditioning, losses, noising, samplers, schedules
from lumiere_jax.models import build
from lumiere_jax.models.diffusion_model import DiffusionModelConfig
from lumiere_jax.models.stunet import check_num_frames
from lumiere_jax.models.unet import check_image_size
from lumiere_jax.parallel import mesh as mesh_lib
from lumiere_jax.train import optim


def validate(config: ml_collections.ConfigDict) -> DiffusionModelConfig:
    """Check a run config; return the typed model config. Raises ValueError naming
    the offending key."""
    if config.stage not in STAGES:
        raise ValueError(f"config.stage must be one of {tuple(STAGES)}, got {config.stage!r}")
    if config.data.dataset not in DATASETS:
        raise ValueError(f"config.data.dataset must be one of {DATASETS}, got {config.data.dataset!r}")
    d = config.diffusion
    schedules.get_schedule(d.schedule)
    noising.check_prediction_type(d.prediction_type)
    if (None if d.snr_weighting == "none" else d.snr_weighting) not in losses.SNR_WEIGHTINGS:
        raise ValueError(f"config.diffusion.snr_weighting must be 'none' or 'min_snr', got {d.snr_weighting!r}")
    if d.variance_type not in losses.VARIANCE_TYPES:
        raise ValueError(f"config.diffusion.variance_type must be one of {losses.VARIANCE_TYPES}, "
                         f"got {d.variance_type!r}")
    if d.timestep_sampling not in losses.TIMESTEP_SAMPLINGS:
        raise ValueError(f"config.diffusion.timestep_sampling must be one of {losses.TIMESTEP_SAMPLINGS}, "
                         f"got {d.timestep_sampling!r}")
    if not d.timestep_logit_std > 0:
        raise ValueError(f"config.diffusion.timestep_logit_std must be > 0, got {d.timestep_logit_std}")
    if not 0.0 <= d.cond_drop_prob < 1.0:
        raise ValueError(f"config.diffusion.cond_drop_prob must be in [0, 1), got {d.cond_drop_prob}")
    if config.sample.sampler not in samplers.SAMPLERS:
        raise ValueError(f"config.sample.sampler must be one of {samplers.SAMPLERS}, got {config.sample.sampler!r}")
    if config.data.global_batch <= 0:
        raise ValueError(f"config.data.global_batch must be positive, got {config.data.global_batch}")
    accum = config.train.get("grad_accum_steps", 1)
    if accum < 1 or config.data.global_batch % accum:
        raise ValueError(f"config.train.grad_accum_steps={accum} must be >= 1 and divide "
                         f"config.data.global_batch={config.data.global_batch}")
    mesh_lib.check_config(config.mesh)
    if config.data.get("style", "none") not in STYLES:
        raise ValueError(f"config.data.style must be one of {STYLES}, got {config.data.get('style')!r}")
    model = build.model_config(config.to_dict())
    if d.variance_type == "learned_range" and model.stunet.unet.out_channels != 2 * model.sample_channels:
        raise ValueError(f"config.diffusion.variance_type='learned_range' needs model.unet.out_channels = "
                         f"{2 * model.sample_channels} (prediction + variance), got {model.stunet.unet.out_channels}")
    conditioning.get(model.conditioning).validate(config, model)
    optim.parse_multipliers(tuple(config.optim.get("lr_multipliers", ())))
    if model.kind == "video":
        check_num_frames(model.stunet, model.num_frames)
    check_image_size(model.stunet.unet, model.resolution, model.resolution)
    return model
