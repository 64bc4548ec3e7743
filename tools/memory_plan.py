r"""Memory plan: compile the train step for a mesh on abstract inputs, without running it.

  python tools/memory_plan.py --config=configs/base.py --mesh=1,8,1 --remat=full
  python tools/memory_plan.py --config=configs/ssr.py:ssr --mesh=1,16,1 --per_shard_batch=1 --json=plan.jsonl

The train step of `lumiere_jax.train` (the trainer's shardings: state from the parameters' logical
axes, batch over data x fsdp) is lowered and compiled for a data x fsdp x tensor mesh of host CPU
devices (`--xla_force_host_platform_device_count`, set here before JAX starts) on
`jax.ShapeDtypeStruct` inputs: no parameter or activation is ever allocated. Reported per device:
parameters, optimizer state and EMA (from the shardings), and XLA's `memory_analysis()` of the
compiled step (arguments, outputs, temporaries = activations and workspace, donated aliases) and
`cost_analysis()` FLOPs. The estimated peak is arguments + temporaries + outputs - aliased. Also the
saved activations: what autodiff keeps between forward and backward under the remat policy for
one device's examples (`lumiere_jax.train.activations`), independent of the compiler's schedule.

The XLA:CPU compiler's buffer assignment is a proxy for an accelerator's (fusion and layouts
differ; on GPU/TPU run it with JAX_PLATFORMS set to that backend and a real device count to get the
target compiler's numbers). `--remat` sets the config's rematerialisation policy field
(`config.model.remat`) where this checkout has one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GB = 1e9


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="configs/FILE.py[:arg]")
    p.add_argument("--mesh", default="1,1,1", help="data,fsdp,tensor sizes (their product = devices)")
    p.add_argument("--remat", default=None, help="config.model.remat value (none, full, dots_saveable, ...)")
    p.add_argument("--per_shard_batch", type=int, default=1, help="examples per data x fsdp shard")
    p.add_argument("--train_spatial", action="store_true", help="video stages: train the spatial U-Net too")
    p.add_argument("--dtype", default=None, help="override config.model.unet.dtype (float32 / bfloat16)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="other config overrides (python literals), repeatable",
    )
    p.add_argument("--json", default=None, help="append the result as a JSON line to this file")
    args = p.parse_args(argv)
    args.mesh_shape = tuple(int(s) for s in args.mesh.split(","))
    if len(args.mesh_shape) != 3 or min(args.mesh_shape) < 1:
        p.error(f"--mesh takes three positive sizes data,fsdp,tensor, got {args.mesh!r}")
    return args


def set_remat(config, value: str) -> str:
    """Set the remat policy field; ValueError if this checkout's config has none."""
    for section in ("model", "train"):
        if "remat" in config[section]:
            with config.unlocked():
                config[section].remat = value
            return f"{section}.remat"
    raise ValueError(
        "--remat: this checkout's config has no remat policy field (config.model.remat, added "
        "with the precision/remat part of issue 6); run without --remat"
    )


def build_config(args):
    import ast
    from lumiere_jax import config as config_lib

    path, _, arg = args.config.partition(":")
    config = config_lib.load_config_file(path if os.path.isabs(path) else os.path.join(ROOT, path), arg or None)
    with config.unlocked():
        config.train.init_from = ""  # the plan needs no checkpoint
    config.mesh.ici_data, config.mesh.ici_fsdp, config.mesh.ici_tensor = args.mesh_shape
    config.mesh.dcn_data = config.mesh.dcn_fsdp = config.mesh.dcn_tensor = 1
    config.data.global_batch = args.per_shard_batch * args.mesh_shape[0] * args.mesh_shape[1]
    if args.train_spatial:
        config.train.train_spatial = True
    if args.dtype:
        config.model.unet.dtype = args.dtype
    remat_field = set_remat(config, args.remat) if args.remat is not None else None
    for item in args.set:
        key, _, value = item.partition("=")
        section, field = key.split(".", 1)
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
        config[section][field] = value
    return config, remat_field


def abstract_batch(config, model_cfg, sharding):
    """ShapeDtypeStructs of one global batch as the data pipeline delivers it."""
    import jax
    import jax.numpy as jnp

    b = int(config.data.global_batch)
    r, t = model_cfg.resolution, int(config.data.num_frames or model_cfg.num_frames)
    sds = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)
    batch = (
        {"image": sds((b, r, r, 3), jnp.float32)}
        if model_cfg.kind == "image"
        else {"video": sds((b, t, r, r, 3), jnp.float32)}
    )
    length = model_cfg.text_length
    batch["text_mask"] = sds((b, length), jnp.bool_)
    if model_cfg.text_encoder is None:
        batch["text_emb"] = sds((b, length, model_cfg.stunet.unet.text_dim), jnp.float32)
    else:
        batch["text_ids"] = sds((b, length), jnp.int32)
    return batch


def per_device_bytes(tree) -> int:
    import jax

    return sum(math.prod(x.sharding.shard_shape(x.shape)) * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree))


def saved_activations_per_device(model, config, model_cfg, abstract_params, labels, per_shard_batch: int):
    """What autodiff keeps between forward and backward for one device's examples (the batch is
    the only activation axis split by the default rules, so a device holds `per_shard_batch`
    examples' worth; a tensor axis splits some of it further, which this does not count), under the
    config's remat policy, differentiating the trained parameters only (as the train step does)."""
    import jax
    from lumiere_jax.diffusion import schedules
    from lumiere_jax.train import activations, step as step_lib

    with config.unlocked():
        local = config.copy_and_resolve_references()
    local.data.global_batch = per_shard_batch
    batch = abstract_batch(local, model_cfg, None)
    flat, treedef = jax.tree_util.tree_flatten(abstract_params)
    train_idx = [i for i, l in enumerate(jax.tree_util.tree_leaves(labels)) if l == "train"]
    frozen_idx = [i for i in range(len(flat)) if i not in set(train_idx)]
    sched = schedules.get_schedule(config.diffusion.schedule)

    def loss(trained, frozen, batch):
        leaves = [None] * len(flat)
        for i, x in zip(train_idx, trained):
            leaves[i] = x
        for i, x in zip(frozen_idx, frozen):
            leaves[i] = x
        return step_lib.loss_fn(
            model,
            sched,
            config.diffusion,
            jax.tree_util.tree_unflatten(treedef, leaves),
            batch,
            jax.random.PRNGKey(0),
            config.ssr.to_dict(),
            config.conditional.mixture.to_dict(),
        )

    return activations.saved_activations(
        loss, [flat[i] for i in train_idx], [flat[i] for i in frozen_idx], batch, argnums=(0,)
    )


def plan(args) -> dict:
    import jax
    from lumiere_jax.models.diffusion_model import DiffusionModel
    from lumiere_jax.parallel import mesh as mesh_lib, sharding
    from lumiere_jax.train import trainer, validation

    config, remat_field = build_config(args)
    model_cfg = validation.validate(config)
    model = DiffusionModel(model_cfg)
    mesh, rules = mesh_lib.make_mesh(config.mesh), mesh_lib.rules(config.mesh)
    abstract_params = model.abstract_params()
    labels = model.trainable_labels(abstract_params, config.train.train_spatial, tuple(config.train.trainable))
    # the program a run of this config compiles (learning-rate multipliers, gradient accumulation and
    # the conditional loss weight included)
    _, step, state, _ = trainer.train_step_of(config, model, mesh, rules)
    batch = abstract_batch(config, model_cfg, sharding.batch_sharding(mesh))
    saved = saved_activations_per_device(model, config, model_cfg, abstract_params, labels, args.per_shard_batch)
    t0 = time.time()
    lowered = step.lower(state, batch)
    t1 = time.time()
    compiled = lowered.compile()
    t2 = time.time()
    mem = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(abstract_params))
    n_train = sum(
        x.size
        for x, l in zip(jax.tree_util.tree_leaves(abstract_params), jax.tree_util.tree_leaves(labels))
        if l == "train"
    )
    out = {
        "config": args.config,
        "stage": config.stage,
        "mesh": dict(mesh.shape),
        "devices": mesh.size,
        "remat": args.remat,
        "remat_field": remat_field,
        "dtype": config.model.unet.dtype,
        "global_batch": int(config.data.global_batch),
        "per_shard_batch": args.per_shard_batch,
        "frames": model_cfg.num_frames,
        "resolution": model_cfg.resolution,
        "params": n_params,
        "trainable_params": n_train,
        "per_device_gb": {
            "params": per_device_bytes(state.params) / GB,
            "opt_state": per_device_bytes(state.opt_state) / GB,
            "ema": per_device_bytes(state.ema_params) / GB,
            "batch": per_device_bytes(batch) / GB,
            "arguments": mem.argument_size_in_bytes / GB,
            "outputs": mem.output_size_in_bytes / GB,
            "aliased": mem.alias_size_in_bytes / GB,
            "temporaries": mem.temp_size_in_bytes / GB,
            "peak_estimate": (
                mem.argument_size_in_bytes + mem.temp_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes
            )
            / GB,
            "saved_activations": saved.nbytes / GB,
            "state_plus_saved": (per_device_bytes(state) + per_device_bytes(batch) + saved.nbytes) / GB,
        },
        "largest_saved": [{"source": src, "count": n, "gb": b / GB} for src, n, b in saved.largest(8)],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "flops_per_device": float(cost.get("flops", float("nan"))) if cost else None,
        "lower_s": round(t1 - t0, 1),
        "compile_s": round(t2 - t1, 1),
        "backend": jax.default_backend(),
    }
    return out


def main(argv=None):
    args = parse_args(argv)
    n = math.prod(args.mesh_shape)
    if "jax" in sys.modules:
        raise RuntimeError("memory_plan must set the device count before JAX is imported")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if os.environ["JAX_PLATFORMS"] == "cpu":
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "force_host_platform_device_count" not in f]
        if not any("xla_cpu_scheduler_type" in f for f in flags):
            # The default CPU scheduler favours concurrency and runs rematerialised recomputation
            # early (base, full remat: 219 GB temporaries vs 107 GB with this one).
            flags.append("--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED")
        os.environ["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={n}"])
    sys.path.insert(0, ROOT)
    try:
        result = plan(args)
    except ValueError as e:
        raise SystemExit(f"memory_plan: {e}")
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({**result, "date": time.strftime("%Y-%m-%d")}) + "\n")
    return result


if __name__ == "__main__":
    main()
