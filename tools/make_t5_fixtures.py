"""Records the T5 reference for tests/models/test_t5.py: a tiny randomly initialised
transformers `T5EncoderModel` (T5 v1.1 architecture: gated-GELU, no biases, relative-position
buckets), a tiny SentencePiece model trained on generated captions, and their outputs.

Not a dependency of the package: run once in a throwaway virtualenv outside the repo. The
committed tests/fixtures/t5_tiny/ was made with Python 3.11.7, torch 2.13.0+cpu,
transformers 5.23.0, safetensors 0.8.0, sentencepiece 0.2.3, protobuf 7.36.2, numpy 2.4.6:

    python3 -m venv /work/venvs/fx7a
    /work/venvs/fx7a/bin/pip install torch==2.13.0 transformers==5.23.0 safetensors==0.8.0 \
        sentencepiece==0.2.3 protobuf==7.36.2 numpy
    HF_HUB_OFFLINE=1 /work/venvs/fx7a/bin/python tools/make_t5_fixtures.py tests/fixtures/t5_tiny

Writes into the output directory:
  spiece.model        SentencePiece unigram model (pad 0, eos 1, unk 2, no bos), trained on
                      moving_shapes captions and a few generated sentences;
  config.json, model.safetensors
                      `T5EncoderModel.save_pretrained` of the tiny model (seed 0);
  reference.npz       ``ids`` int32 [B, L] (random ids, EOS at each row's end, 0-padded) and
                      ``mask`` int32 [B, L]; ``last_hidden_state`` float32 [B, L, d_model] of the
                      model on them; ``bucket_rel``/``bucket`` (relative positions -> transformers'
                      `_relative_position_bucket`, bidirectional, of the tiny config);
                      ``tok_ids_<n>`` / ``tok_mask_<n>`` transformers `T5Tokenizer` on
                      ``captions`` (padding="max_length", max_length=<n>, truncation=True) for n in
                      (77, 8); ``captions`` (UTF-8 JSON bytes as uint8); ``xxl_num_params``: the
                      parameter count of `T5EncoderModel(T5Config.from t5-v1_1-xxl)` built on the
                      meta device (no weights).
"""

from __future__ import annotations

import io
import json
import os
import sys

import numpy as np
import sentencepiece as spm
import torch
import transformers

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lumiere_jax.data import moving_shapes  # noqa: E402  (numpy-only module)

TINY = dict(
    vocab_size=256,
    d_model=32,
    d_kv=8,
    d_ff=48,
    num_layers=2,
    num_heads=4,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=16,
    layer_norm_epsilon=1e-6,
    feed_forward_proj="gated-gelu",
    dropout_rate=0.0,
    tie_word_embeddings=False,
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
)
# google/t5-v1_1-xxl's config.json (the text encoder of DeepFloyd IF).
XXL = dict(
    vocab_size=32128,
    d_model=4096,
    d_kv=64,
    d_ff=10240,
    num_layers=24,
    num_decoder_layers=24,
    num_heads=64,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    layer_norm_epsilon=1e-6,
    feed_forward_proj="gated-gelu",
    tie_word_embeddings=False,
)
CAPTIONS = [
    "a red square moving left",
    "a magenta triangle moving down",
    "A Blue circle, moving UP quickly!",
    "two shapes: a yellow square and a cyan circle moving right across the frame",
    "",
    "zebra ü 42",
]


def training_text() -> list[str]:
    lines = [moving_shapes.caption(c) for c in moving_shapes.ALL_COMBOS]
    rng = np.random.default_rng(0)
    words = [
        "the",
        "a",
        "shape",
        "moves",
        "slowly",
        "quickly",
        "across",
        "frame",
        "video",
        "of",
        "and",
        "two",
        "bright",
        "dark",
        "background",
        "small",
        "large",
        "object",
    ]
    words += list(moving_shapes.COLORS) + list(moving_shapes.SHAPES) + list(moving_shapes.DIRECTIONS)
    lines += [" ".join(rng.choice(words, size=rng.integers(3, 10))) for _ in range(300)]
    return lines


def train_spiece(out: str) -> None:
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_text()),
        model_writer=buf,
        vocab_size=60,
        model_type="unigram",
        hard_vocab_limit=False,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        num_threads=1,
        seed_sentencepiece_size=10000,
    )
    with open(os.path.join(out, "spiece.model"), "wb") as f:
        f.write(buf.getvalue())


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    train_spiece(out)
    torch.manual_seed(0)
    config = transformers.T5Config(**TINY)
    model = transformers.T5EncoderModel(config).eval()
    # transformers' init leaves the norms at 1; randomise them so the test checks their scales too.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    model.save_pretrained(out, safe_serialization=True)

    rng = np.random.default_rng(0)
    lengths = [20, 13, 5]
    ids = np.zeros((len(lengths), 20), np.int64)
    mask = np.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, : n - 1] = rng.integers(2, TINY["vocab_size"], n - 1)
        ids[i, n - 1] = 1
        mask[i, :n] = 1
    with torch.no_grad():
        hidden = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    rel = np.arange(-40, 41)
    bucket = transformers.models.t5.modeling_t5.T5Attention._relative_position_bucket(
        torch.from_numpy(rel),
        bidirectional=True,
        num_buckets=TINY["relative_attention_num_buckets"],
        max_distance=TINY["relative_attention_max_distance"],
    ).numpy()

    # transformers 5 converts spiece.model to a `tokenizers` Unigram (needs protobuf); the direct
    # T5Tokenizer(vocab_file=...) constructor does not read the pieces in 5.23.0, from_pretrained does.
    tok = transformers.T5Tokenizer.from_pretrained(out)
    arrays = {}
    for n in (77, 8):
        enc = tok(CAPTIONS, padding="max_length", max_length=n, truncation=True, return_tensors="np")
        arrays[f"tok_ids_{n}"] = enc["input_ids"].astype(np.int32)
        arrays[f"tok_mask_{n}"] = enc["attention_mask"].astype(np.int32)

    with torch.device("meta"):
        xxl = transformers.T5EncoderModel(transformers.T5Config(**XXL))
    xxl_params = sum(p.numel() for p in xxl.parameters())  # counts the tied embedding once

    np.savez_compressed(
        os.path.join(out, "reference.npz"),
        ids=ids.astype(np.int32),
        mask=mask.astype(np.int32),
        last_hidden_state=hidden.numpy().astype(np.float32),
        bucket_rel=rel.astype(np.int32),
        bucket=bucket.astype(np.int32),
        captions=np.frombuffer(json.dumps(CAPTIONS).encode(), np.uint8),
        xxl_num_params=np.int64(xxl_params),
        **arrays,
    )
    print(
        f"wrote {out}: T5 tiny {sum(p.numel() for p in model.parameters())} params, "
        f"t5-v1_1-xxl encoder {xxl_params} params, tokenizer {tok.__class__.__name__} vocab {len(tok)}"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/t5_tiny")
