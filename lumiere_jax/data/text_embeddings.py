"""Precomputed text embeddings: run a (large, frozen) text encoder over a dataset's captions
once, store the embeddings in bfloat16 next to the data, and train on them
(``config.model.text_source = "precomputed"``) without the encoder in memory.

Store: a directory (default ``<data_dir>/text_embeddings/<dataset>_<config_name>_<split>``,
or ``config.data.text_embeddings``) keyed by caption, each distinct caption once:

    captions.json   ["a red square moving left", ...]           (row order)
    emb.npy         uint16 [U, L, D]: the bfloat16 bit patterns (memory-mapped on load)
    mask.npy        bool [U, L]
    meta.json       {"encoder": ..., "max_length": L, "dim": D, "num_examples": N, ...}

`WithTextEmbeddings` adds ``text_emb`` (bfloat16 [L, D]) and ``text_mask`` (bool [L]) to every
record of a source by its caption (any view over the source, e.g. the T2I `ImageView`, works);
the pipeline stacks them into the batch, and `train.step` uses ``batch["text_emb"]``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping, Sequence

import ml_dtypes
import numpy as np

from lumiere_jax.data import paths
from lumiere_jax.data.views import as_str

Encoder = Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]]  # captions -> (emb [B,L,D], mask [B,L])
FILES = ("captions.json", "emb.npy", "mask.npy", "meta.json")


class TextEmbeddings:
    """Embeddings of distinct captions: ``emb`` bfloat16 [U, L, D], ``mask`` bool [U, L]."""

    def __init__(
        self,
        captions: Sequence[str],
        emb: np.ndarray,
        mask: np.ndarray,
        meta: Mapping[str, Any] | None = None,
        path: str = "<memory>",
    ):
        if emb.ndim != 3 or mask.shape != emb.shape[:2] or len(captions) != emb.shape[0]:
            raise ValueError(
                f"{path}: inconsistent text embeddings: {len(captions)} captions, emb {emb.shape}, mask {mask.shape}"
            )
        self.captions, self.emb, self.mask = list(captions), emb, mask
        self.meta, self.path = dict(meta or {}), path
        self.row = {c: i for i, c in enumerate(self.captions)}
        if len(self.row) != len(self.captions):
            raise ValueError(f"{path}: duplicate captions")

    @property
    def length(self) -> int:
        return self.emb.shape[1]

    @property
    def dim(self) -> int:
        return self.emb.shape[2]

    def lookup(self, caption: str) -> tuple[np.ndarray, np.ndarray]:
        i = self.row.get(caption)
        if i is None:
            raise KeyError(
                f"caption {caption!r} has no precomputed embedding in {self.path} "
                f"({len(self.captions)} captions); rerun tools/precompute_text.py for this dataset/split"
            )
        return np.asarray(self.emb[i]).view(ml_dtypes.bfloat16), np.asarray(self.mask[i])

    def save(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        np.save(os.path.join(path, "emb.npy"), np.asarray(self.emb).view(np.uint16))
        np.save(os.path.join(path, "mask.npy"), np.asarray(self.mask, bool))
        with open(os.path.join(path, "captions.json"), "w") as f:
            json.dump(self.captions, f, ensure_ascii=False)
        with open(os.path.join(path, "meta.json"), "w") as f:
            json.dump(
                {**self.meta, "max_length": self.length, "dim": self.dim, "num_captions": len(self.captions)},
                f,
                indent=2,
            )

    @classmethod
    def load(cls, path: str) -> "TextEmbeddings":
        missing = [f for f in FILES if not os.path.isfile(os.path.join(path, f))]
        if missing:
            raise ValueError(
                f"precomputed text embeddings {path!r} lack {missing}; make them with "
                "tools/precompute_text.py --config=... (see docs/pretrained.md)"
            )
        with open(os.path.join(path, "captions.json")) as f:
            captions = json.load(f)
        with open(os.path.join(path, "meta.json")) as f:
            meta = json.load(f)
        emb = np.load(os.path.join(path, "emb.npy"), mmap_mode="r")  # uint16 bits, viewed per row
        return cls(captions, emb, np.load(os.path.join(path, "mask.npy")), meta, path)


def compute(
    captions: Sequence[str],
    encode: Encoder,
    *,
    batch_size: int = 16,
    meta: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> TextEmbeddings:
    """Embeddings of the distinct `captions` (sorted), `batch_size` at a time (the last batch is
    padded with empty captions, so the encoder compiles once), rounded to bfloat16."""
    unique = sorted({as_str(c) for c in captions})
    if not unique:
        raise ValueError("no captions to encode")
    embs, masks = [], []
    from tqdm import tqdm

    for lo in tqdm(range(0, len(unique), batch_size), desc="encode", disable=not progress):
        chunk = unique[lo : lo + batch_size]
        emb, mask = encode(chunk + [""] * (batch_size - len(chunk)))
        embs.append(np.asarray(emb, np.float32)[: len(chunk)].astype(ml_dtypes.bfloat16))
        masks.append(np.asarray(mask, bool)[: len(chunk)])
    return TextEmbeddings(
        unique,
        np.concatenate(embs).view(np.uint16),
        np.concatenate(masks),
        {**(meta or {}), "num_examples": len(captions)},
    )


class WithTextEmbeddings:
    """A source whose records also carry ``text_emb`` (bfloat16 [L, D]) and ``text_mask`` (bool [L])
    of their caption."""

    def __init__(self, source, table: TextEmbeddings, caption_key: str = "caption"):
        self.source, self.table, self.caption_key = source, table, caption_key

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = dict(self.source[index])
        emb, mask = self.table.lookup(as_str(record.get(self.caption_key, "")))
        record["text_emb"], record["text_mask"] = emb, mask
        return record


def default_path(config) -> str:
    """Where the embeddings of `config`'s dataset split live: config.data.text_embeddings, else
    ``<data_dir>/text_embeddings/<dataset>_<config_name>_<split>``."""
    d = config.data
    if d.get("text_embeddings"):
        return os.path.expanduser(d.text_embeddings)
    name = d.config_name if d.dataset == "moving_shapes" else os.path.basename(os.path.normpath(d.video_folder))
    return os.path.join(paths.data_dir(config), "text_embeddings", f"{d.dataset}_{name}_{d.split}")


def t5_encoder(t5_section: Mapping[str, Any]) -> Encoder:
    """captions -> (emb float32 [B, L, D], mask [B, L]) with the pretrained T5 of a
    `config.model.t5` section (weights from its checkpoint, tokenizer from its spiece.model)."""
    import jax
    from lumiere_jax.models import t5, t5_checkpoint
    from lumiere_jax.models.tokenizer import SentencePieceTokenizer, t5_tokenizer_file

    section = dict(t5_section)
    if not section.get("checkpoint"):
        raise ValueError("config.model.t5.checkpoint must name a transformers T5EncoderModel directory")
    arch = {k: v for k, v in section.items() if k not in ("checkpoint", "tokenizer")}
    cfg = t5.T5Config(**arch)
    params, _ = t5_checkpoint.load(os.path.expanduser(section["checkpoint"]), cfg)
    tok = SentencePieceTokenizer(t5_tokenizer_file(section), cfg.max_length)
    apply = jax.jit(t5.T5Encoder(cfg).apply)
    params = jax.device_put(params)

    def encode(captions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        ids, mask = tok(list(captions))
        return np.asarray(apply({"params": params}, ids, mask)), mask

    encode.description = {"kind": "t5", "checkpoint": section["checkpoint"], "config": arch}
    return encode
