"""T5 v1.1 encoder, its checkpoint import / export and the SentencePiece tokenizer, against
transformers (tests/fixtures/t5_tiny, made by tools/make_t5_fixtures.py)."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from lumiere_jax.models import t5, t5_checkpoint
from lumiere_jax.models.tokenizer import SentencePieceTokenizer

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "t5_tiny")


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(os.path.join(FIXTURE, "reference.npz")))


@pytest.fixture(scope="module")
def loaded():
    return t5_checkpoint.load(FIXTURE, max_length=20)


def test_matches_transformers_t5_encoder_with_padding(ref, loaded):
    params, cfg = loaded
    assert (cfg.d_model, cfg.num_layers, cfg.num_heads, cfg.feed_forward_proj) == (32, 2, 4, "gated-gelu")
    apply = jax.jit(t5.T5Encoder(cfg).apply)
    out = apply({"params": params}, ref["ids"], ref["mask"] > 0)
    want = ref["last_hidden_state"]
    assert out.shape == want.shape
    # Every position, padded ones included (transformers does not zero them; IF's U-Net sees them).
    np.testing.assert_allclose(np.asarray(out), want, rtol=0, atol=1e-5)
    # Padding matters: the padded rows differ from the same ids without the mask.
    unmasked = apply({"params": params}, ref["ids"], np.ones_like(ref["mask"], bool))
    assert np.abs(np.asarray(unmasked)[1, :13] - want[1, :13]).max() > 1e-3


def test_relative_position_buckets_match_transformers(ref, loaded):
    _, cfg = loaded
    got = jax.jit(t5.relative_position_bucket, static_argnums=(1, 2))(
        ref["bucket_rel"], cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance
    )
    np.testing.assert_array_equal(np.asarray(got), ref["bucket"])


@pytest.mark.parametrize("max_length", [77, 8])
def test_tokenizer_matches_transformers(ref, max_length):
    captions = json.loads(bytes(ref["captions"]).decode())
    tok = SentencePieceTokenizer(os.path.join(FIXTURE, "spiece.model"), max_length)
    ids, mask = tok(captions)
    np.testing.assert_array_equal(ids, ref[f"tok_ids_{max_length}"])
    np.testing.assert_array_equal(mask, ref[f"tok_mask_{max_length}"] > 0)
    assert tok.decode(ids[0]) == captions[0]


def test_export_round_trip_and_transformers_layout(tmp_path, loaded):
    params, cfg = loaded
    t5_checkpoint.save(params, cfg, str(tmp_path))
    again, cfg2 = t5_checkpoint.load(str(tmp_path), max_length=20)
    assert cfg2 == cfg
    jax.tree_util.tree_map(np.testing.assert_array_equal, again, params)
    # Same keys and tensors as transformers' own file (it stores the embedding as shared.weight).
    ours, theirs = t5_checkpoint.read_tensors(str(tmp_path)), t5_checkpoint.read_tensors(FIXTURE)
    assert sorted(ours) == sorted(theirs)
    for k in theirs:
        np.testing.assert_array_equal(ours[k], theirs[k], err_msg=k)


def test_sharded_checkpoint_and_tied_embedding_key(tmp_path, loaded):
    from safetensors.numpy import save_file

    tensors = t5_checkpoint.read_tensors(FIXTURE)
    tensors[t5_checkpoint.TIED] = tensors.pop(t5_checkpoint.SHARED)  # only the tied copy present
    keys = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, ks in shards.items():
        save_file({k: tensors[k] for k in ks}, str(tmp_path / name))
    weight_map = {k: name for name, ks in shards.items() for k in ks}
    (tmp_path / t5_checkpoint.INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    shutil.copy(os.path.join(FIXTURE, "config.json"), tmp_path / "config.json")
    params, _ = t5_checkpoint.load(str(tmp_path))
    jax.tree_util.tree_map(np.testing.assert_array_equal, params, loaded[0])
    os.remove(tmp_path / "model-00002-of-00002.safetensors")
    with pytest.raises(ValueError, match="model-00002-of-00002.safetensors"):
        t5_checkpoint.load(str(tmp_path))


def test_bad_checkpoints_name_the_problem(tmp_path, loaded):
    _, cfg = loaded
    tensors = t5_checkpoint.read_tensors(FIXTURE)
    key = "encoder.block.1.layer.1.DenseReluDense.wi_1.weight"
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        t5_checkpoint.params_from_tensors({k: v for k, v in tensors.items() if k != key}, cfg)
    with pytest.raises(ValueError, match=r"SelfAttention\.q\.weight: shape \(32, 16\)"):
        t5_checkpoint.params_from_tensors(
            {**tensors, "encoder.block.0.layer.0.SelfAttention.q.weight": np.zeros((32, 16), np.float32)}, cfg
        )
    with pytest.raises(ValueError, match="shared.weight"):
        t5_checkpoint.params_from_tensors({k: v for k, v in tensors.items() if k != "shared.weight"}, cfg)
    with pytest.raises(ValueError, match="does not use"):
        t5_checkpoint.params_from_tensors(tensors, cfg.replace(num_layers=1))
    with pytest.raises(ValueError, match="config.json"):
        t5_checkpoint.load(str(tmp_path))
    shutil.copy(os.path.join(FIXTURE, "config.json"), tmp_path / "config.json")
    with pytest.raises(ValueError, match="model.safetensors"):
        t5_checkpoint.load(str(tmp_path))
    with pytest.raises(ValueError, match="'d_model': \\(64, 32\\)"):
        t5_checkpoint.load(FIXTURE, cfg.replace(d_model=64))
    with pytest.raises(ValueError, match="spiece.model"):
        SentencePieceTokenizer(str(tmp_path / "spiece.model"))
    with pytest.raises(ValueError, match="feed_forward_proj"):
        t5.T5Config(feed_forward_proj="gated-swish")


def test_xxl_preset_parameter_count(ref):
    # transformers' T5EncoderModel(T5Config of google/t5-v1_1-xxl) built on the meta device
    # (tools/make_t5_fixtures.py, transformers 5.23.0): 4,762,310,656 parameters.
    assert int(ref["xxl_num_params"]) == 4_762_310_656
    assert t5.num_params(t5.PRESETS["t5_v1_1_xxl"]) == 4_762_310_656


def test_parameters_carry_logical_axes(loaded):
    from flax import linen as nn
    from lumiere_jax import axes

    _, cfg = loaded
    ids = jax.ShapeDtypeStruct((1, 4), np.int32)
    boxed = jax.eval_shape(lambda i: t5.T5Encoder(cfg).init(jax.random.PRNGKey(0), i, i > 0), ids)["params"]
    leaves = jax.tree_util.tree_leaves(boxed, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    names = {v for k, v in vars(axes).items() if k.isupper() and isinstance(v, str)}
    assert leaves and all(isinstance(x, nn.LogicallyPartitioned) and set(x.names) <= names for x in leaves)
    specs = nn.logical_to_mesh_sharding(
        nn.get_partition_spec(boxed),
        jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1, 1), ("data", "fsdp", "tensor")),
        axes.DEFAULT_RULES,
    )
    assert specs["block_0"]["wi_0"]["kernel"].spec == jax.sharding.PartitionSpec("fsdp", "tensor")
