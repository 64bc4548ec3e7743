"""The training loop. Stages: `t2i` (pre-train the spatial U-Net on frames), `video` (inflate a
T2I checkpoint into a STUNet and train its temporal layers), `ssr_image` (pre-train the
super-resolution U-Net on frames), `ssr` (inflate it for video windows) and `conditional`
(expand a video checkpoint to the 7-channel masked-conditioning model and fine-tune it).

Resuming is automatic: if `<workdir>/checkpoints` holds a finished checkpoint, the run
continues from it. Batches depend only on (seed, step) and the step's randomness on
fold_in(seed, step), so a run killed at any point and restarted with the same command
ends with the same parameters as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lumiere_jax import config as config_lib, runtime
from lumiere_jax.data import input_pipeline, sources
from lumiere_jax.diffusion import schedules
from lumiere_jax.models import build
from lumiere_jax.models.diffusion_model import DiffusionModel, expand_input_channels
from lumiere_jax.parallel import mesh as mesh_lib, sharding
from lumiere_jax.train import checkpoint, optim, state as state_lib, step as step_lib, validation, workdir_lock
from lumiere_jax.train.metrics import MetricWriter, format_metrics

log = logging.getLogger(__name__)
BATCH_KEYS = ("video", "image", "text_ids", "text_mask", "text_emb")


class NonFiniteError(FloatingPointError):
    """Raised when a step produced a NaN/Inf loss or gradient."""


def config_json(config: ml_collections.ConfigDict) -> dict:
    return json.loads(config.to_json())


def initial_params(config: ml_collections.ConfigDict, model: DiffusionModel) -> Any:
    """Fresh parameters; or, with config.train.init_from, either a warm start from a checkpoint of
    this stage with the same config.model (parameters copied; optimizer and step start fresh) or
    the conversion of the checkpoint of the stage before (`config.INIT_STAGE`): an image model
    inflated into a video one (t2i -> video, ssr_image -> ssr), or a video model's input
    convolution expanded for the conditioning channels (video -> conditional; zero weights, so the
    converted model computes what the video model did)."""
    rng = jax.random.PRNGKey(config.train.seed)
    if not config.train.init_from:
        if model.pretrained_text:
            fresh = runtime.jit_once(lambda r: model.init(r, text_encoder=False))(rng)
            return {**fresh, "text_encoder": load_t5(config, model)}
        return runtime.jit_once(model.init)(rng)
    params, stored = checkpoint.load(config.train.init_from)
    stage, want = stored.get("stage"), config_lib.INIT_STAGE.get(config.stage)
    if stage == config.stage:
        if not same_model(stored, config_json(config)):
            raise ValueError(
                f"config.train.init_from={config.train.init_from!r} is a {stage!r} checkpoint with "
                "a different config.model; it cannot warm-start this run"
            )
        log.info("warm start from the %s checkpoint %s", stage, config.train.init_from)
        return params
    if want is None or stage != want:
        inflates = f"starts from a {want!r} checkpoint or " if want else ""
        raise ValueError(
            f"config.train.init_from={config.train.init_from!r} is a {stage!r} checkpoint; "
            f"stage {config.stage!r} {inflates}warm-starts from a {config.stage!r} one"
        )
    if model.config.conditioning == "masked":
        unconditional = model.config.replace(
            conditioning="none",
            stunet=dataclasses.replace(
                model.config.stunet, unet=dataclasses.replace(model.config.stunet.unet, in_channels=3)
            ),
        )
        if build.model_config(stored) != unconditional:
            raise ValueError(
                f"config.train.init_from={config.train.init_from!r}: its config.model differs from "
                "this run's in more than the input channels; the conditional model must have the "
                "video model's architecture"
            )
        log.info(
            "expanding the input convolution of %s to %d channels",
            config.train.init_from,
            model.config.stunet.unet.in_channels,
        )
        return expand_input_channels(params, model.config.stunet.unet.in_channels)
    log.info("inflating %s parameters from %s", want, config.train.init_from)
    return model.inflate(params, rng)


def starting_params(config: ml_collections.ConfigDict, model: DiffusionModel) -> Any:
    """What a new run starts from: `initial_params` when anything is loaded (a checkpoint to
    convert or warm-start from, or a pretrained T5), else None: fresh random parameters, which
    `sharding.init_state` creates directly in their shardings."""
    if config.train.init_from or model.pretrained_text:
        return initial_params(config, model)
    return None


def load_t5(config: ml_collections.ConfigDict, model: DiffusionModel) -> Any:
    """The pretrained T5's parameters from config.model.t5.checkpoint (its config.json must
    describe config.model.t5's architecture)."""
    import os
    from lumiere_jax.models import t5_checkpoint

    path = os.path.expanduser(config.model.t5.checkpoint)
    if not path:
        raise ValueError(
            "model.text_source='t5' starts from pretrained weights: set config.model.t5.checkpoint "
            "to a transformers T5EncoderModel directory (DeepFloyd IF: <IF repo>/text_encoder)"
        )
    log.info("loading the T5 text encoder from %s", path)
    params, _ = t5_checkpoint.load(path, model.config.text_encoder)
    return jax.tree_util.tree_map(jnp.asarray, params)


def same_model(stored: dict, current: dict) -> bool:
    """Same architecture, compared as typed model configs: a config stored by an older version
    lacks newer (default-valued) fields, which a dict comparison would call a difference."""
    try:
        return build.model_config(stored) == build.model_config(current)
    except (ValueError, KeyError):
        return False


def _check_resume_config(stored: dict, current: dict) -> None:
    defaults = config_lib.default_config().diffusion.to_dict()
    same = {
        "stage": stored.get("stage") == current["stage"],
        # diffusion keys added later (e.g. variance_type) take their defaults in older checkpoints
        "diffusion": {**defaults, **stored.get("diffusion", {})} == {**defaults, **current["diffusion"]},
        "model": same_model(stored, current),
    }
    for section, ok in same.items():
        if not ok:
            keys = _differing_keys(stored.get(section), current.get(section), f"config.{section}")
            raise ValueError(
                f"the workdir's checkpoint was trained with a different config.{section} ("
                f"{', '.join(keys[:8]) or 'its typed form differs'}); use a new --workdir or the "
                "original config"
            )


def _differing_keys(old: Any, new: Any, prefix: str) -> list[str]:
    """Dotted keys whose values differ between two nested dicts (keys only one of them has are
    skipped: a config stored by an older version lacks newer, default-valued keys)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            k for key in sorted(set(old) & set(new)) for k in _differing_keys(old[key], new[key], f"{prefix}.{key}")
        ]
    norm = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731
    return [] if norm(old) == norm(new) else [f"{prefix}: {old!r} -> {new!r}"]


def _resume(ckpt: checkpoint.Checkpointer, abstract_state: Any, cfg_json: dict) -> state_lib.TrainState:
    """The newest checkpoint that restores. One that does not (a damaged file) is skipped loudly and
    set aside (moved to <workdir>/checkpoints_damaged/, never deleted) so the run can go on past its
    step; a checkpoint of another config raises the project's message before any state is read."""
    skipped = []
    for step in reversed(ckpt.all_steps()):
        try:
            stored = ckpt.restore_config(step)
        except Exception as e:  # noqa: BLE001 -- any failure to read it means: damaged
            skipped.append((step, e))
            continue
        _check_resume_config(stored, cfg_json)
        try:
            state, _ = ckpt.restore(step, abstract_state)
        except Exception as e:  # noqa: BLE001
            skipped.append((step, e))
            continue
        for bad, err in skipped:
            where = ckpt.set_aside(bad)
            log.warning(
                "checkpoint step %d in %s did not restore (%s: %s); moved to %s; resuming from step %d",
                bad,
                ckpt.directory,
                type(err).__name__,
                str(err).splitlines()[0][:300],
                where,
                step,
            )
        log.info("resumed from %s at step %d", ckpt.directory, step)
        return state
    errors = "; ".join(f"step {s}: {type(e).__name__}: {str(e).splitlines()[0][:200]}" for s, e in skipped)
    raise RuntimeError(
        f"no checkpoint in {ckpt.directory} restores ({errors}); nothing was deleted. Move "
        f"{ckpt.directory} aside to start over, or restore the damaged files"
    )


SampleFn = Callable[[ml_collections.ConfigDict, DiffusionModel, Any, str, int, MetricWriter], None]


def train(config: ml_collections.ConfigDict, workdir: str, sample_fn: SampleFn | None = None) -> state_lib.TrainState:
    """Trains `config` in `workdir` (resuming its newest checkpoint). Every `config.train.sample_every`
    steps, `sample_fn(config, model, ema_params, workdir, step, writer)` writes samples (the sampling
    layer's `sampling.write_training_samples`, which the CLI passes: training does not import sampling)."""
    model_cfg = validation.validate(config)
    # periodic samples: unconditional models only (conditional ones need inputs), single-process runs only
    writes_samples = bool(config.train.sample_every and model_cfg.conditioning == "none" and jax.process_count() == 1)
    if writes_samples and sample_fn is None:
        raise ValueError(
            f"config.train.sample_every={config.train.sample_every} needs a sample_fn "
            "(e.g. lumiere_jax.sampling.write_training_samples); or set config.train.sample_every=0"
        )
    if (
        model_cfg.kind == "video"
        and not config.train.init_from
        and not config.train.train_spatial
        and not config.train.trainable
    ):
        raise ValueError(
            f"stage {config.stage!r} freezes the spatial U-Net, so it needs config.train.init_from "
            f"(a {config_lib.INIT_STAGE[config.stage]!r} workdir or export); or set "
            "config.train.train_spatial=True to train from scratch"
        )
    mesh, rules = mesh_lib.make_mesh(config.mesh), mesh_lib.rules(config.mesh)
    mesh_lib.batch_size_per_shard(mesh, int(config.data.global_batch))
    with workdir_lock.held(workdir, enabled=jax.process_index() == 0):
        return _train(config, workdir, sample_fn, model_cfg, writes_samples, mesh, rules)


def train_step_fn(config: ml_collections.ConfigDict, model: DiffusionModel) -> tuple:
    """(optimizer, the train step unjitted) of a run of `config`: `train_step_of` jits it over the
    run's mesh; the multi-device parity test compares it under plain `jax.jit`."""
    abstract_params = model.abstract_params()
    labels = model.trainable_labels(abstract_params, config.train.train_spatial, tuple(config.train.trainable))
    tx, lr_schedule = optim.make_optimizer(
        config.optim,
        int(config.train.num_steps),
        labels,
        optim.multiplier_tree(abstract_params, tuple(config.optim.lr_multipliers)),
    )
    step = step_lib.make_train_step(
        model,
        schedules.get_schedule(config.diffusion.schedule),
        config.diffusion,
        tx,
        lr_schedule,
        labels,
        float(config.train.ema_decay),
        int(config.train.seed),
        ssr=config.ssr.to_dict(),
        mask_mixture=config.conditional.mixture.to_dict(),
        known_loss_weight=float(config.conditional.known_loss_weight),
        grad_accum_steps=int(config.train.get("grad_accum_steps", 1)),
    )
    return tx, step


def train_step_of(config: ml_collections.ConfigDict, model: DiffusionModel, mesh, rules) -> tuple:
    """(optimizer, the jitted train step, the abstract state, its shardings) of a run of `config`:
    what `train` steps with (tests build it here, so they check the program a run compiles and get it
    from the persistent compilation cache)."""
    tx, step = train_step_fn(config, model)
    # Shardings of the whole state from the parameters' logical axes; the state is created or
    # restored directly in them (a checkpoint from another mesh is resharded on restore).
    abstract_state, state_shardings = sharding.state_shardings(model, tx, mesh, rules, state_lib.create)
    return tx, sharding.jit_train_step(step, mesh, rules, state_shardings), abstract_state, state_shardings


def _train(config, workdir, sample_fn, model_cfg, writes_samples, mesh, rules) -> state_lib.TrainState:
    model = DiffusionModel(model_cfg)
    cfg_json = config_json(config)
    num_steps = int(config.train.num_steps)
    ckpt = checkpoint.Checkpointer(
        workdir, keep=config.train.keep_checkpoints, async_save=config.train.async_checkpoints
    )
    tx, train_step, abstract_state, state_shardings = train_step_of(config, model, mesh, rules)
    if ckpt.all_steps():
        train_state = _resume(ckpt, abstract_state, cfg_json)
    else:
        train_state = sharding.init_state(
            model,
            tx,
            jax.random.PRNGKey(config.train.seed),
            state_shardings,
            state_lib.create,
            starting_params(config, model),
        )
    start = int(train_state.step)
    log.info("mesh %s over %d devices, %d process(es)", dict(mesh.shape), mesh.size, jax.process_count())

    batch_spec = sharding.batch_sharding(mesh).spec
    # XLA:CPU collectives can deadlock with many multi-device steps in flight: block on each there.
    block_each_step = mesh.size > 1 and jax.devices()[0].platform == "cpu"
    pipeline = sources.make_pipeline(config, model_cfg)
    writer = MetricWriter(workdir, enabled=jax.process_index() == 0)
    progress = _progress(start, num_steps, config.train.progress)
    pending: list[tuple[int, dict]] = []
    t_last, s_last = time.time(), start

    def flush_metrics(step: int) -> None:
        """Fetch the metrics of all steps since the last flush; stop on a non-finite one."""
        nonlocal t_last, s_last
        fetched = jax.device_get(pending)
        if pending:
            progress.update(1)  # the last pending step, now finished
        pending.clear()
        for s, m in fetched:
            if not bool(m["finite"]):
                raise NonFiniteError(
                    f"non-finite loss or gradient at step {s} (loss={float(m['loss'])}, "
                    f"grad_norm={float(m['grad_norm'])}); stopped. The last good checkpoint in "
                    f"{ckpt.directory} (step {ckpt.latest_step()}) is kept."
                )
        if not fetched:
            return
        dt = max(time.time() - t_last, 1e-9)
        m = {k: float(np.mean([f[1][k] for f in fetched])) for k in ("loss", "grad_norm")}
        m["lr"] = float(fetched[-1][1]["lr"])
        m["steps_per_sec"] = (step - s_last) / dt
        m["examples_per_sec"] = m["steps_per_sec"] * config.data.global_batch
        t_last, s_last = time.time(), step
        writer.scalars(step, m)
        progress.set_postfix(loss=f"{m['loss']:.4f}", refresh=False)
        log.info(format_metrics(step, m))

    try:
        with pipeline.iterate(start_step=start, num_steps=num_steps - start) as batches:
            for step, batch in zip(range(start, num_steps), batches):
                # This process's slice of the global batch -> global arrays split over (data, fsdp).
                device_batch = input_pipeline.to_global(
                    {k: v for k, v in batch.items() if k in BATCH_KEYS}, mesh, batch_spec
                )
                train_state, metrics = train_step(train_state, device_batch)
                if block_each_step:
                    jax.block_until_ready(metrics)
                pending.append((step, metrics))
                done = step + 1
                if len(pending) > 1:  # the bar counts finished steps: the previous one, kept one in flight
                    jax.block_until_ready(pending[-2][1])
                    progress.update(1)
                is_ckpt = done % config.train.checkpoint_every == 0 or done == num_steps
                if done % config.train.log_every == 0 or is_ckpt:
                    flush_metrics(done)
                if is_ckpt:
                    ckpt.save(done, train_state, cfg_json)
                if writes_samples and done % config.train.sample_every == 0:
                    sample_fn(config, model, train_state.ema_params, workdir, done, writer)
        flush_metrics(num_steps)
    finally:
        progress.close()
        writer.close()
        ckpt.close()
    return train_state


def _progress(start: int, total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc="train", disable=not enabled, dynamic_ncols=True)
