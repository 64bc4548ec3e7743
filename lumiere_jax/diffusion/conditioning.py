"""What a model sees besides the noisy sample and the text: one object per kind of conditioning,
registered by name (`get(model_config.conditioning)`), each declaring its extra input channels,
checking its config section, and building its training inputs and its sampling inputs.

  ``none``     the base T2I / STUNet: nothing extra.
  ``low_res``  spatial super-resolution (Lumiere §3.2): the low-resolution input, up-sampled to the
               output size and noise-augmented (3 channels; the augmentation level is an extra
               embedding). In training it is the batch's own degraded copy (`ssr_inputs`).
  ``masked``   the conditional model of Lumiere §4.2: ⟨C, M⟩ after the noisy video J, the masked
               video C = x0 · M (3 channels) and the mask M (1 channel, ones = known), 7 channels
               in all. In training M is drawn from a mixture of mask kinds (`masks.py`).
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp

from lumiere_jax.diffusion import low_res, masks
from lumiere_jax.diffusion.schedules import Schedule, get_schedule


class TrainingInputs(NamedTuple):
    x0: jax.Array  # the training target (an SSR crops a window / patch of the batch)
    extra: dict[str, jax.Array]  # keyword arguments of `DiffusionModel.denoise` (cond, aug_level)
    loss_weights: jax.Array | None  # per-element weights of the squared error, or None


class Conditioning:
    """Base class: the unconditioned model (``none``)."""

    name = "none"
    channels = 0

    def validate(self, config: Any, model_config: Any) -> None:
        """Check the run config's section of this conditioning (raise ValueError naming the key)."""
        if config.conditional.get("known_loss_weight", 0.0):
            raise ValueError(
                f"config.conditional.known_loss_weight={config.conditional.known_loss_weight} is only "
                f"used by the conditional stage (this run's stage is {config.stage!r})"
            )

    def training_inputs(
        self,
        model_config: Any,
        sched: Schedule,
        x0: jax.Array,
        key: jax.Array,
        *,
        ssr: Mapping[str, Any] | None = None,
        mixture: Mapping[str, float] | None = None,
        known_loss_weight: float = 0.0,
    ) -> TrainingInputs:
        """The model's inputs for a clean training batch `x0`."""
        if known_loss_weight:
            raise ValueError("known_loss_weight is for the conditional (masked) model")
        return TrainingInputs(x0, {}, None)

    def unconditional(self, shape: tuple[int, ...]) -> jax.Array | None:
        """The extra channels when nothing is given (text-to-video, SDEdit) for samples of `shape`
        [B, ..., C]: None when the model takes none."""
        return None


class LowResolution(Conditioning):
    name = "low_res"
    channels = 3

    def validate(self, config, model_config):
        super().validate(config, model_config)
        s = config.ssr
        num_timesteps = get_schedule(config.diffusion.schedule).num_train_timesteps
        for key in ("noise_aug_max", "aug_level"):
            if not 0 <= s[key] < num_timesteps:
                raise ValueError(f"config.ssr.{key}={s[key]} must be a timestep of the schedule")
        factor = model_config.stunet.unet.spatial_factor
        if s.patch_size and (s.patch_size > model_config.resolution or s.patch_size % factor):
            raise ValueError(
                f"config.ssr.patch_size={s.patch_size} must be <= resolution {model_config.resolution} "
                f"and a multiple of {factor}"
            )
        frames = config.data.num_frames
        if frames and model_config.kind == "video" and frames < model_config.num_frames:
            raise ValueError(
                f"config.data.num_frames={frames} is shorter than the SSR window "
                f"model.num_frames={model_config.num_frames}"
            )

    def training_inputs(self, model_config, sched, x0, key, *, ssr=None, mixture=None, known_loss_weight=0.0):
        if known_loss_weight:
            raise ValueError("known_loss_weight is for the conditional (masked) model")
        if ssr is None:
            raise ValueError("a super-resolution model's loss needs the ssr settings (config.ssr)")
        x0, cond, aug = ssr_inputs(model_config, sched, ssr, x0, key)
        return TrainingInputs(x0, {"cond": cond, "aug_level": aug}, None)

    def unconditional(self, shape):
        raise ValueError("a super-resolution model needs its low-resolution input: use Generator.upsample")

    @staticmethod
    def sampling_inputs(
        sched: Schedule, low: jax.Array, resolution: int, aug_level: jax.Array, key: jax.Array, upsample: str
    ) -> jax.Array:
        """The up-sampled, noise-augmented low-resolution input (`low_res.condition`)."""
        return low_res.condition(sched, low, resolution, aug_level, key, upsample)


class Masked(Conditioning):
    name = "masked"
    channels = 4

    def validate(self, config, model_config):
        known_w = config.conditional.get("known_loss_weight", 0.0)
        if known_w < 0:
            raise ValueError(f"config.conditional.known_loss_weight={known_w} must be >= 0")
        masks.check_mixture(config.conditional.mixture.to_dict())
        if not 0.0 < config.conditional.mask_threshold <= 1.0:
            raise ValueError(
                f"config.conditional.mask_threshold must be in (0, 1], got {config.conditional.mask_threshold}"
            )

    def training_inputs(self, model_config, sched, x0, key, *, ssr=None, mixture=None, known_loss_weight=0.0):
        cond = masked_inputs(x0, key, mixture or masks.DEFAULT_MIXTURE)
        weights = 1.0 + known_loss_weight * cond[..., 3:] if known_loss_weight else None
        return TrainingInputs(x0, {"cond": cond}, weights)

    def unconditional(self, shape):
        return jnp.zeros((*shape[:-1], self.channels), jnp.float32)  # nothing known

    @staticmethod
    def sampling_inputs(known: jax.Array, mask: jax.Array) -> jax.Array:
        """⟨C, M⟩ of given content `known` [..., 3] in [-1, 1] and `mask` [..., 1] (True = known)."""
        return masked_conditioning(known, mask)


CONDITIONINGS: dict[str, Conditioning] = {c.name: c for c in (Conditioning(), LowResolution(), Masked())}


def get(name: str) -> Conditioning:
    if name not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {sorted(CONDITIONINGS)}, got {name!r}")
    return CONDITIONINGS[name]


def _random_crop(key: jax.Array, xs: tuple[jax.Array, ...], axes: tuple[int, ...], sizes: tuple[int, ...]):
    """The same random crop (per example) of every array in `xs` along `axes` (batch is axis 0)."""
    batch = xs[0].shape[0]
    starts = [
        jax.random.randint(k, (batch,), 0, xs[0].shape[a] - s + 1)
        for k, a, s in zip(jax.random.split(key, len(axes)), axes, sizes)
    ]

    def crop(x, *st):
        idx = [0] * x.ndim
        shape = list(x.shape)
        for a, s, st_a in zip(axes, sizes, st):
            idx[a - 1], shape[a - 1] = st_a, s
        return jax.lax.dynamic_slice(x, idx, shape)

    return tuple(jax.vmap(crop)(x, *starts) for x in xs)


def ssr_inputs(
    model_cfg: Any, sched: Schedule, ssr: Mapping[str, Any], x0: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(x0 [B, (T,) H, W, 3] high-resolution) -> (target x0, conditioning, aug_level [B])."""
    k_win, k_lvl, k_aug, k_patch = jax.random.split(key, 4)
    size = model_cfg.resolution
    if x0.shape[-2] != size:
        raise ValueError(f"SSR training data has {x0.shape[-2]}px frames, the model's resolution is {size}")
    if model_cfg.kind == "video" and x0.shape[1] != model_cfg.num_frames:
        if x0.shape[1] < model_cfg.num_frames:
            raise ValueError(
                f"clips of {x0.shape[1]} frames are shorter than the SSR window model.num_frames={model_cfg.num_frames}"
            )
        (x0,) = _random_crop(k_win, (x0,), (1,), (model_cfg.num_frames,))
    levels = low_res.random_levels(k_lvl, x0.shape[0], int(ssr["noise_aug_max"]))
    small = low_res.downsample(x0, model_cfg.low_resolution)
    cond = low_res.condition(sched, small, size, levels, k_aug, ssr["upsample"])
    patch = int(ssr["patch_size"])
    if patch:
        if patch > size:
            raise ValueError(f"ssr.patch_size={patch} exceeds the resolution {size}")
        h_axis = x0.ndim - 3
        x0, cond = _random_crop(k_patch, (x0, cond), (h_axis, h_axis + 1), (patch, patch))
    return x0, cond.astype(jnp.float32), levels


def masked_conditioning(known: jax.Array, mask: jax.Array) -> jax.Array:
    """<C, M> [..., 4]: C = known * M (unknown pixels zero, i.e. mid-grey in [-1, 1]), M in {0, 1}."""
    mask = mask.astype(jnp.float32)
    return jnp.concatenate([known.astype(jnp.float32) * mask, mask], axis=-1)


def masked_inputs(x0: jax.Array, key: jax.Array, mixture: Mapping[str, float]) -> jax.Array:
    """x0 [B, T, H, W, 3] -> <x0 * M, M> [B, T, H, W, 4], one mask kind per example from `mixture`."""
    b, t, h, w, _ = x0.shape
    m, _ = masks.sample_masks(key, b, t, h, w, mixture)
    return masked_conditioning(x0, m)
