"""Run configuration: defaults, validation, and conversion to typed model configs.

Config files (`configs/*.py`, big_vision style) start from `default_config()` and
change what they need; `get_config` locks the result, so a misspelt key — in a
file or as a `--config.a.b=value` override — fails loudly. `validate()` checks the
values and builds the typed model config, which rejects unknown model keys.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os

import ml_collections

from lumiere_jax import axes
from lumiere_jax.diffusion import losses, noising, samplers, schedules
from lumiere_jax.models.diffusion_model import DiffusionModelConfig
from lumiere_jax.models.stunet import STUNetConfig
from lumiere_jax.models.t5 import T5_V1_1_XXL
from lumiere_jax.models.unet import UNetConfig
from lumiere_jax.train import masks as masks_lib

# stage -> (model kind, conditioning). "ssr_image" pre-trains the super-resolution U-Net on frames,
# "ssr" inflates it for video (temporal layers, no temporal down-sampling) and trains on windows.
# "conditional" fine-tunes a video checkpoint into the 7-channel model of Lumiere §4.2 (noisy video,
# masked video, mask): image-to-video, inpainting, outpainting, cinemagraphs.
STAGES = {"t2i": ("image", "none"), "video": ("video", "none"),
          "ssr_image": ("image", "low_res"), "ssr": ("video", "low_res"),
          "conditional": ("video", "masked")}
# The stage whose checkpoint a stage starts from (config.train.init_from): video and ssr inflate an
# image checkpoint; conditional expands a video checkpoint's input convolution (3 -> 7 channels).
INIT_STAGE = {"video": "t2i", "ssr": "ssr_image", "conditional": "video"}
DATASETS = ("moving_shapes", "video_folder")


_OPTIONAL_TYPES = {"cross_attention_dim": int, "time_embed_dim": int, "time_embed_act": str, "text_dim": int,
                   "text_norm": str, "num_temporal_downsamples": int,
                   "text_norm_groups": int}


def _dataclass_section(obj, exclude: tuple[str, ...] = ()) -> ml_collections.ConfigDict:
    section = ml_collections.ConfigDict()
    for f in dataclasses.fields(obj):
        if f.name in exclude:
            continue
        value = getattr(obj, f.name)
        section[f.name] = ml_collections.config_dict.placeholder(_OPTIONAL_TYPES[f.name]) if value is None else value
    return section


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.stage = "video"                     # t2i | video | ssr_image | ssr | conditional

    c.model = ml_collections.ConfigDict()
    # Every architecture field is present (so any can be overridden from the command line);
    # optional ones as typed placeholders.
    c.model.unet = _dataclass_section(UNetConfig(
        base_channels=32, channel_mult=(1, 2, 2), num_res_blocks=1, attention_resolutions=(2, 4),
        head_dim=16, norm_groups=8, text_dim=64), exclude=("remat",))
    # Rematerialisation policy of the denoiser's blocks (lumiere_jax/models/remat.py): none | full |
    # dots_saveable | dots_with_no_batch_dims_saveable | dots_and_convs_saveable | everything_saveable.
    c.model.remat = "none"
    c.model.temporal = _dataclass_section(STUNetConfig(
        num_temporal_downsamples=2, temporal_head_dim=16), exclude=("unet",))
    c.model.text_source = "encoder"       # encoder | t5 | precomputed (embeddings stored with the data)
    c.model.text_encoder = ml_collections.ConfigDict(dict(max_length=32, width=64, depth=2, num_heads=4))
    # A pretrained T5 encoder (text_source="t5", frozen; also what tools/precompute_text.py runs):
    # the architecture (defaults: T5-v1.1-XXL, as DeepFloyd IF), `checkpoint` a transformers
    # T5EncoderModel directory (IF: text_encoder/), `tokenizer` its spiece.model ("" = looked up next to
    # the checkpoint: <checkpoint>/spiece.model or <checkpoint>/../tokenizer/spiece.model). docs/pretrained.md
    c.model.t5 = _dataclass_section(T5_V1_1_XXL)
    c.model.t5.checkpoint = ""
    c.model.t5.tokenizer = ""
    c.model.null_text = "learned"
    c.model.num_frames = 16
    c.model.resolution = 32
    c.model.low_resolution = 0            # super-resolution stages: the input (base model) resolution

    c.diffusion = ml_collections.ConfigDict(dict(
        schedule="squaredcos_cap_v2", prediction_type="v_prediction", snr_weighting="none", snr_gamma=5.0,
        cond_drop_prob=0.1,
        # training timesteps: uniform | logit_normal (t / T = sigmoid(mean + std * n); mean > 0 favours
        # high noise, where a video's layout and motion are decided)
        timestep_sampling="uniform", timestep_logit_mean=0.0, timestep_logit_std=1.0,
        # learned_range: the model's extra C output channels set the DDPM variance (DeepFloyd IF);
        # trained by the improved-DDPM hybrid loss (vlb_weight * L_vlb), used by the ddpm sampler.
        variance_type="fixed_small", vlb_weight=0.001))

    c.data = ml_collections.ConfigDict(dict(
        dataset="moving_shapes", config_name="32px_16f", data_dir="", split="train", global_batch=8,
        num_train=0,          # moving_shapes: train-split size (0 = builder default)
        num_eval=0,           # moving_shapes: test / held_out split sizes (0 = builder default)
        num_frames=0,         # frames per stored clip (0 = model.num_frames); ssr trains on random windows
        style="none",         # frames restyled before batching: none | outline | tinted (data/styles.py)
        num_workers=0, video_folder="", captions="",
        text_embeddings=""))  # model.text_source="precomputed": their directory ("" = data_dir/text_embeddings/...)

    # Super-resolution: training-time degradation and sampling with temporal MultiDiffusion.
    c.ssr = ml_collections.ConfigDict(dict(
        noise_aug_max=250,    # training: low-res input noise-augmented at a uniform timestep in [0, max]
        aug_level=100,        # sampling: the augmentation timestep of the base model's output
        upsample="linear",    # low-res -> output size before concatenation (linear | cubic | nearest)
        patch_size=0,         # > 0: train on random square patches of this size
        window=0,             # sampling: frames per MultiDiffusion window (0 = model.num_frames)
        overlap=2,            # frames shared by consecutive windows (App. C: 2)
        weights="uniform",    # per-frame averaging weights: uniform | triangular
        chunk_size=0,         # windows per batched model call (0 = all at once)
    ))

    # The conditional (masked) model, Lumiere §4.2: training masks drawn per example from this
    # mixture of kinds (lumiere_jax/train/masks.py; weights need not sum to one); at sampling, user
    # masks (white = region to generate) are binarised at mask_threshold.
    c.conditional = ml_collections.ConfigDict(dict(
        mixture=ml_collections.ConfigDict(dict(masks_lib.DEFAULT_MIXTURE)),
        mask_threshold=0.5,
        known_loss_weight=0.0,   # training: squared errors weighted 1 + this where the content is known
    ))

    # --mode=sample of a text -> base -> SSR cascade: exports (or workdirs) of both stages.
    c.cascade = ml_collections.ConfigDict(dict(base="", ssr=""))

    c.optim = ml_collections.ConfigDict(dict(
        lr=3e-4, warmup_steps=100, end_lr_factor=0.1, b1=0.9, b2=0.99, eps=1e-8, weight_decay=0.0,
        grad_clip=1.0,
        # ("regex=multiplier", ...): learning rate x multiplier for the parameters whose "/"-joined path
        # starts with a match (first match wins), e.g. "denoiser/spatial/conv_in/=10" for the
        # conditional model's expanded input convolution; a pattern that matches nothing fails.
        lr_multipliers=()))

    c.train = ml_collections.ConfigDict(dict(
        num_steps=1000, seed=0, log_every=50, checkpoint_every=250, keep_checkpoints=3, sample_every=0,
        init_from="", train_spatial=False,
        grad_accum_steps=1,   # > 1: the global batch is split into this many micro-batches, gradients averaged
        trainable=(),         # regexes over parameter paths ("denoiser/temporal/.*"): what trains; () = stage default
        ema_decay=0.999, async_checkpoints=True, progress=True))

    # Device mesh (lumiere_jax/parallel/mesh.py): per-slice (ICI) and cross-slice (DCN; on GPU
    # clusters: across processes) sizes of the data / fsdp / tensor axes; one size per group may be
    # -1 (= the rest). Default: every device on the data axis. The rules map the logical axis names
    # of lumiere_jax/axes.py to mesh axes.
    c.mesh = ml_collections.ConfigDict(dict(
        ici_data=-1, ici_fsdp=1, ici_tensor=1, dcn_data=-1, dcn_fsdp=1, dcn_tensor=1,
        logical_axis_rules=axes.DEFAULT_RULES))

    c.sample = ml_collections.ConfigDict(dict(
        sampler="ddim", num_steps=25, guidance_scale=3.0, eta=0.0, timestep_spacing="trailing",
        thresholding=True, dynamic_thresholding_ratio=0.995, sample_max_value=1.0,
        # DDIM with a clamped x0: the direction term uses the eps recomputed from the clamped x0.
        # False = diffusers' default, which saturates colours under guidance (docs/sampling.md).
        use_clipped_model_output=True, num_samples=4,
        prompts=("a red square moving right", "a blue circle moving up"), fps=8, seed=0))
    return c


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
    from lumiere_jax.parallel import mesh as mesh_lib
    mesh_lib.check_config(config.mesh)
    from lumiere_jax.data.styles import STYLES
    if config.data.get("style", "none") not in STYLES:
        raise ValueError(f"config.data.style must be one of {STYLES}, got {config.data.get('style')!r}")
    model = model_config(config.to_dict())
    if d.variance_type == "learned_range" and model.stunet.unet.out_channels != 2 * model.sample_channels:
        raise ValueError(f"config.diffusion.variance_type='learned_range' needs model.unet.out_channels = "
                         f"{2 * model.sample_channels} (prediction + variance), got {model.stunet.unet.out_channels}")
    if model.conditioning == "low_res":
        s = config.ssr
        num_timesteps = schedules.get_schedule(d.schedule).num_train_timesteps
        for key in ("noise_aug_max", "aug_level"):
            if not 0 <= s[key] < num_timesteps:
                raise ValueError(f"config.ssr.{key}={s[key]} must be a timestep of the schedule")
        if s.patch_size and (s.patch_size > model.resolution or s.patch_size % model.stunet.unet.spatial_factor):
            raise ValueError(f"config.ssr.patch_size={s.patch_size} must be <= resolution {model.resolution} "
                             f"and a multiple of {model.stunet.unet.spatial_factor}")
        if config.data.num_frames and model.kind == "video" and config.data.num_frames < model.num_frames:
            raise ValueError(f"config.data.num_frames={config.data.num_frames} is shorter than the SSR window "
                             f"model.num_frames={model.num_frames}")
    known_w = config.conditional.get("known_loss_weight", 0.0)
    if known_w < 0 or (known_w and model.conditioning != "masked"):
        raise ValueError(f"config.conditional.known_loss_weight={known_w} must be >= 0, and is only used by the "
                         f"conditional stage (this run's stage is {config.stage!r})")
    from lumiere_jax.train.optim import parse_multipliers
    parse_multipliers(tuple(config.optim.get("lr_multipliers", ())))
    if model.conditioning == "masked":
        masks_lib.check_mixture(config.conditional.mixture.to_dict())
        if not 0.0 < config.conditional.mask_threshold <= 1.0:
            raise ValueError(f"config.conditional.mask_threshold must be in (0, 1], got "
                             f"{config.conditional.mask_threshold}")
    if model.kind == "video":
        from lumiere_jax.models.stunet import check_num_frames
        check_num_frames(model.stunet, model.num_frames)
    from lumiere_jax.models.unet import check_image_size
    check_image_size(model.stunet.unet, model.resolution, model.resolution)
    return model


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


def load_config_file(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of a config file, e.g. ("configs/moving_shapes.py", "video")
    (what `--config=configs/moving_shapes.py:video` loads), for notebooks and tests."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} does not exist")
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()
