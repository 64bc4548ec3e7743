"""`config.data` -> a random-access source and the input pipeline for a stage."""
from __future__ import annotations

import os

import ml_collections

from lumiere_jax.data import pipeline as pipeline_lib
from lumiere_jax.data.views import ImageView
from lumiere_jax.models.diffusion_model import DiffusionModelConfig
from lumiere_jax.models.tokenizer import ByteTokenizer


def data_dir(config: ml_collections.ConfigDict) -> str:
    return os.path.expanduser(config.data.data_dir or os.environ.get("LUMIERE_DATA_DIR", "~/lumiere_data"))


def clip_frames(config: ml_collections.ConfigDict, model_cfg: DiffusionModelConfig) -> int:
    """Frames per stored clip: config.data.num_frames, or the model's when 0."""
    return int(config.data.get("num_frames", 0)) or model_cfg.num_frames   # older stored configs lack it


def make_source(config: ml_collections.ConfigDict, model_cfg: DiffusionModelConfig, split: str | None = None):
    """Video records {'video': uint8 [T,H,W,3], 'caption': str, ...} of the configured split."""
    d = config.data
    split = split or d.split
    if d.dataset == "moving_shapes":
        from lumiere_jax.data import moving_shapes
        overrides = {"size": model_cfg.resolution, "num_frames": clip_frames(config, model_cfg)}
        if d.num_train:
            overrides["num_train"] = int(d.num_train)
        if d.num_eval:
            overrides["num_test"] = overrides["num_held_out"] = int(d.num_eval)
        source = moving_shapes.load_source(data_dir(config), d.config_name, split, **overrides)
    elif d.dataset == "video_folder":
        from lumiere_jax.data import video_folder
        source = video_folder.load_source(data_dir(config), d.video_folder, d.captions, split=split,
                                          resolution=model_cfg.resolution, num_frames=clip_frames(config, model_cfg))
    else:
        raise ValueError(f"unknown dataset {d.dataset!r}")
    style = d.get("style", "none")   # config.data.style; older stored configs lack it
    if style != "none":              # before ImageView, so video and T2I image batches both get it
        from lumiere_jax.data import styles
        source = styles.StyledSource(source, style)
    first = source[0]["video"]
    want = (clip_frames(config, model_cfg), model_cfg.resolution, model_cfg.resolution, 3)
    if first.shape != want:
        raise ValueError(f"dataset {d.dataset}/{d.config_name} has videos of shape {first.shape}, the model "
                         f"expects {want} (config.data.num_frames or model.num_frames / model.resolution)")
    return source


def make_pipeline(config: ml_collections.ConfigDict, model_cfg: DiffusionModelConfig,
                  split: str | None = None, shuffle: bool = True) -> pipeline_lib.Pipeline:
    source = make_source(config, model_cfg, split)
    kind = "video"
    if model_cfg.kind == "image":
        source, kind = ImageView(source), "image"
    return pipeline_lib.Pipeline(
        source, global_batch_size=int(config.data.global_batch), seed=int(config.train.seed),
        tokenizer=ByteTokenizer(model_cfg.text_length), kind=kind, shuffle=shuffle,
        num_workers=int(config.data.num_workers))
