"""Checks a run config before anything is built or compiled; each error names the key and what is
allowed."""

from __future__ import annotations

import math

import ml_collections
import numpy as np

from lumiere_jax.config import DATASETS, OUTPAINT_DIRECTIONS, STAGES, TASKS
from lumiere_jax.data.styles import STYLES
from lumiere_jax.diffusion import conditioning, losses, noising, samplers, schedules
from lumiere_jax.models import build
from lumiere_jax.models.diffusion_model import DiffusionModelConfig
from lumiere_jax.models.stunet import check_num_frames
from lumiere_jax.models.unet import check_image_size
from lumiere_jax.parallel import mesh as mesh_lib
from lumiere_jax.train import optim


# Numeric ranges: dotted key -> (lowest, highest, integer?); None = unbounded on that side. Every
# value must be finite. Bounds are inclusive except where noted in `_OPEN`.
RANGES = {
    "train.num_steps": (1, None, True),
    "train.keep_checkpoints": (1, None, True),
    "train.checkpoint_every": (1, None, True),
    "train.log_every": (1, None, True),
    "train.sample_every": (0, None, True),
    "train.seed": (0, 2**31 - 1, True),
    "train.ema_decay": (0.0, 1.0, False),
    "data.global_batch": (1, None, True),
    "data.num_workers": (0, None, True),
    "data.num_train": (0, None, True),
    "data.num_eval": (0, None, True),
    "data.num_frames": (0, None, True),
    "optim.lr": (0.0, None, False),
    "optim.warmup_steps": (0, None, True),
    "optim.end_lr_factor": (0.0, None, False),
    "optim.b1": (0.0, 1.0, False),
    "optim.b2": (0.0, 1.0, False),
    "optim.eps": (0.0, None, False),
    "optim.weight_decay": (0.0, None, False),
    "optim.grad_clip": (0.0, None, False),
    "diffusion.snr_gamma": (0.0, None, False),
    "diffusion.vlb_weight": (0.0, None, False),
    "diffusion.timestep_mixture_weight": (0.0, 1.0, False),
    "model.num_frames": (1, None, True),
    "model.resolution": (1, None, True),
    "sample.num_samples": (1, None, True),
    "sample.fps": (1, None, True),
    "sample.seed": (0, 2**31 - 1, True),
    "ssr.window": (0, None, True),
    "ssr.overlap": (0, None, True),
    "ssr.chunk_size": (0, None, True),
    "task.strength": (0.0, 1.0, False),
    "task.outpaint_amount": (0.0, 1.0, False),
    "eval.num_prompts": (1, None, True),
    "eval.fvd_num_real": (0, None, True),
}
_OPEN = {"train.ema_decay": "<", "optim.lr": ">", "optim.b1": "<", "optim.b2": "<", "optim.eps": ">"}


def check_number(
    name: str,
    v,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ValueError("<name> must be ...") unless `v` is a finite number (an integer if asked) within
    [low, high] (open at an end when low_open / high_open). bool is not a number here."""
    kind = "an integer" if integer else "a number"
    if (
        isinstance(v, bool)
        or not isinstance(v, (int, float, np.integer, np.floating))
        or (integer and not float(v).is_integer())
    ):
        raise ValueError(f"{name} must be {kind}, got {v!r}")
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    low_bad = low is not None and (v <= low if low_open else v < low)
    high_bad = high is not None and (v >= high if high_open else v > high)
    if low_bad or high_bad:
        lo_s = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi_s = "" if high is None else f"{'<' if high_open else '<='} {high}"
        raise ValueError(f"{name} must be {' and '.join(x for x in (lo_s, hi_s) if x)}, got {v!r}")


def check_ranges(config: ml_collections.ConfigDict) -> None:
    """Every key of RANGES that the config has: a finite number of the right kind within its range."""
    for key, (lo, hi, integer) in RANGES.items():
        section, name = key.split(".")
        if section not in config or name not in config[section] or config[section][name] is None:
            continue
        open_ = _OPEN.get(key)
        check_number(
            f"config.{key}",
            config[section][name],
            integer=integer,
            low=lo,
            high=hi,
            low_open=open_ == ">",
            high_open=open_ == "<",
        )


def check_task(config: ml_collections.ConfigDict) -> None:
    """The task section's choices (stored configs of older runs may lack it)."""
    if "task" not in config:
        return
    t = config.task
    if t.name not in ("",) + TASKS:
        raise ValueError(f"config.task.name must be '' (text-to-video) or one of {TASKS}, got {t.name!r}")
    if t.outpaint_direction not in ("",) + OUTPAINT_DIRECTIONS:
        raise ValueError(
            f"config.task.outpaint_direction must be '' or one of {OUTPAINT_DIRECTIONS}, got {t.outpaint_direction!r}"
        )
    if t.outpaint_padding is not None and len(t.outpaint_padding) not in (1, 4):
        raise ValueError(f"config.task.outpaint_padding takes 1 or 4 integers, got {t.outpaint_padding!r}")


def validate(config: ml_collections.ConfigDict) -> DiffusionModelConfig:
    """Check a run config; return the typed model config. Raises ValueError naming
    the offending key."""
    check_ranges(config)
    check_task(config)
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
        raise ValueError(
            f"config.diffusion.variance_type must be one of {losses.VARIANCE_TYPES}, got {d.variance_type!r}"
        )
    if d.timestep_sampling not in losses.TIMESTEP_SAMPLINGS:
        raise ValueError(
            f"config.diffusion.timestep_sampling must be one of {losses.TIMESTEP_SAMPLINGS}, "
            f"got {d.timestep_sampling!r}"
        )
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
        raise ValueError(
            f"config.train.grad_accum_steps={accum} must be >= 1 and divide "
            f"config.data.global_batch={config.data.global_batch}"
        )
    mesh_lib.check_config(config.mesh)
    if config.data.get("style", "none") not in STYLES:
        raise ValueError(f"config.data.style must be one of {STYLES}, got {config.data.get('style')!r}")
    model = build.model_config(config.to_dict())
    if d.variance_type == "learned_range" and model.stunet.unet.out_channels != 2 * model.sample_channels:
        raise ValueError(
            f"config.diffusion.variance_type='learned_range' needs model.unet.out_channels = "
            f"{2 * model.sample_channels} (prediction + variance), got {model.stunet.unet.out_channels}"
        )
    conditioning.get(model.conditioning).validate(config, model)
    optim.parse_multipliers(tuple(config.optim.get("lr_multipliers", ())))
    if model.kind == "video":
        check_num_frames(model.stunet, model.num_frames)
    check_image_size(model.stunet.unet, model.resolution, model.resolution)
    return model
