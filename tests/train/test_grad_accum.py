"""Gradient accumulation: k micro-batches inside the jitted step give the mean micro-batch gradient."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lumiere_jax import config as config_lib
from lumiere_jax.data import sources
from lumiere_jax.diffusion import schedules
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.train import optim, state as state_lib, step as step_lib, trainer
from tests.train.conftest import load_config


def test_accumulated_step_equals_update_from_mean_micro_batch_gradient(data_dir):
    k = 2
    config = load_config("tiny", "t2i", data_dir, **{"data.global_batch": 4, "train.grad_accum_steps": k})
    model = DiffusionModel(config_lib.validate(config))
    sched = schedules.get_schedule(config.diffusion.schedule)
    params = jax.jit(model.init)(jax.random.PRNGKey(0))
    labels = model.trainable_labels(params, False)
    tx, lr = optim.make_optimizer(config.optim, 10, labels)
    batch = next(iter(sources.make_pipeline(config, model.config).iterate(0, 1, prefetch=0)))
    batch = {name: jnp.asarray(x) for name, x in batch.items() if name in trainer.BATCH_KEYS}
    s0 = state_lib.create(params, tx).replace(step=jnp.int32(3))     # past warm-up: a non-zero lr
    step = jax.jit(step_lib.make_train_step(model, sched, config.diffusion, tx, lr, labels, 0.9, seed=7,
                                            grad_accum_steps=k))
    s1, metrics = step(s0, batch)

    # Reference: micro-batch i = examples i, i + k, ... with randomness fold_in(step rng, i); the update
    # is the optimizer applied to the mean of their gradients.
    rng = jax.random.fold_in(jax.random.PRNGKey(7), 3)
    grad = jax.jit(jax.value_and_grad(lambda p, b, r: step_lib.loss_fn(model, sched, config.diffusion, p, b, r)))
    per_micro = [grad(params, {n: x[i::k] for n, x in batch.items()}, jax.random.fold_in(rng, i))
                 for i in range(k)]
    loss = np.mean([float(l) for l, _ in per_micro])
    mean_grads = jax.tree_util.tree_map(lambda *g: sum(g) / k, *[g for _, g in per_micro])
    updates, _ = jax.jit(tx.update)(mean_grads, s0.opt_state, params)
    expected = optax.apply_updates(params, updates)

    assert bool(metrics["finite"])
    np.testing.assert_allclose(float(metrics["loss"]), loss, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["grad_norm"]), float(optax.tree.norm(mean_grads)), rtol=1e-4)
    flat = jax.tree_util.tree_leaves_with_path(expected)
    for (path, want), got in zip(flat, jax.tree_util.tree_leaves(s1.params)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=jax.tree_util.keystr(path))
    # The micro-batches differ from the one-batch step (which draws its randomness once for all examples).
    assert float(jnp.abs(per_micro[0][0] - per_micro[1][0])) > 0


def test_grad_accum_steps_must_divide_the_batch(data_dir):
    config = load_config("tiny", "t2i", data_dir, **{"train.grad_accum_steps": 3})     # global_batch 2
    with pytest.raises(ValueError, match="grad_accum_steps=3 must be >= 1 and divide config.data.global_batch=2"):
        config_lib.validate(config)
    with pytest.raises(ValueError, match="does not divide the batch size 2"):
        step_lib.micro_batches({"image": jnp.zeros((2, 4))}, 3)
    parts = step_lib.micro_batches({"image": jnp.arange(6)}, 3)["image"]
    np.testing.assert_array_equal(parts, [[0, 3], [1, 4], [2, 5]])
