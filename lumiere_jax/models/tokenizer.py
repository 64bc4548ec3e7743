"""Built-in byte-level tokenizer: no vocabulary file, any UTF-8 text.

ids: 0 = pad, 1 = bos, 2 = eos, 3 + byte. Text longer than `max_length` is
truncated (eos kept). Returns numpy int32 ids [B, L] and a bool mask [B, L].
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

PAD, BOS, EOS, OFFSET = 0, 1, 2, 3
VOCAB_SIZE = 256 + OFFSET


class ByteTokenizer:
    vocab_size = VOCAB_SIZE

    def __init__(self, max_length: int = 32):
        if max_length < 3:
            raise ValueError(f"max_length must be >= 3 (bos, a byte, eos), got {max_length}")
        self.max_length = max_length

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
