"""`config.data` -> a random-access source and the input pipeline for a stage."""

from __future__ import annotations

import ml_collections

from lumiere_jax.data import input_pipeline, text_embeddings
from lumiere_jax.data.paths import data_dir
from lumiere_jax.data.views import ImageView
from lumiere_jax.models.diffusion_model import DiffusionModelConfig
from lumiere_jax.models.tokenizer import make_tokenizer


def clip_frames(config: ml_collections.ConfigDict, model_cfg: DiffusionModelConfig) -> int:
    """Frames per stored clip: config.data.num_frames, or the model's when 0."""
    return int(config.data.get("num_frames", 0)) or model_cfg.num_frames  # older stored configs lack it


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

        source = video_folder.load_source(
            data_dir(config),
            d.video_folder,
            d.captions,
            split=split,
            resolution=model_cfg.resolution,
            num_frames=clip_frames(config, model_cfg),
            rebuild=bool(d.get("rebuild", False)),
        )
    else:
        raise ValueError(f"unknown dataset {d.dataset!r}")
    style = d.get("style", "none")  # config.data.style; older stored configs lack it
    if style != "none":  # before ImageView, so video and T2I image batches both get it
        from lumiere_jax.data import styles

        source = styles.StyledSource(source, style)
    first = source[0]["video"]
    want = (clip_frames(config, model_cfg), model_cfg.resolution, model_cfg.resolution, 3)
    if first.shape != want:
        raise ValueError(
            f"dataset {d.dataset}/{d.config_name} has videos of shape {first.shape}, the model "
            f"expects {want} (config.data.num_frames or model.num_frames / model.resolution)"
        )
    return source


def make_pipeline(
    config: ml_collections.ConfigDict, model_cfg: DiffusionModelConfig, split: str | None = None, shuffle: bool = True
) -> input_pipeline.Pipeline:
    source = make_source(config, model_cfg, split)
    kind = "video"
    if model_cfg.kind == "image":
        source, kind = ImageView(source), "image"
    tokenizer, extra = make_tokenizer(model_cfg, config.model), ()
    if model_cfg.text_encoder is None:  # model.text_source = "precomputed"
        source, tokenizer, extra = (
            with_text_embeddings(config, model_cfg, source, split),
            None,
            ("text_emb", "text_mask"),
        )
    return input_pipeline.Pipeline(
        source,
        global_batch_size=int(config.data.global_batch),
        seed=int(config.train.seed),
        tokenizer=tokenizer,
        kind=kind,
        shuffle=shuffle,
        num_workers=int(config.data.num_workers),
        extra_keys=extra,
    )


def with_text_embeddings(
    config: ml_collections.ConfigDict, model_cfg: DiffusionModelConfig, source, split: str | None = None
):
    """`source` whose records carry the precomputed embeddings of their captions
    (`data.text_embeddings`), checked against the model's text length and width."""
    if split and split != config.data.split:
        config = config.copy_and_resolve_references()
        with config.unlocked():
            config.data.split = split
    table = text_embeddings.TextEmbeddings.load(text_embeddings.default_path(config))
    want = (model_cfg.text_length, model_cfg.stunet.unet.text_dim)
    if (table.length, table.dim) != want:
        raise ValueError(
            f"precomputed text embeddings {table.path} are [{table.length}, {table.dim}] per caption; "
            f"the model takes [{want[0]}, {want[1]}] (model.text_encoder.max_length, unet.text_dim)"
        )
    return text_embeddings.WithTextEmbeddings(source, table)
