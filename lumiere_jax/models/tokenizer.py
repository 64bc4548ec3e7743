"""Built-in byte-level tokenizer: no vocabulary file, any UTF-8 text.

ids: 0 = pad, 1 = bos, 2 = eos, 3 + byte. Text longer than `max_length` is
truncated (eos kept). Returns numpy int32 ids [B, L] and a bool mask [B, L].
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

PAD, BOS, EOS, OFFSET = 0, 1, 2, 3
VOCAB_SIZE = 256 + OFFSET


class ByteTokenizer:
    vocab_size = VOCAB_SIZE

    def __init__(self, max_length: int = 32):
        if max_length < 3:
            raise ValueError(f"max_length must be >= 3 (bos, a byte, eos), got {max_length}")
        self.max_length = max_length

    def too_long(self, text: str) -> bool:
        """Whether `text` is cut to fit `max_length` (bos and eos included)."""
        return len(text.encode("utf-8")) > self.max_length - 2

    def encode(self, text: str) -> list[int]:
        body = [b + OFFSET for b in text.encode("utf-8")][: self.max_length - 2]
        return [BOS] + body + [EOS]

    def __call__(self, texts: str | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(texts, str):
            texts = [texts]
        ids = np.full((len(texts), self.max_length), PAD, np.int32)
        for i, text in enumerate(texts):
            enc = self.encode(text)
            ids[i, : len(enc)] = enc
        return ids, ids != PAD

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) - OFFSET for i in ids if int(i) >= OFFSET).decode("utf-8", errors="replace")


class SentencePieceTokenizer:
    """T5's tokenizer from a local SentencePiece model (``spiece.model``), as DeepFloyd IF calls
    it: pieces + ``</s>`` (id 1), truncated to ``max_length`` (EOS kept), padded with id 0 to
    ``max_length`` (IF: 77). Returns numpy int32 ids [B, L] and a bool mask [B, L] (True = token).
    IF additionally cleans captions (lower-casing, URL / HTML removal) before tokenising; that is
    text preprocessing outside the tokenizer and not done here."""

    PAD, EOS = 0, 1

    def __init__(self, model_file: str, max_length: int = 77):
        import os
        import sentencepiece

        if not os.path.isfile(model_file):
            raise ValueError(
                f"SentencePiece model {model_file!r} does not exist (IF ships it as tokenizer/spiece.model)"
            )
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (a piece and eos), got {max_length}")
        self.sp = sentencepiece.SentencePieceProcessor(model_file=model_file)
        if self.sp.pad_id() != self.PAD or self.sp.eos_id() != self.EOS:
            raise ValueError(
                f"{model_file}: T5 needs pad id 0 and eos id 1, the model has pad "
                f"{self.sp.pad_id()} and eos {self.sp.eos_id()}"
            )
        self.model_file, self.max_length = model_file, max_length
        self.vocab_size = self.sp.get_piece_size()

    def too_long(self, text: str) -> bool:
        """Whether `text` is cut to fit `max_length` (eos included)."""
        return len(self.sp.encode(text, out_type=int)) > self.max_length - 1

    def encode(self, text: str) -> list[int]:
        return list(self.sp.encode(text, out_type=int))[: self.max_length - 1] + [self.EOS]

    def __call__(self, texts: str | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(texts, str):
            texts = [texts]
        ids = np.full((len(texts), self.max_length), self.PAD, np.int32)
        mask = np.zeros((len(texts), self.max_length), bool)
        for i, text in enumerate(texts):
            enc = self.encode(text)
            ids[i, : len(enc)] = enc
            mask[i, : len(enc)] = True
        return ids, mask

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.decode([int(i) for i in ids if int(i) not in (self.PAD, self.EOS)])


def t5_tokenizer_file(t5_section: Mapping[str, Any]) -> str:
    """The spiece.model of a `config.model.t5` section: its `tokenizer`, else next to its
    `checkpoint` (<checkpoint>/spiece.model, or IF's layout <checkpoint>/../tokenizer/spiece.model)."""
    import os

    if t5_section.get("tokenizer"):
        return os.path.expanduser(t5_section["tokenizer"])
    ckpt = os.path.expanduser(t5_section.get("checkpoint") or "")
    if not ckpt:
        raise ValueError(
            "the T5 tokenizer needs config.model.t5.tokenizer (a spiece.model) or "
            "config.model.t5.checkpoint (a directory with spiece.model next to it)"
        )
    candidates = [os.path.join(ckpt, "spiece.model"), os.path.join(ckpt, "..", "tokenizer", "spiece.model")]
    for c in candidates:
        if os.path.isfile(c):
            return os.path.normpath(c)
    raise ValueError(f"no spiece.model found at {candidates}; set config.model.t5.tokenizer")


def make_tokenizer(model_cfg: Any, model_section: Mapping[str, Any] | None = None):
    """The tokenizer of a `DiffusionModelConfig`: a `SentencePieceTokenizer` when its text encoder
    is a pretrained T5 (file from `model_section["t5"]`, the run config's `config.model` section),
    else the `ByteTokenizer` with the model's text length."""
    from lumiere_jax.models.t5 import T5Config

    if isinstance(model_cfg.text_encoder, T5Config):
        return SentencePieceTokenizer(
            t5_tokenizer_file(dict((model_section or {}).get("t5", {}))), model_cfg.text_encoder.max_length
        )
    return ByteTokenizer(model_cfg.text_length)
