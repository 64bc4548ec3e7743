"""Inference exports: round trip, bf16, and never overwriting."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.train import checkpoint


def test_export_round_trip_bf16(tmp_path, video_run):
    params, config = checkpoint.load(video_run[0])
    np.testing.assert_array_equal(jax.tree_util.tree_leaves(params)[0],
                                  jax.tree_util.tree_leaves(video_run[2].ema_params)[0])
    out = str(tmp_path / "export")
    checkpoint.export(out, params, config, "bfloat16")
    loaded, loaded_config = checkpoint.load(out)
    assert loaded_config["model"] == config["model"] and loaded_config["export_dtype"] == "bfloat16"
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(loaded)):
        assert b.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(a.astype(jnp.bfloat16).astype(jnp.float32)), np.asarray(b))
    with pytest.raises(FileExistsError, match="already holds an export"):
        checkpoint.export(out, params, config)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither an export"):
        checkpoint.load(str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(FileNotFoundError, match="no finished checkpoint"):
        checkpoint.load(str(tmp_path))
