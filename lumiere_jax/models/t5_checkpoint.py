"""transformers `T5EncoderModel` checkpoints (safetensors) <-> `T5Encoder` parameters.

A checkpoint directory holds ``config.json`` and either ``model.safetensors`` or shards listed in
``model.safetensors.index.json`` (DeepFloyd IF's ``text_encoder/`` folder is one). Keys
(torch ``Linear`` weights are (out, in); ours (in, out)):

    shared.weight  (or its tied copy encoder.embed_tokens.weight)     -> shared/embedding
    encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight -> relative_attention_bias
    encoder.block.{i}.layer.0.SelfAttention.{q,k,v,o}.weight         -> block_{i}/{q,k,v,o}/kernel (.T)
    encoder.block.{i}.layer.0.layer_norm.weight                      -> block_{i}/attention_norm/scale
    encoder.block.{i}.layer.1.DenseReluDense.{wi_0,wi_1,wo}.weight   -> block_{i}/{wi_0,wi_1,wo}/kernel (.T)
      (T5 v1.0, not gated: DenseReluDense.wi)
    encoder.block.{i}.layer.1.layer_norm.weight                      -> block_{i}/mlp_norm/scale
    encoder.final_layer_norm.weight                                  -> final_norm/scale

Keys outside ``shared.`` / ``encoder.`` (a full T5's decoder, lm_head) are ignored.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

import numpy as np

from lumiere_jax.models.t5 import T5Config

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
SHARED, TIED = "shared.weight", "encoder.embed_tokens.weight"


def _mapping(config: T5Config) -> Iterator[tuple[str, tuple[str, ...], bool]]:
    """(checkpoint key, our parameter path, transpose) for every parameter but the embedding."""
    yield ("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", ("relative_attention_bias",), False)
    mlp = ("wi_0", "wi_1", "wo") if config.is_gated else ("wi", "wo")
    for i in range(config.num_layers):
        pre, blk = f"encoder.block.{i}.layer.", f"block_{i}"
        for n in ("q", "k", "v", "o"):
            yield f"{pre}0.SelfAttention.{n}.weight", (blk, n, "kernel"), True
        yield f"{pre}0.layer_norm.weight", (blk, "attention_norm", "scale"), False
        for n in mlp:
            yield f"{pre}1.DenseReluDense.{n}.weight", (blk, n, "kernel"), True
        yield f"{pre}1.layer_norm.weight", (blk, "mlp_norm", "scale"), False
    yield "encoder.final_layer_norm.weight", ("final_norm", "scale"), False


def read_config(path: str, **ours) -> T5Config:
    """`T5Config` from ``<path>/config.json``; `ours`: max_length / dtype / param_dtype."""
    file = os.path.join(path, CONFIG)
    if not os.path.isfile(file):
        raise ValueError(f"no {CONFIG} in the T5 checkpoint directory {path!r}")
    with open(file) as f:
        hf = json.load(f)
    if hf.get("model_type", "t5") != "t5":
        raise ValueError(f"{file}: model_type {hf.get('model_type')!r} is not a T5 model")
    return T5Config.from_hf(hf, **ours)


def _weight_files(path: str) -> list[str]:
    index = os.path.join(path, INDEX)
    if os.path.isfile(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    elif os.path.isfile(os.path.join(path, WEIGHTS)):
        files = [WEIGHTS]
    else:
        raise ValueError(f"the T5 checkpoint directory {path!r} has neither {WEIGHTS} nor {INDEX}")
    missing = [f for f in files if not os.path.isfile(os.path.join(path, f))]
    if missing:
        raise ValueError(f"{path}: weight files {missing} listed in {INDEX} do not exist")
    return [os.path.join(path, f) for f in files]


def read_tensors(path: str) -> dict[str, np.ndarray]:
    """All ``shared.`` / ``encoder.`` tensors of a checkpoint directory (numpy, stored dtype)."""
    from safetensors import safe_open

    out = {}
    for file in _weight_files(path):
        with safe_open(file, framework="np") as f:
            for key in f.keys():
                if key.startswith(("shared.", "encoder.")):
                    out[key] = f.get_tensor(key)
    return out


def params_from_tensors(tensors: dict[str, np.ndarray], config: T5Config) -> dict:
    """Our parameter tree (numpy, `config.param_dtype`) from checkpoint tensors."""
    from lumiere_jax.models.unet import to_dtype

    dtype = np.dtype(to_dtype(config.param_dtype))
    d, inner = config.d_model, config.num_heads * config.d_kv
    ff = config.d_ff
    want = {
        "relative_attention_bias": (config.relative_attention_num_buckets, config.num_heads),
        "q": (inner, d),
        "k": (inner, d),
        "v": (inner, d),
        "o": (d, inner),
        "wi_0": (ff, d),
        "wi_1": (ff, d),
        "wi": (ff, d),
        "wo": (d, ff),
        "attention_norm": (d,),
        "mlp_norm": (d,),
        "final_norm": (d,),
    }
    if SHARED not in tensors and TIED not in tensors:
        raise ValueError(f"T5 checkpoint lacks the token embedding ({SHARED!r} or its tied copy {TIED!r})")
    emb = tensors.get(SHARED, tensors.get(TIED))
    if emb.shape != (config.vocab_size, d):
        raise ValueError(
            f"{SHARED if SHARED in tensors else TIED}: shape {emb.shape}, config expects {(config.vocab_size, d)}"
        )
    params: dict[str, Any] = {"shared": {"embedding": np.asarray(emb, dtype)}}
    used = {SHARED, TIED}
    for key, dest, transpose in _mapping(config):
        if key not in tensors:
            raise ValueError(
                f"T5 checkpoint lacks {key!r} (config: {config.num_layers} layers, "
                f"feed_forward_proj={config.feed_forward_proj!r})"
            )
        w = tensors[key]
        shape = want[dest[-2] if dest[-1] in ("kernel", "scale") else dest[0]]
        if w.shape != shape:
            raise ValueError(f"{key}: shape {w.shape}, config expects {shape}")
        used.add(key)
        node = params
        for part in dest[:-1]:
            node = node.setdefault(part, {})
        node[dest[-1]] = np.asarray(w.T if transpose else w, dtype)
    unexpected = sorted(k for k in tensors if k.startswith("encoder.") and k not in used)
    if unexpected:
        raise ValueError(
            f"T5 checkpoint has encoder tensors this config does not use: {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''} (num_layers={config.num_layers})"
        )
    return params


def load(path: str, config: T5Config | None = None, **ours) -> tuple[dict, T5Config]:
    """(parameters, config) of a `T5EncoderModel` checkpoint directory. With `config`, the
    checkpoint's config.json must describe the same architecture."""
    stored = (
        read_config(path, **ours)
        if config is None
        else read_config(path, max_length=config.max_length, dtype=config.dtype, param_dtype=config.param_dtype)
    )
    if config is not None and config != stored:
        diff = {
            k: (getattr(config, k), getattr(stored, k))
            for k in T5Config.HF_KEYS
            if getattr(config, k) != getattr(stored, k)
        }
        raise ValueError(
            f"T5 checkpoint {path!r} does not match the configured architecture (configured, checkpoint): {diff}"
        )
    return params_from_tensors(read_tensors(path), stored), stored


def tensors_from_params(params: dict, config: T5Config) -> dict[str, np.ndarray]:
    """Checkpoint tensors (float32 unless the parameters are another float type) from our tree."""

    def get(dest):
        node = params
        for part in dest:
            if part not in node:
                raise ValueError(f"T5 parameters lack {'/'.join(dest)}")
            node = node[part]
        return np.asarray(node)

    out = {SHARED: get(("shared", "embedding"))}
    for key, dest, transpose in _mapping(config):
        w = get(dest)
        out[key] = np.ascontiguousarray(w.T if transpose else w)
    return out


def save(params: dict, config: T5Config, path: str) -> None:
    """Write ``config.json`` + ``model.safetensors`` in transformers' `T5EncoderModel` layout
    (the embedding once, as ``shared.weight``; transformers ties ``encoder.embed_tokens`` to it)."""
    from safetensors.numpy import save_file

    os.makedirs(path, exist_ok=True)
    save_file(tensors_from_params(params, config), os.path.join(path, WEIGHTS), metadata={"format": "pt"})
    with open(os.path.join(path, CONFIG), "w") as f:
        json.dump(config.to_hf(), f, indent=2)
