"""Run configuration as plain data: the library defaults and the stage table.

Config files (`configs/*.py`, big_vision style) start from `default_config()` and
change what they need; `get_config` locks the result, so a misspelt key — in a
file or as a `--config.a.b=value` override — fails loudly. This module imports
ml_collections and the axis names only (no jax): `train.validation.validate()` checks
the values, and `models.build.model_config()` builds the typed model config, which
rejects unknown model keys.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import ml_collections

from lumiere_jax import axes

# stage -> (model kind, conditioning). "ssr_image" pre-trains the super-resolution U-Net on frames,
# "ssr" inflates it for video (temporal layers, no temporal down-sampling) and trains on windows.
# "conditional" fine-tunes a video checkpoint into the 7-channel model of Lumiere §4.2 (noisy video,
# masked video, mask): image-to-video, inpainting, outpainting, cinemagraphs.
STAGES = {
    "t2i": ("image", "none"),
    "video": ("video", "none"),
    "ssr_image": ("image", "low_res"),
    "ssr": ("video", "low_res"),
    "conditional": ("video", "masked"),
}
# The stage whose checkpoint a stage starts from (config.train.init_from): video and ssr inflate an
# image checkpoint; conditional expands a video checkpoint's input convolution (3 -> 7 channels).
INIT_STAGE = {"video": "t2i", "ssr": "ssr_image", "conditional": "video"}
DATASETS = ("moving_shapes", "video_folder")
T5_PATH_KEYS = ("checkpoint", "tokenizer")  # config.model.t5 keys that locate files, not architecture
# Training-mask kinds of the conditional model: the tasks' own masks, free-form brush strokes, and none
# (unconditional); the order is the index of a drawn kind (diffusion/masks.py).
MASK_KINDS = ("i2v", "inpaint", "strokes", "outpaint", "cinemagraph", "none")
# The conditional (7-channel) model's applications, Lumiere §4.2: `--task` (with "sdedit", which the
# base model does), the conditional evaluation and the training masks all read this one list.
CONDITIONAL_TASKS = tuple(k for k in MASK_KINDS if k not in ("strokes", "none"))
# What `config.task.name` (`--task`) may be: a conditional task, or SDEdit (video-to-video with the base model).
TASKS = CONDITIONAL_TASKS + ("sdedit",)
OUTPAINT_DIRECTIONS = ("left", "right", "up", "down")
# The conditional model's training masks: kind -> weight (diffusion/masks.py draws them).
DEFAULT_MASK_MIXTURE = {"i2v": 0.3, "inpaint": 0.1, "strokes": 0.1, "outpaint": 0.2, "cinemagraph": 0.1, "none": 0.2}


def _typed(kind: type):
    """An optional value (None), typed so that a command-line override is parsed."""
    return ml_collections.config_dict.placeholder(kind)


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.stage = "video"  # t2i | video | ssr_image | ssr | conditional

    c.model = ml_collections.ConfigDict()
    # Every architecture field is present (so any can be overridden from the command line); optional
    # ones as typed placeholders. The values are the model classes' own defaults (models.unet.UNetConfig,
    # models.stunet.STUNetConfig, models.t5.T5_V1_1_XXL; tests/models/test_build.py checks it), not any
    # run's: a config file states its model (configs/moving_shapes.py the CPU quickstart's).
    c.model.unet = ml_collections.ConfigDict(
        dict(
            in_channels=3,
            out_channels=3,
            base_channels=64,
            channel_mult=(1, 2, 4),
            num_res_blocks=2,
            layers_per_level=(),
            attention_resolutions=(4,),
            mid_attention=True,
            head_dim=32,
            norm_groups=32,
            norm_eps=1e-5,
            text_dim=64,
            cross_attention_dim=_typed(int),
            only_cross_attention=False,
            use_text_mask=True,
            text_norm="group_norm",
            text_norm_groups=_typed(int),
            text_pooling="mean",
            text_pool_heads=4,
            text_pool_use_mask=True,
            time_embed_dim=_typed(int),
            time_embed_act=_typed(str),
            time_scale_shift=True,
            flip_sin_to_cos=True,
            freq_shift=0.0,
            skip_time_act=False,
            act="silu",
            resample="conv",
            resnet_output_scale=1.0,
            mid_block_scale=1.0,
            dropout=0.0,
            aug_embedding=False,
            attention_impl="xla",
            attention_min_length=128,
            dtype="float32",
            param_dtype="float32",
        )
    )
    # Rematerialisation policy of the denoiser's blocks (lumiere_jax/models/remat.py): none | full |
    # dots_saveable | dots_with_no_batch_dims_saveable | dots_and_convs_saveable | everything_saveable.
    c.model.remat = "none"
    c.model.temporal = ml_collections.ConfigDict(
        dict(
            num_temporal_downsamples=_typed(int),  # None: after every spatial down-sampling
            temporal_kernel_size=3,
            temporal_attention_depth=1,
            temporal_head_dim=32,
            temporal_mlp_ratio=4,
            temporal_position_encoding="sinusoidal",
            temporal_max_frames=128,
            temporal_text="none",
            temporal_text_features=0,
            temporal_text_query_positions="none",
            temporal_text_film=False,
            temporal_time_film=False,
        )
    )
    c.model.text_source = "encoder"  # encoder | t5 | precomputed (embeddings stored with the data)
    c.model.text_encoder = ml_collections.ConfigDict(dict(max_length=32, width=64, depth=2, num_heads=4))
    # A pretrained T5 encoder (text_source="t5", frozen; also what tools/precompute_text.py runs):
    # the architecture (defaults: T5-v1.1-XXL, as DeepFloyd IF), `checkpoint` a transformers
    # T5EncoderModel directory (IF: text_encoder/), `tokenizer` its spiece.model ("" = looked up next to
    # the checkpoint: <checkpoint>/spiece.model or <checkpoint>/../tokenizer/spiece.model). docs/pretrained.md
    c.model.t5 = ml_collections.ConfigDict(
        dict(
            vocab_size=32128,
            d_model=4096,
            d_kv=64,
            d_ff=10240,
            num_layers=24,
            num_heads=64,
            relative_attention_num_buckets=32,
            relative_attention_max_distance=128,
            layer_norm_epsilon=1e-6,
            feed_forward_proj="gated-gelu",
            dense_act_fn="gelu_new",
            max_length=77,
            dtype="float32",
            param_dtype="float32",
        )
    )
    c.model.t5.checkpoint = ""
    c.model.t5.tokenizer = ""
    c.model.null_text = "learned"
    c.model.num_frames = 16
    c.model.resolution = 32
    c.model.low_resolution = 0  # super-resolution stages: the input (base model) resolution

    c.diffusion = ml_collections.ConfigDict(
        dict(
            schedule="squaredcos_cap_v2",
            prediction_type="v_prediction",
            snr_weighting="none",
            snr_gamma=5.0,
            cond_drop_prob=0.1,
            # training timesteps: uniform | logit_normal (t / T = sigmoid(mean + std * n); mean > 0 favours
            # high noise, where a video's layout and motion are decided)
            # | logit_normal_mixture (each example's mean is timestep_logit_mean2 with probability
            # timestep_mixture_weight, else timestep_logit_mean)
            timestep_sampling="uniform",
            timestep_logit_mean=0.0,
            timestep_logit_std=1.0,
            timestep_logit_mean2=0.0,
            timestep_mixture_weight=0.0,
            # learned_range: the model's extra C output channels set the DDPM variance (DeepFloyd IF);
            # trained by the improved-DDPM hybrid loss (vlb_weight * L_vlb), used by the ddpm sampler.
            variance_type="fixed_small",
            vlb_weight=0.001,
        )
    )

    c.data = ml_collections.ConfigDict(
        dict(
            dataset="moving_shapes",
            config_name="32px_16f",
            data_dir="",
            split="train",
            global_batch=8,
            num_train=0,  # moving_shapes: train-split size (0 = builder default)
            num_eval=0,  # moving_shapes: test / held_out split sizes (0 = builder default)
            num_frames=0,  # frames per stored clip (0 = model.num_frames); ssr trains on random windows
            style="none",  # frames restyled before batching: none | outline | tinted (data/styles.py)
            num_workers=0,
            video_folder="",
            captions="",
            rebuild=False,  # video_folder: rebuild the dataset (needed after editing the folder)
            text_embeddings="",
        )
    )  # model.text_source="precomputed": their directory ("" = data_dir/text_embeddings/...)

    # Super-resolution: training-time degradation and sampling with temporal MultiDiffusion.
    c.ssr = ml_collections.ConfigDict(
        dict(
            noise_aug_max=250,  # training: low-res input noise-augmented at a uniform timestep in [0, max]
            aug_level=100,  # sampling: the augmentation timestep of the base model's output
            upsample="linear",  # low-res -> output size before concatenation (linear | cubic | nearest)
            patch_size=0,  # > 0: train on random square patches of this size
            window=0,  # sampling: frames per MultiDiffusion window (0 = model.num_frames)
            overlap=2,  # frames shared by consecutive windows (App. C: 2)
            weights="uniform",  # per-frame averaging weights: uniform | triangular
            chunk_size=0,  # windows per batched model call (0 = all at once)
            multidiffusion=True,  # False: non-overlapping windows denoised independently (Fig. 14 baseline)
        )
    )

    # What `--mode=sample|eval` does besides text-to-video (main.py's --task, --strength, ... flags
    # override these; configs/moving_shapes.py:i2v and :sdedit are presets).
    c.task = ml_collections.ConfigDict(
        dict(
            name="",  # "" = text-to-video (an SSR model: up-sampling); else one of TASKS
            strength=0.6,  # sdedit: noise level the input video is taken to (0 = unchanged, 1 = pure noise)
            outpaint_padding=_typed(tuple),  # outpaint: border pixels to generate, (N,) or (top, bottom, left, right)
            outpaint_direction="",  # outpaint: or the side to extend (OUTPAINT_DIRECTIONS) ...
            outpaint_amount=0.25,  # ... by this fraction of the frame
            resize_inputs=True,  # resize (and centre-crop) task inputs to the model's size; False rejects them
            paste_known=False,  # conditional tasks: copy the known pixels into the output
            style_checkpoint="",  # stylized generation: a style-fine-tuned T2I checkpoint (Lumiere §4.1) ...
            style_alpha=0.5,  # ... interpolated as alpha * W_style + (1 - alpha) * W_orig (docs/conditional.md)
        )
    )

    c.eval = ml_collections.ConfigDict(
        dict(
            splits="held_out",  # comma-separated splits whose captions --mode=eval prompts with
            num_prompts=32,  # (distinct-seed) samples per split
            # a conditional model's tasks scored on real clips, comma-separated ("" = all of
            # eval/conditional.py's: i2v, i2v_pil, cinemagraph, inpaint, outpaint, sdedit)
            tasks="",
            # FVD against the split's first fvd_num_real real clips (eval/fvd.py; 0 = no FVD); the
            # statistics of real clips are cached under <data_dir>/fvd_stats
            fvd_num_real=256,
        )
    )

    # The conditional (masked) model, Lumiere §4.2: training masks drawn per example from this
    # mixture of kinds (lumiere_jax/diffusion/masks.py; weights need not sum to one); at sampling, user
    # masks (white = region to generate) are binarised at mask_threshold.
    c.conditional = ml_collections.ConfigDict(
        dict(
            mixture=ml_collections.ConfigDict(dict(DEFAULT_MASK_MIXTURE)),
            mask_threshold=0.5,
            known_loss_weight=0.0,  # training: squared errors weighted 1 + this where the content is known
        )
    )

    # --mode=sample of a text -> base -> SSR cascade: exports (or workdirs) of both stages.
    c.cascade = ml_collections.ConfigDict(dict(base="", ssr=""))

    c.optim = ml_collections.ConfigDict(
        dict(
            lr=3e-4,
            warmup_steps=100,
            end_lr_factor=0.1,
            b1=0.9,
            b2=0.99,
            eps=1e-8,
            weight_decay=0.0,
            grad_clip=1.0,
            # ("regex=multiplier", ...): learning rate x multiplier for the parameters whose "/"-joined path
            # starts with a match (first match wins), e.g. "denoiser/spatial/conv_in/=10" for the
            # conditional model's expanded input convolution; a pattern that matches nothing fails.
            lr_multipliers=(),
        )
    )

    c.train = ml_collections.ConfigDict(
        dict(
            num_steps=1000,
            seed=0,
            log_every=50,
            checkpoint_every=250,
            keep_checkpoints=3,
            sample_every=0,
            init_from="",
            train_spatial=False,
            grad_accum_steps=1,  # > 1: the global batch is split into this many micro-batches, gradients averaged
            trainable=(),  # regexes over parameter paths ("denoiser/temporal/.*"): what trains; () = stage default
            ema_decay=0.999,
            async_checkpoints=True,
            progress=True,
        )
    )

    # Device mesh (lumiere_jax/parallel/mesh.py): per-slice (ICI) and cross-slice (DCN; on GPU
    # clusters: across processes) sizes of the data / fsdp / tensor axes; one size per group may be
    # -1 (= the rest). Default: every device on the data axis. The rules map the logical axis names
    # of lumiere_jax/axes.py to mesh axes.
    c.mesh = ml_collections.ConfigDict(
        dict(
            ici_data=-1,
            ici_fsdp=1,
            ici_tensor=1,
            dcn_data=-1,
            dcn_fsdp=1,
            dcn_tensor=1,
            logical_axis_rules=axes.DEFAULT_RULES,
        )
    )

    c.sample = ml_collections.ConfigDict(
        dict(
            sampler="ddim",
            num_steps=25,
            guidance_scale=3.0,
            # A guidance interval: this scale instead of guidance_scale at timesteps t >= high_noise_from * T,
            # where a trajectory is decided (None = guidance_scale everywhere; docs/conditional.md).
            high_noise_guidance_scale=_typed(float),
            high_noise_from=0.8,
            eta=0.0,
            timestep_spacing="trailing",
            thresholding=True,
            dynamic_thresholding_ratio=0.995,
            sample_max_value=1.0,
            # DDIM with a clamped x0: the direction term uses the eps recomputed from the clamped x0.
            # False = diffusers' default, which saturates colours under guidance (docs/sampling.md).
            use_clipped_model_output=True,
            # Conditional tasks: replace the known pixels by the known content noised to each step's
            # timestep (the replacement method; the last step is the model's own). On the reference
            # conditional model it lifts i2v first-frame PSNR from the model's own ~17 dB to 41 dB
            # (docs/conditional.md); False shows what the model keeps by itself.
            known_replacement=True,
            num_samples=4,
            prompts=("a red square moving right", "a blue circle moving up"),
            fps=8,
            seed=0,
        )
    )
    return c


def value(config, section: str, key: str):
    """`config[section][key]` (a ConfigDict or a stored run config's dict), or its library default
    when the config predates that key: the one fallback for older stored configs."""
    if section in config and key in config[section]:
        return config[section][key]
    return default_config()[section][key]


def load_config_file(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of a config file, e.g. ("configs/moving_shapes.py", "video")
    (what `--config=configs/moving_shapes.py:video` loads), for notebooks and tests. A file inside a
    package (`configs/` is one) is imported as that package's module, so its own imports
    (`from configs import base`) work from any working directory."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} does not exist")
    path = os.path.abspath(path)
    parts, root = [os.path.basename(path)[:-3]], os.path.dirname(path)
    while os.path.isfile(os.path.join(root, "__init__.py")):
        parts.insert(0, os.path.basename(root))
        root = os.path.dirname(root)
    if len(parts) > 1:
        if root not in sys.path:
            sys.path.insert(0, root)
        module = importlib.import_module(".".join(parts))
    else:
        spec = importlib.util.spec_from_file_location(parts[0], path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()
