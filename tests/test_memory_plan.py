"""tools/memory_plan.py without compiling: its config handling and the saved-activation count
(the compile itself is exercised by the documented runs in docs/performance.md)."""

import importlib.util
import os

import jax
import pytest

from lumiere_jax.train import validation
from lumiere_jax.models.diffusion_model import DiffusionModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("memory_plan", os.path.join(ROOT, "tools", "memory_plan.py"))
memory_plan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(memory_plan)


def _saved(extra_args=()):
    args = memory_plan.parse_args(["--config=configs/tiny.py:video", "--mesh=2,2,1", *extra_args])
    config, _ = memory_plan.build_config(args)
    model = DiffusionModel(validation.validate(config))
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    labels = model.trainable_labels(params, config.train.train_spatial, tuple(config.train.trainable))
    return memory_plan.saved_activations_per_device(
        model, config, model.config, params, labels, args.per_shard_batch
    ).nbytes, config


def test_build_config_sets_mesh_batch_and_remat():
    nbytes, config = _saved(["--remat=full", "--per_shard_batch=3"])
    assert (config.mesh.ici_data, config.mesh.ici_fsdp, config.mesh.ici_tensor) == (2, 2, 1)
    assert config.data.global_batch == 12 and config.model.remat == "full"
    assert nbytes > 0


def test_saved_activations_follow_remat_batch_and_what_trains():
    none, _ = _saved(["--remat=none"])
    full, _ = _saved(["--remat=full"])
    assert full < none
    two, _ = _saved(["--remat=none", "--per_shard_batch=2"])
    assert two == pytest.approx(2 * none, rel=0.05)
    # Training the frozen spatial U-Net too needs its layers' inputs for their weight gradients.
    assert _saved(["--remat=none", "--train_spatial"])[0] > none


def test_rejects_a_bad_mesh():
    with pytest.raises(SystemExit):
        memory_plan.parse_args(["--config=configs/tiny.py", "--mesh=2,2"])
