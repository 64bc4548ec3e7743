"""Encode a dataset split's captions with its pretrained T5 once, for training on stored embeddings
(`model.text_source="precomputed"`; tools/precompute_text.py is the command)."""

from __future__ import annotations

from lumiere_jax.data import sources, text_embeddings
from lumiere_jax.data.views import as_str
from lumiere_jax.models import build


def precompute(
    config, split: str | None = None, output: str | None = None, batch_size: int = 16, progress: bool = True
) -> str:
    """Encode every caption of `config`'s dataset split with its T5 (`config.model.t5`) and store the
    embeddings; returns the directory."""
    if split:
        config = config.copy_and_resolve_references()
        with config.unlocked():
            config.data.split = split
    model_cfg = build.model_config(config.to_dict())
    source = sources.make_source(config, model_cfg)
    captions = [as_str(source[i].get("caption", "")) for i in range(len(source))]
    encode = text_embeddings.t5_encoder(config.model.t5)
    meta = {"encoder": encode.description, "dataset": config.data.dataset, "split": config.data.split}
    table = text_embeddings.compute(captions, encode, batch_size=batch_size, progress=progress, meta=meta)
    out = output or text_embeddings.default_path(config)
    table.save(out)
    return out
