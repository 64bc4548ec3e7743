"""A workdir is one run's: the lock (a real second process), stale locks, a damaged newest
checkpoint (resume falls back, sets it aside, never deletes it), a different model on resume."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from lumiere_jax import runtime
from lumiere_jax.train import checkpoint, trainer, workdir_lock
from tests.helpers import ROOT, load_config

HOLD = (
    "import sys, time; from lumiere_jax.train import workdir_lock; workdir_lock.acquire(sys.argv[1]); "
    "print('held', flush=True); time.sleep(120)"
)


def test_a_second_run_refuses_naming_the_owner(tmp_path, data_dir):
    owner = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    try:
        assert owner.stdout.readline().strip() == "held"
        with pytest.raises(workdir_lock.WorkdirLocked, match=f"in use by another run .*pid {owner.pid}"):
            workdir_lock.acquire(str(tmp_path))
        config = load_config("tiny", "t2i", data_dir, **{"train.num_steps": 2})
        with pytest.raises(workdir_lock.WorkdirLocked, match=f"pid {owner.pid}"):
            trainer.train(config, str(tmp_path))  # refused before anything is built
        assert not (tmp_path / "checkpoints").exists()
    finally:
        owner.kill()
        owner.wait()
    path = workdir_lock.acquire(str(tmp_path))  # the owner is gone: its lock is stale
    assert json.load(open(path))["pid"] == os.getpid()
    workdir_lock.release(path)
    assert not os.path.exists(path)


def test_a_lock_from_another_host_is_honoured(tmp_path):
    (tmp_path / "lock").write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": "then"}))
    with pytest.raises(workdir_lock.WorkdirLocked, match="host elsewhere, pid 1.*delete .*lock"):
        workdir_lock.acquire(str(tmp_path))


def _main(workdir, data_dir, steps):
    return [
        sys.executable,
        os.path.join(ROOT, "main.py"),
        "--config",
        os.path.join(ROOT, "configs/tiny.py:t2i"),
        f"--workdir={workdir}",
        f"--config.data.data_dir={data_dir}",
        f"--config.train.num_steps={steps}",
        "--config.train.checkpoint_every=2",
        "--config.train.async_checkpoints=false",
        "--config.train.progress=false",
    ]


def test_a_run_resumes_on_another_device_count_past_a_damaged_checkpoint_and_keeps_it(tmp_path, t2i_run, data_dir):
    """As a user meets it: `main.py` in a subprocess resuming a workdir of the same command (the t2i_run
    fixture's: trained in this process on one device, its checkpoints at steps 2 and 4) whose newest
    checkpoint is damaged. It resumes from step 2 on main.py's host devices (`runtime.cpu_devices_for_training`:
    2 on a 2-core machine), sets the damaged one aside and trains on."""
    # the persistent compilation cache of this process (tests/conftest.py): what the fixtures compiled
    env = dict(os.environ, LUMIERE_JAX_CACHE=jax.config.jax_compilation_cache_dir)
    work = tmp_path / "work"
    shutil.copytree(t2i_run[0], work)
    assert int(t2i_run[1].train.num_steps) == 4 and int(t2i_run[1].train.checkpoint_every) == 2
    state_dir = work / "checkpoints" / "4" / "state"
    # every array-data file of the writer (OCDBT's ocdbt.process_*/d/) cut to half. One file is not
    # enough: which files a restore reads depends on how the writes were split (the writer's own
    # b-tree nodes, superseded by the merged tree in state/d/, and `_sharding`, unread when the restore
    # is given its shardings, can each be the largest file)
    data = [os.path.join(r, f) for r, _, fs in os.walk(state_dir) for f in fs if r.endswith(os.sep + "d")]
    data = [f for f in data if os.sep + "ocdbt.process_" in f]
    assert data, sorted(os.path.relpath(os.path.join(r, f), state_dir) for r, _, fs in os.walk(state_dir) for f in fs)
    for victim in data:
        with open(victim, "r+b") as f:
            f.truncate(os.path.getsize(victim) // 2)
    resumed = subprocess.run(_main(work, data_dir, 6), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "checkpoint step 4 in" in resumed.stderr and "resuming from step 2" in resumed.stderr
    devices = runtime.cpu_devices_for_training(t2i_run[1]) or 1
    assert "at step 2" in resumed.stderr and f"over {devices} devices" in resumed.stderr
    before, _ = checkpoint.load(t2i_run[0])
    after, _ = checkpoint.load(str(work))
    moved = [
        float(np.abs(a - b).max()) for a, b in zip(jax.tree_util.tree_leaves(after), jax.tree_util.tree_leaves(before))
    ]
    assert all(np.isfinite(m) for m in moved) and max(moved) > 0
    aside = os.listdir(work / checkpoint.DAMAGED_DIR)
    assert len(aside) == 1 and aside[0].startswith("4_")  # kept, not deleted
    ckpt = checkpoint.Checkpointer(str(work), async_save=False)
    assert ckpt.all_steps()[-2:] == [4, 6] and os.path.isdir(state_dir)  # step 4 written again
    ckpt.close()
    # nothing restores: a clear error, nothing deleted (the trainer's own error, which main.py passes on:
    # here in this process, where it fails before anything compiles)
    broken = tmp_path / "broken"
    shutil.copytree(work, broken)
    for step in os.listdir(broken / "checkpoints"):
        shutil.rmtree(broken / "checkpoints" / step / "state")
    config = load_config("tiny", "t2i", data_dir, **{"train.num_steps": 6})
    with pytest.raises(RuntimeError, match=r"no checkpoint in .*nothing was deleted"):
        trainer.train(config, str(broken))
    assert sorted(os.listdir(broken / "checkpoints")) == sorted(os.listdir(work / "checkpoints"))


def test_resuming_with_another_model_names_the_section(tmp_path, t2i_run):
    work = tmp_path / "work"
    shutil.copytree(t2i_run[0], work)
    config = load_config("tiny", "t2i", t2i_run[1].data.data_dir, **{"train.num_steps": 6})
    config.model.unet.base_channels = 16
    with pytest.raises(ValueError, match=r"different config.model \(config.model.unet.base_channels: 8 -> 16\)"):
        trainer.train(config, str(work))
