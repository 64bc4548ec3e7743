"""Gradient accumulation: k micro-batches inside the jitted step give the mean micro-batch gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.train import validation
from lumiere_jax.diffusion import schedules
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.train import optim, state as state_lib, step as step_lib
from tests.helpers import load_config, perturbed_params


def test_accumulated_gradient_is_the_mean_micro_batch_gradient():
    k = 2
    # configs/tiny.py:t2i with a one-level U-Net (cheaper to compile) on a random batch of 4.
    config = load_config("tiny", "t2i", "/nonexistent", **{"data.global_batch": 4, "train.grad_accum_steps": k})
    config.model.unet.channel_mult, config.model.unet.attention_resolutions = (1,), (1,)
    config.model.temporal.num_temporal_downsamples = 0
    model = DiffusionModel(validation.validate(config))
    sched = schedules.get_schedule(config.diffusion.schedule)
    params = perturbed_params(model)  # random: init's zero projections would leave gradients zero
    labels = model.trainable_labels(params, False)
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    length = model.config.text_length
    batch = {
        "image": jax.random.uniform(keys[0], model.config.sample_shape(4), minval=-1.0, maxval=1.0),
        "text_ids": jax.random.randint(keys[1], (4, length), 1, 200),
        "text_mask": jnp.arange(length)[None] < jnp.array([[3], [16], [5], [9]]),
    }
    loss_of = lambda p, b, r: step_lib.loss_fn(model, sched, config.diffusion, p, b, r)
    rng = keys[2]
    loss, grads = jax.jit(lambda p, b, r: step_lib.accumulated_value_and_grad(loss_of, p, b, r, k, labels))(
        params, batch, rng
    )

    # Reference: micro-batch i = examples i, i + k, ... with randomness fold_in(rng, i); mean of their
    # losses and gradients.
    grad = jax.jit(jax.value_and_grad(loss_of))
    per_micro = [grad(params, {n: x[i::k] for n, x in batch.items()}, jax.random.fold_in(rng, i)) for i in range(k)]
    per_micro, grads = jax.device_get((per_micro, grads))  # compared in numpy (no eager op per leaf)
    np.testing.assert_allclose(float(loss), np.mean([float(l) for l, _ in per_micro]), rtol=1e-5)
    mean_grads = jax.tree_util.tree_map(lambda *g: sum(g) / k, *[g for _, g in per_micro])
    flat = jax.tree_util.tree_leaves_with_path(mean_grads)
    scale = max(float(np.abs(g).max()) for _, g in flat)  # float rounding relative to the largest gradient
    for (path, want), got in zip(flat, jax.tree_util.tree_leaves(grads)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * scale, err_msg=jax.tree_util.keystr(path))
    assert sum(float(np.square(g).sum()) for _, g in flat) > 0
    # The micro-batches draw different randomness (so k micro-batches are not k copies of one).
    assert abs(float(per_micro[0][0]) - float(per_micro[1][0])) > 0

    # The train step accumulates: one scan over k micro-batches of B/k examples (traced, not compiled).
    tx, lr = optim.make_optimizer(config.optim, 10, labels)
    step = step_lib.make_train_step(model, sched, config.diffusion, tx, lr, labels, 0.9, seed=7, grad_accum_steps=k)
    state = jax.eval_shape(lambda p: state_lib.create(p, tx), params)  # shapes: no eager op per leaf
    jaxpr = jax.make_jaxpr(step)(state, batch)
    scans = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
    assert [e.params["length"] for e in scans] == [k]


def test_grad_accum_steps_must_divide_the_batch():
    config = load_config("tiny", "t2i", "/nonexistent", **{"train.grad_accum_steps": 3})  # global_batch 2
    with pytest.raises(ValueError, match="grad_accum_steps=3 must be >= 1 and divide config.data.global_batch=2"):
        validation.validate(config)
    with pytest.raises(ValueError, match="does not divide the batch size 2"):
        step_lib.micro_batches({"image": jnp.zeros((2, 4))}, 3)
    parts = step_lib.micro_batches({"image": jnp.arange(6)}, 3)["image"]
    np.testing.assert_array_equal(parts, [[0, 3], [1, 4], [2, 5]])
