"""Inference exports: round trip, bf16, and never overwriting."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.train import checkpoint


def test_export_round_trip_bf16(tmp_path, video_run):
    params, config = checkpoint.load(video_run[0])  # a workdir: the EMA parameters only (partial restore)
    want = video_run[2].ema_params
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(want)
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(want)):
        assert a.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    out = str(tmp_path / "export")
    checkpoint.export(out, params, config, "bfloat16")
    loaded, loaded_config = checkpoint.load(out)
    assert loaded_config["model"] == config["model"] and loaded_config["export_dtype"] == "bfloat16"
    # XLA's rounding to bfloat16 (one jitted program for the whole tree)
    rounded = jax.jit(lambda t: jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16).astype(jnp.float32), t))(params)
    for a, b in zip(jax.tree_util.tree_leaves(rounded), jax.tree_util.tree_leaves(loaded)):
        assert b.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(FileExistsError, match="already holds an export"):
        checkpoint.export(out, params, config)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither an export"):
        checkpoint.load(str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(FileNotFoundError, match="no finished checkpoint"):
        checkpoint.load(str(tmp_path))


def _small_export(tmp_path, name="export"):
    params = {"denoiser": {"w": jnp.arange(256, dtype=jnp.float32).reshape(16, 16), "b": jnp.ones((16,))}}
    out = str(tmp_path / name)
    checkpoint.export(out, params, {"stage": "t2i", "model": {}}, "float32")
    return out, params


def _param_files(out):

    return sorted(
        os.path.join(r, f)
        for r, _, fs in os.walk(os.path.join(out, "params"))
        for f in fs
        if os.path.getsize(os.path.join(r, f)) >= 64
    )


@pytest.mark.parametrize("offset", [0, 16, -32])
def test_a_damaged_export_is_refused_naming_the_file(tmp_path, offset):
    out, params = _small_export(tmp_path)
    loaded, _ = checkpoint.load(out)
    np.testing.assert_array_equal(np.asarray(loaded["denoiser"]["w"]), np.asarray(params["denoiser"]["w"]))
    for victim in _param_files(out):
        data = bytearray(open(victim, "rb").read())
        at = offset % len(data)
        data[at : at + 4] = bytes((b ^ 0xFF) for b in data[at : at + 4])
        open(victim, "wb").write(bytes(data))
        with pytest.raises(checkpoint.DamagedExportError, match=f"{victim}.* does not match the checksum"):
            checkpoint.load(out)
        data[at : at + 4] = bytes((b ^ 0xFF) for b in data[at : at + 4])  # restore: loads again
        open(victim, "wb").write(bytes(data))
        checkpoint.load(out)


def test_missing_or_extra_files_and_no_checksums(tmp_path):

    out, _ = _small_export(tmp_path)
    open(os.path.join(out, "params", "stray"), "w").write("x")
    with pytest.raises(checkpoint.DamagedExportError, match="params/stray is not one of the files"):
        checkpoint.load(out)
    os.remove(os.path.join(out, "params", "stray"))
    os.remove(os.path.join(out, "checksums.json"))
    with pytest.raises(checkpoint.DamagedExportError, match="no checksums.json.*tools/checksum_export.py"):
        checkpoint.load(out)


def test_non_finite_parameters_are_named(tmp_path):
    bad = {"denoiser": {"w": jnp.array([1.0, jnp.nan]), "b": jnp.array([jnp.inf])}, "ok": jnp.zeros(2)}
    with pytest.raises(
        checkpoint.DamagedExportError,
        match=r"non-finite values in \['denoiser'\]\['b'\], "
        r"\['denoiser'\]\['w'\]",
    ):
        checkpoint.export(str(tmp_path / "e"), bad, {"stage": "t2i"})
    assert not (tmp_path / "e").exists()


def test_no_export_into_a_workdir_and_the_workdir_checkpoint_wins(tmp_path, video_run):
    params, config = checkpoint.load(video_run[0])
    with pytest.raises(FileExistsError, match="is a training workdir"):
        checkpoint.export(video_run[0], params, config)
    # an export placed inside a workdir by hand (or by an older version) does not shadow its checkpoints
    import shutil

    work = tmp_path / "work"
    shutil.copytree(video_run[0], work)
    other, _ = _small_export(tmp_path, "other")
    shutil.copytree(os.path.join(other, "params"), work / "params")
    shutil.copy(os.path.join(other, "config.json"), work / "config.json")
    loaded, stored = checkpoint.load(str(work))
    assert stored["stage"] == "video"
    np.testing.assert_array_equal(jax.tree_util.tree_leaves(loaded)[0], jax.tree_util.tree_leaves(params)[0])


def test_workdir_load_reads_the_same_tree_through_orbax_public_metadata(video_run, monkeypatch):
    """The fast path reads the saved tree from orbax's `_METADATA` file (a private module); if that
    ever fails (another orbax layout) the public `metadata()` gives the same parameters."""
    fast, _ = checkpoint.load(video_run[0])

    def broken(*a, **k):
        raise ValueError("another layout")

    monkeypatch.setattr(checkpoint, "_tree_from_metadata_file", broken)
    slow, _ = checkpoint.load(video_run[0])
    assert jax.tree_util.tree_structure(slow) == jax.tree_util.tree_structure(fast)
    for a, b in zip(jax.tree_util.tree_leaves(slow), jax.tree_util.tree_leaves(fast)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
