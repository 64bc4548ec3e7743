"""Training with a pretrained T5 text encoder: online (model.text_source="t5", frozen) and from
precomputed embeddings (text_source="precomputed", tools/precompute_text.py)."""

import json
import os

import jax
import ml_dtypes
import numpy as np
import pytest

from lumiere_jax.train import validation
from lumiere_jax.data import sources, text_embeddings, text_precompute
from lumiere_jax.models import t5_checkpoint
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.models.t5 import T5Encoder
from lumiere_jax.models.tokenizer import SentencePieceTokenizer
from lumiere_jax.sampling import Generator
from lumiere_jax.diffusion import schedules
from lumiere_jax.train import step as step_lib, trainer
from tests.helpers import load_config

T5_DIR = os.path.join(os.path.dirname(__file__), "..", "fixtures", "t5_tiny")


def t5_config(data_dir, source, **overrides):
    """configs/tiny.py:t2i with the tiny transformers T5 of tests/fixtures/t5_tiny (d_model 32)."""
    config = load_config(
        "tiny",
        "t2i",
        data_dir,
        **{"train.num_steps": 1, "train.checkpoint_every": 1, "train.log_every": 1, **overrides},
    )
    with open(os.path.join(T5_DIR, "config.json")) as f:
        hf = json.load(f)
    for k in (
        "vocab_size",
        "d_model",
        "d_kv",
        "d_ff",
        "num_layers",
        "num_heads",
        "relative_attention_num_buckets",
        "relative_attention_max_distance",
    ):
        config.model.t5[k] = hf[k]
    config.model.t5.checkpoint = T5_DIR
    config.model.t5.max_length = 16
    config.model.text_encoder.max_length = 16  # the precomputed length
    config.model.unet.text_dim = hf["d_model"]
    config.model.text_source = source
    config.model.unet.channel_mult = (1,)  # one level with text attention: a cheap compile
    config.model.unet.attention_resolutions = (1,)
    config.model.temporal.num_temporal_downsamples = 0
    return config


def test_precomputed_batches_equal_the_encoder_and_train(tmp_path, data_dir):
    config = t5_config(data_dir, "precomputed", **{"data.text_embeddings": str(tmp_path / "emb")})
    out = text_precompute.precompute(config, progress=False)
    model_cfg = validation.validate(config)
    assert model_cfg.text_encoder is None and model_cfg.text_length == 16
    table = text_embeddings.TextEmbeddings.load(out)
    pipeline = sources.make_pipeline(config, model_cfg)
    assert len(table.captions) == len({pipeline.source[i]["caption"] for i in range(len(pipeline.source))})
    batch = pipeline.get_batch(0)
    assert "text_ids" not in batch and batch["text_emb"].dtype == ml_dtypes.bfloat16
    emb, mask = text_embeddings.t5_encoder(config.model.t5)(list(batch["caption"]))
    np.testing.assert_array_equal(batch["text_emb"].view(np.uint16), emb.astype(ml_dtypes.bfloat16).view(np.uint16))
    np.testing.assert_array_equal(batch["text_mask"], mask)
    # The training loss reads the stored embeddings (the model has no text encoder to run).
    model = DiffusionModel(model_cfg)
    params = jax.jit(model.init)(jax.random.PRNGKey(0))
    assert "text_encoder" not in params
    sched = schedules.get_schedule(config.diffusion.schedule)
    arrays = {k: v for k, v in batch.items() if k in ("image", "text_emb", "text_mask")}
    loss_of = jax.jit(
        lambda p, b, emb_scale: step_lib.loss_fn(
            model, sched, config.diffusion, p, {**b, "text_emb": b["text_emb"] * emb_scale}, jax.random.PRNGKey(1)
        )
    )
    loss = loss_of(params, arrays, 1.0)
    assert np.isfinite(float(loss))
    assert float(loss) != float(loss_of(params, arrays, 0.0))  # the embeddings reach the loss
    # Sampling encodes prompts with the same T5, rounded as the stored embeddings were.
    gen = Generator(model, params, trainer.config_json(config))
    (emb, mask), _ = gen.prompt_context([batch["caption"][0]])
    want_emb, want_mask = table.lookup(str(batch["caption"][0]))
    np.testing.assert_array_equal(np.asarray(emb[0]), want_emb.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(mask[0]), want_mask)
    # The stored length must be the model's.
    config.model.text_encoder.max_length = 20
    with pytest.raises(ValueError, match=r"are \[16, 32\] per caption; the model takes \[20, 32\]"):
        sources.make_pipeline(config, validation.validate(config))


def test_t5_text_source_loads_pretrained_and_stays_frozen(tmp_path, data_dir):
    config = t5_config(data_dir, "t5")
    model = DiffusionModel(validation.validate(config))
    text_params = trainer.starting_params(config, model)["text_encoder"]  # what a fresh train() starts from
    want, t5_cfg = t5_checkpoint.load(T5_DIR, max_length=16)
    jax.tree_util.tree_map(np.testing.assert_array_equal, jax.device_get(text_params), want)
    abstract = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_equal(a.shape, b.shape), abstract["text_encoder"], want)
    labels = model.trainable_labels(abstract, train_spatial=True)
    assert set(jax.tree_util.tree_leaves(labels["text_encoder"])) == {"frozen"}
    assert set(jax.tree_util.tree_leaves(labels["denoiser"])) == {"train"}
    # Batches carry the SentencePiece ids; the model encodes them with the T5.
    batch = sources.make_pipeline(config, model.config).get_batch(0)
    tok = SentencePieceTokenizer(os.path.join(T5_DIR, "spiece.model"), 16)
    ids, mask = tok(list(batch["caption"]))
    np.testing.assert_array_equal(batch["text_ids"], ids)
    emb = jax.jit(model.encode_text)({"text_encoder": text_params}, batch["text_ids"], batch["text_mask"])
    np.testing.assert_array_equal(
        np.asarray(emb), np.asarray(jax.jit(T5Encoder(t5_cfg).apply)({"params": want}, ids, mask))
    )
    config.model.t5.checkpoint = ""
    with pytest.raises(ValueError, match="config.model.t5.checkpoint"):
        trainer.initial_params(config, model)
