"""Trainer: freezing, EMA, non-finite handling, exact resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.train import validation
from lumiere_jax.data import sources
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.train import checkpoint, state as state_lib, step as step_lib, trainer
from tests.helpers import ROOT, load_config, perturbed

leaves = jax.tree_util.tree_leaves


def assert_trees_equal(a, b):
    la, lb = jax.tree_util.tree_leaves_with_path(a), leaves(b)
    assert len(la) == len(lb)
    for (path, x), y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path))


def test_video_stage_inflates_and_freezes_spatial(t2i_run, video_run):
    t2i_params, _ = checkpoint.load(t2i_run[0])  # EMA params the video stage inflated
    state = video_run[2]
    assert_trees_equal(state.params["denoiser"]["spatial"], t2i_params["denoiser"])
    assert_trees_equal(state.params["text_encoder"], t2i_params["text_encoder"])
    assert_trees_equal(state.params["null_text"], t2i_params["null_text"])
    # a frozen parameter's EMA is the parameter itself, to the bit (an average of a constant)
    assert_trees_equal(state.ema_params["denoiser"]["spatial"], t2i_params["denoiser"])
    assert_trees_equal(state.ema_params["text_encoder"], t2i_params["text_encoder"])
    fresh = DiffusionModel(validation.validate(video_run[1])).inflate(t2i_params, jax.random.PRNGKey(0))
    moved = [
        not np.array_equal(a, b)
        for a, b in zip(leaves(fresh["denoiser"]["temporal"]), leaves(state.params["denoiser"]["temporal"]))
    ]
    assert any(moved)


def test_periodic_samples_and_tensorboard(video_run):
    workdir = video_run[0]
    samples = os.path.join(workdir, "samples", "step_0000004")
    assert os.path.getsize(os.path.join(samples, "contact_sheet.png")) > 0
    assert len(json.load(open(os.path.join(samples, "manifest.json")))) == len(video_run[1].sample.prompts)
    events = os.listdir(os.path.join(workdir, "tensorboard"))
    assert any(e.startswith("events.out.tfevents") for e in events)


def test_train_step_ema_and_nonfinite_guard(t2i_run, data_dir):
    """The train step a run compiles (`trainer.train_step_of` of the t2i_run fixture's config, so it
    comes from the persistent compilation cache): the EMA follows its decay, and a non-finite loss
    leaves parameters, optimiser state and EMA as they were while the step count moves on."""
    from lumiere_jax.data import input_pipeline
    from lumiere_jax.parallel import mesh as mesh_lib, sharding

    config = t2i_run[1]
    model = DiffusionModel(validation.validate(config))
    mesh = mesh_lib.make_mesh(config.mesh)
    tx, step, _, shardings = trainer.train_step_of(config, model, mesh, mesh_lib.rules(config.mesh))
    batch = next(iter(sources.make_pipeline(config, model.config).iterate(0, 1, prefetch=0)))
    batch = input_pipeline.to_global(
        {k: v for k, v in batch.items() if k in trainer.BATCH_KEYS}, mesh, sharding.batch_sharding(mesh).spec
    )
    # the run's first state (as the trainer creates it: the same program), one step (the learning rate
    # warms up from 0), then an EMA apart from the parameters
    first = sharding.init_state(model, tx, jax.random.PRNGKey(config.train.seed), shardings, state_lib.create)
    s0, _ = step(first, batch)
    s0 = s0.replace(ema_params=jax.device_put(perturbed(jax.device_get(s0.params), 5), shardings.ema_params))
    before = jax.device_get(s0)  # the step donates its state
    s1, m = step(s0, batch)
    assert bool(m["finite"]) and int(s1.step) == 2 and float(m["lr"]) > 0
    decay = float(step_lib.ema_decay_at(1, float(config.train.ema_decay)))
    assert decay == pytest.approx(2 / 11)  # (1 + step) / (10 + step) in the warm-up, then 0.999
    for e0, p1, e1 in zip(leaves(before.ema_params), leaves(s1.params), leaves(s1.ema_params)):
        np.testing.assert_allclose(e1, decay * e0 + (1 - decay) * p1, rtol=1e-6, atol=1e-7)
    assert max(float(np.abs(a - b).max()) for a, b in zip(leaves(before.params), leaves(s1.params))) > 0
    assert float(step_lib.ema_decay_at(0, 0.9)) == pytest.approx(0.1)  # warm-up: mostly the params
    assert float(step_lib.ema_decay_at(90, 0.9)) == pytest.approx(0.9)
    good = jax.device_get(s1)
    bad = dict(batch, image=batch["image"].at[0, 0, 0, 0].set(jnp.nan))
    s2, m2 = step(s1, bad)
    assert not bool(m2["finite"]) and int(s2.step) == 3
    assert_trees_equal((s2.params, s2.opt_state, s2.ema_params), (good.params, good.opt_state, good.ema_params))


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, data_dir, monkeypatch, t2i_run):
    # the t2i_run fixture's config: its compiled train step comes from the persistent cache
    config = load_config(
        "tiny", "t2i", data_dir, **{"train.num_steps": 4, "train.checkpoint_every": 2, "train.log_every": 2}
    )
    real = sources.make_pipeline

    class Poisoned:
        def __init__(self, pipeline):
            self.pipeline = pipeline

        def iterate(self, start_step=0, num_steps=None, **kw):
            it = self.pipeline.iterate(start_step, num_steps, prefetch=0)

            class Ctx:
                def __enter__(self_):
                    return self_

                def __exit__(self_, *a):
                    it.close()

                def __iter__(self_):
                    for i, b in enumerate(it, start=start_step):
                        if i == 3:
                            b = dict(b, image=np.full_like(b["image"], np.nan))
                        yield b

            return Ctx()

    monkeypatch.setattr(sources, "make_pipeline", lambda *a, **k: Poisoned(real(*a, **k)))
    with pytest.raises(trainer.NonFiniteError, match=r"at step 3\b.*step 2\) is kept"):
        trainer.train(config, str(tmp_path))
    ckpt = checkpoint.Checkpointer(str(tmp_path), async_save=False)
    assert ckpt.latest_step() == 2
    params, _ = checkpoint.load(str(tmp_path))
    assert all(np.isfinite(np.asarray(a)).all() for a in leaves(params))
    ckpt.close()


def _main(workdir, t2i_dir, data_dir, steps=4):
    """The `main.py` command of the video_run fixture's config (4 steps from t2i_run, no warm-up, a
    checkpoint every 2: configs/tiny.py)."""
    return [
        sys.executable,
        os.path.join(ROOT, "main.py"),
        "--config",
        os.path.join(ROOT, "configs/tiny.py:video"),
        f"--workdir={workdir}",
        f"--config.train.init_from={t2i_dir}",
        f"--config.data.data_dir={data_dir}",
        f"--config.train.num_steps={steps}",
        "--config.optim.warmup_steps=0",
        "--config.train.log_every=1",
    ]


def test_exact_resume_after_sigkill(tmp_path, t2i_run, video_run, data_dir):
    """A `main.py` run killed with SIGKILL mid-way and restarted with the same command ends
    bit-identical to the uninterrupted run of the same config: the video_run fixture, trained in this
    process on one device. The runs here are on one host device too (LUMIERE_JAX_CPU_DEVICES=1; resuming
    on another count is tests/train/test_workdir.py's), so their compiled step is the fixture's, from
    the persistent compilation cache (tests/conftest.py gives this process main.py's XLA flags)."""
    assert int(video_run[1].train.num_steps) == 4
    env = dict(os.environ, LUMIERE_JAX_CACHE=jax.config.jax_compilation_cache_dir, LUMIERE_JAX_CPU_DEVICES="1")
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _main(killed, t2i_run[0], data_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.time() + 300
        while not (killed / "checkpoints" / "2").exists():  # killed after step 2 was written
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.time() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ckpt = checkpoint.Checkpointer(str(killed), async_save=False)
    assert ckpt.latest_step() < 4
    ckpt.close()
    resumed = subprocess.run(_main(killed, t2i_run[0], data_dir), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at step 2" in resumed.stderr and "over 1 devices" in resumed.stderr, resumed.stderr[-3000:]

    states = []
    for workdir in (video_run[0], str(killed)):  # read as numpy
        c = checkpoint.Checkpointer(workdir, async_save=False)
        assert c.latest_step() == 4
        states.append(checkpoint._restore_numpy(os.path.join(c.directory, "4", "state")))
        c.close()
    assert_trees_equal(states[0], states[1])


def test_video_stage_needs_init_from(tmp_path, data_dir):
    config = load_config("tiny", "video", data_dir)
    with pytest.raises(ValueError, match="needs config.train.init_from"):
        trainer.train(config, str(tmp_path))


def test_warm_start_from_same_stage(video_run, data_dir):
    from lumiere_jax.models.diffusion_model import DiffusionModel

    config = load_config("tiny", "video", data_dir, **{"train.init_from": video_run[0], "train.train_spatial": True})
    model = DiffusionModel(validation.validate(config))
    params = trainer.initial_params(config, model)
    stored, _ = checkpoint.load(video_run[0])
    jax.tree_util.tree_map(np.testing.assert_array_equal, params, stored)
    config.model.temporal.temporal_kernel_size = 5
    with pytest.raises(ValueError, match="different config.model; it cannot warm-start"):
        trainer.initial_params(config, DiffusionModel(validation.validate(config)))
    t2i = load_config("tiny", "t2i", data_dir, **{"train.init_from": video_run[0]})
    with pytest.raises(ValueError, match="stage 't2i' warm-starts from a 't2i' one"):
        trainer.initial_params(t2i, DiffusionModel(validation.validate(t2i)))
