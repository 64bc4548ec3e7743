"""The training objective and the jitted train step."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from lumiere_jax.diffusion import conditioning, guidance, losses, noising
from lumiere_jax.diffusion.schedules import Schedule
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.train.state import TrainState


def loss_fn(
    model: DiffusionModel,
    sched: Schedule,
    diffusion: Mapping[str, Any],
    params: Any,
    batch: Mapping[str, jax.Array],
    rng: jax.Array,
    ssr: Mapping[str, Any] | None = None,
    mask_mixture: Mapping[str, float] | None = None,
    known_loss_weight: float = 0.0,
) -> jax.Array:
    """Denoising loss of one batch: text encoded (or precomputed), dropped to the null
    embedding with probability `cond_drop_prob` (CFG training), x0 noised at uniform
    timesteps, MSE against the prediction-type target with optional SNR weighting.
    A super-resolution model (conditioning "low_res") is conditioned on its batch's own
    degraded copy, built with the `ssr` settings (`diffusion.conditioning`); a masked model
    (Lumiere §4.2) on <x0 * M, M> with masks M drawn from `mask_mixture` (`diffusion.masks`); its
    squared errors are weighted 1 + `known_loss_weight` where the content is known (M = 1), so the
    model learns to reproduce what it is given (a weighted mean per example)."""
    k_drop, k_t, k_noise, k_dropout, k_cond = jax.random.split(rng, 5)
    x0 = batch["image" if model.config.kind == "image" else "video"]
    x0, extra, weights = conditioning.get(model.config.conditioning).training_inputs(
        model.config, sched, x0, k_cond, ssr=ssr, mixture=mask_mixture, known_loss_weight=known_loss_weight
    )
    mask = batch["text_mask"]
    if "text_emb" in batch:
        emb = batch["text_emb"].astype(jnp.float32)
    else:
        emb = model.encode_text(params, batch["text_ids"], mask)
    null = model.null_embedding(params)
    emb, mask = guidance.drop_text(k_drop, emb, mask, null, float(diffusion["cond_drop_prob"]))
    t = losses.sample_timesteps(
        k_t,
        x0.shape[0],
        sched,
        diffusion.get("timestep_sampling", "uniform"),
        float(diffusion.get("timestep_logit_mean", 0.0)),
        float(diffusion.get("timestep_logit_std", 1.0)),
        float(diffusion.get("timestep_logit_mean2", 0.0)),
        float(diffusion.get("timestep_mixture_weight", 0.0)),
    )
    noise = jax.random.normal(k_noise, x0.shape, jnp.float32)
    x_t = noising.add_noise(sched, x0, noise, t)
    out = model.denoise(params, x_t, t, emb, mask, train=True, rng=k_dropout, **extra)
    weighting = diffusion["snr_weighting"]
    return losses.diffusion_loss(
        out,
        x0,
        noise,
        t,
        sched,
        diffusion["prediction_type"],
        None if weighting in (None, "none") else weighting,
        float(diffusion["snr_gamma"]),
        mask=weights,
        variance_type=diffusion.get("variance_type", "fixed_small"),
        vlb_weight=float(diffusion.get("vlb_weight", losses.VLB_WEIGHT)),
    )


def ema_decay_at(step: jax.Array, ema_decay: float) -> jax.Array:
    """EMA warm-up: min(decay, (1 + step) / (10 + step)). Without it a short run's EMA is
    mostly the random initialisation (0.999**1000 = 37% of it after 1000 steps)."""
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(ema_decay, (1.0 + step) / (10.0 + step))


def micro_batches(batch: Mapping[str, jax.Array], k: int) -> dict:
    """[B, ...] -> [k, B/k, ...]: micro-batch i holds examples i, i + k, i + 2k, ... (strided, so a batch
    sharded over devices along B keeps every micro-batch spread over all of them)."""

    def split(x):
        if x.shape[0] % k:
            raise ValueError(f"grad_accum_steps={k} does not divide the batch size {x.shape[0]}")
        return x.reshape((x.shape[0] // k, k) + x.shape[1:]).swapaxes(0, 1)

    return {name: split(x) for name, x in batch.items()}


def accumulated_value_and_grad(
    loss_of: Callable[[Any, Mapping[str, jax.Array], jax.Array], jax.Array],
    params: Any,
    batch: Mapping[str, jax.Array],
    rng: jax.Array,
    k: int,
    labels: Any,
) -> tuple[jax.Array, Any]:
    """Mean loss and gradient over the `k` micro-batches of `micro_batches` (a `lax.scan`), micro-batch i
    drawing its randomness from fold_in(rng, i); k = 1 is one value_and_grad of the whole batch with `rng`.
    Only the leaves labelled "train" are accumulated; frozen leaves get zero gradients."""
    grad_fn = jax.value_and_grad(loss_of)
    if k == 1:
        return grad_fn(params, batch, rng)
    trains = jax.tree_util.tree_map(lambda l: l == "train", labels)
    select = lambda g, t: g if t else jnp.zeros((), g.dtype)

    def body(acc, inputs):
        i, micro = inputs
        loss, grads = grad_fn(params, micro, jax.random.fold_in(rng, i))
        grads = jax.tree_util.tree_map(select, grads, trains)
        return jax.tree_util.tree_map(jnp.add, acc, (loss, grads)), None

    zero = (
        jnp.zeros((), jnp.float32),
        jax.tree_util.tree_map(lambda p, t: select(jnp.zeros_like(p, jnp.float32), t), params, trains),
    )
    (loss, grads), _ = jax.lax.scan(body, zero, (jnp.arange(k), micro_batches(batch, k)))
    grads = jax.tree_util.tree_map(
        lambda g, p, t: (g / k).astype(p.dtype) if t else jnp.zeros_like(p), grads, params, trains
    )
    return loss / k, grads


def make_train_step(
    model: DiffusionModel,
    sched: Schedule,
    diffusion: Mapping[str, Any],
    tx,
    lr_schedule: optax.Schedule,
    labels: Any,
    ema_decay: float,
    seed: int,
    ssr: Mapping[str, Any] | None = None,
    mask_mixture: Mapping[str, float] | None = None,
    grad_accum_steps: int = 1,
    known_loss_weight: float = 0.0,
) -> Callable[[TrainState, Mapping[str, jax.Array]], tuple[TrainState, dict]]:
    """(state, batch) -> (state, metrics). The step's randomness is fold_in(seed, step).

    With `grad_accum_steps` = k > 1 the batch is split into k micro-batches inside the step
    (`accumulated_value_and_grad`) and their mean gradient makes one update.

    A non-finite loss or gradient norm leaves the state untouched except the step
    counter, and reports `finite = False`: the host stops the run there (before any
    checkpoint of a poisoned state can be written)."""
    base_key = jax.random.PRNGKey(seed)
    if grad_accum_steps < 1:
        raise ValueError(f"grad_accum_steps must be >= 1, got {grad_accum_steps}")

    def loss_of(params, batch, rng):
        return loss_fn(model, sched, diffusion, params, batch, rng, ssr, mask_mixture, known_loss_weight)

    def train_step(state: TrainState, batch: Mapping[str, jax.Array]):
        rng = jax.random.fold_in(base_key, state.step)
        loss, grads = accumulated_value_and_grad(loss_of, state.params, batch, rng, grad_accum_steps, labels)
        # Norm of what trains only (frozen gradients are then dead code XLA removes).
        trained = jax.tree_util.tree_map(lambda g, l: g if l == "train" else jnp.zeros((), g.dtype), grads, labels)
        grad_norm = optax.tree.norm(trained)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

        def update(old):
            params, opt_state, ema = old
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            decay = ema_decay_at(state.step, ema_decay)
            # A frozen leaf never moves, so its EMA stays what it is (decay * p + (1 - decay) * p drifted
            # by rounding, and compiled one more fused loop per frozen leaf).
            ema = jax.tree_util.tree_map(
                lambda e, p, l: decay * e + (1.0 - decay) * p if l == "train" else e, ema, params, labels
            )
            return params, opt_state, ema

        # A non-finite step leaves parameters, optimiser state and EMA as they were: one conditional, not a
        # select per leaf and state (those, with the copies they needed, were a tenth of the compile time)
        params, opt_state, ema = jax.lax.cond(
            finite, update, lambda old: old, (state.params, state.opt_state, state.ema_params)
        )
        new_state = TrainState(step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema)
        metrics = {"loss": loss, "grad_norm": grad_norm, "lr": lr_schedule(state.step), "finite": finite}
        return new_state, metrics

    return train_step
