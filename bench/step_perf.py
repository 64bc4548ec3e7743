r"""Train-step and sampling-step performance: step time after compilation, compile time, FLOPs per
step (XLA cost analysis and the analytic count of lumiere_jax/flops.py), MFU, peak memory.

  * train step: `train.step.make_train_step` as the trainer jits it (AdamW, EMA, donation), on a
    random batch of the config's global batch;
  * sampling step: one denoiser call with classifier-free guidance (`guidance.cfg_model_fn`: one
    call on 2B) at a mid timestep, as each step of `sampling.Generator.generate`.

MFU = analytic model FLOPs per step / step time / the device's peak (table below; on a CPU the
"peak" is the measured throughput of a 2048^2 float32 matmul on this machine, run just before,
so the CPU MFU is relative to what XLA:CPU achieves on a plain matmul). Model FLOPs of a train step:
forward + backward through everything (2x forward) + weight gradients of what trains (1x the
forward FLOPs of the trained layers); of a sampling step: the forward on 2B. XLA's count includes
elementwise work (norms, activations, optimizer), and remat recomputation when enabled.

  JAX_PLATFORMS=cpu python bench/step_perf.py --config=configs/bench_gpu.py:cpu --steps=5
  JAX_PLATFORMS=cuda python bench/step_perf.py --config=configs/bench_gpu.py:h100 --steps=20

Overrides: --set model.remat=full --set data.global_batch=16 ... Appends one JSON line (name
"step_perf") to bench/results.jsonl (--results).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from lumiere_jax import config as config_lib  # noqa: E402
from lumiere_jax.train import validation  # noqa: E402
from lumiere_jax import flops as flops_lib  # noqa: E402
from lumiere_jax import runtime  # noqa: E402
from lumiere_jax.diffusion import guidance, schedules  # noqa: E402
from lumiere_jax.models.diffusion_model import DiffusionModel  # noqa: E402
from lumiere_jax.train import optim, state as state_lib, step as step_lib  # noqa: E402

# Dense peak FLOP/s per device (bf16, fp32) from the vendors' data sheets; matched in order against
# `device.device_kind`. fp32 on TPUs runs in bf16 passes: its peak is left out (None).
PEAK_FLOPS = (
    ("H200", 989e12, 67e12),
    ("H100", 989e12, 67e12),  # SXM; PCIe: 756 / 51 TF
    ("A100", 312e12, 19.5e12),
    ("TPU v6 lite", 918e12, None),  # v6e
    ("TPU v5 lite", 197e12, None),  # v5e
    ("TPU v5p", 459e12, None),
    ("TPU v5", 459e12, None),  # v5p reports "TPU v5"
    ("TPU v4", 275e12, None),
)


def peak_flops(device, dtype: str) -> tuple[float | None, str]:
    kind = device.device_kind
    for name, bf16, fp32 in PEAK_FLOPS:
        if name in kind:
            value = bf16 if dtype in ("bfloat16", "float16") else fp32
            return value, f"data sheet ({name}, {dtype})"
    if device.platform == "cpu":
        return measured_matmul_flops(), "measured 2048^2 float32 matmul on this CPU"
    return None, f"unknown device kind {kind!r}"


def measured_matmul_flops(n: int = 2048, reps: int = 5) -> float:
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(reps):
        f(a).block_until_ready()
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def _set(config, assignment: str) -> None:
    key, value = assignment.split("=", 1)
    *path, last = key.split(".")
    node = config
    for p in path:
        node = node[p]
    old = node[last]
    if isinstance(old, bool):
        node[last] = value.lower() in ("1", "true", "yes")
    elif isinstance(old, (int, float, str)):
        node[last] = type(old)(value)
    elif isinstance(old, tuple):
        node[last] = tuple(type(old[0])(v) for v in value.split(",")) if old else tuple(value.split(","))
    else:
        node[last] = json.loads(value)


def _cost(compiled) -> dict:
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return {k: float(cost[k]) for k in ("flops", "transcendentals", "bytes accessed") if k in (cost or {})}


def _memory(compiled) -> dict:
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 -- not every backend reports it
        return {}
    return {
        k: int(getattr(m, k))
        for k in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes", "alias_size_in_bytes")
        if hasattr(m, k)
    }


def _time(fn, args, steps: int, warmup: int = 1, carry: bool = False) -> tuple[float, list[float]]:
    out = None
    for _ in range(warmup):
        out = fn(*args)
        args = (out[0],) + tuple(args[1:]) if carry else args
        jax.block_until_ready(out)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = fn(*args)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t0)
        args = (out[0],) + tuple(args[1:]) if carry else args
    return float(np.median(times)), times


def random_batch(cfg, batch: int, key) -> dict:
    k = jax.random.split(key, 3)
    length, dim = cfg.text_length, cfg.stunet.unet.text_dim
    shape = cfg.sample_shape(batch)
    out = {"video" if cfg.kind == "video" else "image": jax.random.uniform(k[0], shape, minval=-1.0, maxval=1.0)}
    out["text_mask"] = jnp.arange(length)[None] < jnp.maximum(length // 2, 1) + jnp.arange(batch)[:, None]
    if cfg.text_encoder is None:
        out["text_emb"] = jax.random.normal(k[1], (batch, length, dim))
    else:
        out["text_ids"] = jax.random.randint(k[2], (batch, length), 1, cfg.text_encoder.vocab_size)
    return out


def analytic_flops(cfg, batch: int, trained_temporal_only: bool) -> dict:
    net = cfg.stunet if cfg.kind == "video" else cfg.stunet.unet
    frames = cfg.num_frames if cfg.kind == "video" else 1
    fwd = flops_lib.denoiser_flops(
        net, batch=batch, frames=frames, size=cfg.resolution, text_len=cfg.text_length, by_kind=True
    )
    total = sum(fwd.values())
    text = 0
    if cfg.text_encoder is not None:
        te = cfg.text_encoder
        text = flops_lib.text_encoder_flops(te.width, te.depth, te.mlp_ratio, batch=batch, length=cfg.text_length)
    trained = sum(v for k, v in fwd.items() if k.startswith("temporal")) if trained_temporal_only else total + text
    sample = flops_lib.denoiser_flops(
        net, batch=2 * batch, frames=frames, size=cfg.resolution, text_len=cfg.text_length
    )
    return {
        "forward": total,
        "forward_by_kind": fwd,
        "text_encoder_forward": text,
        "train_step": 2 * (total + text) + trained,
        "sample_step": sample,
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/bench_gpu.py:cpu", help="FILE[:ARG]")
    p.add_argument("--set", action="append", default=[], help="config override key=value (repeatable)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--what", default="train,sample")
    p.add_argument("--results", default=os.path.join(REPO, "bench", "results.jsonl"))
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    start = time.time()
    path, _, arg = args.config.partition(":")
    config = config_lib.load_config_file(path, arg or None)
    for s in args.set:
        _set(config, s)
    cfg = validation.validate(config)
    model = DiffusionModel(cfg)
    batch_size = config.data.global_batch
    device = jax.devices()[0]
    dtype = cfg.stunet.unet.dtype
    peak, peak_source = peak_flops(device, dtype)
    key = jax.random.PRNGKey(0)

    params = runtime.jit_once(model.init)(key)  # as the trainer
    n_params = int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(params)))
    labels = model.trainable_labels(params, bool(config.train.train_spatial), tuple(config.train.trainable))
    trained_temporal_only = cfg.kind == "video" and not (config.train.train_spatial or config.train.trainable)
    analytic = analytic_flops(cfg, batch_size, trained_temporal_only)
    sched = schedules.get_schedule(config.diffusion.schedule)
    batch = random_batch(cfg, batch_size, jax.random.fold_in(key, 1))
    rows = {}

    def measure(name, fn, fn_args, model_flops, carry=False, donate=()):
        jitted = jax.jit(fn, donate_argnums=donate)
        t0 = time.perf_counter()
        lowered = jitted.lower(*fn_args)
        t1 = time.perf_counter()
        compiled = lowered.compile()
        t2 = time.perf_counter()
        step_s, times = _time(compiled, fn_args, args.steps, carry=carry)
        xla = _cost(compiled)
        row = {
            "lower_s": round(t1 - t0, 2),
            "compile_s": round(t2 - t1, 2),
            "step_s": step_s,
            "step_times_s": [round(t, 5) for t in times],
            "model_flops": model_flops,
            "xla": xla,
            "xla_flops_over_model_flops": xla["flops"] / model_flops if xla.get("flops") else None,
            "model_tflops_per_s": model_flops / step_s / 1e12,
            "mfu": model_flops / step_s / peak if peak else None,
            "xla_flops_utilisation": xla["flops"] / step_s / peak if peak and xla.get("flops") else None,
            "memory_analysis": _memory(compiled),
        }
        rows[name] = row
        print(
            f"{name}: {step_s * 1e3:.1f} ms/step, compile {row['compile_s']} s, model {model_flops / 1e9:.2f} GFLOP, "
            f"XLA {xla.get('flops', float('nan')) / 1e9:.2f} GFLOP, MFU {row['mfu']}",
            flush=True,
        )

    if "sample" in args.what:
        if cfg.conditioning != "none":
            raise ValueError("the sampling-step benchmark covers unconditioned (text-to-video/image) models")
        x = batch["video" if cfg.kind == "video" else "image"]
        emb = batch.get("text_emb")
        scale = float(config.sample.guidance_scale)

        def sample_step(params, x, emb, mask, ids):
            text = model.encode_text(params, ids, mask) if emb is None else emb
            null = model.null_text(params, x.shape[0])
            fn = guidance.cfg_model_fn(
                lambda x, t, c: model.denoise(params, x, t, c[0], c[1]), (text, mask), null, scale
            )
            return fn(x, jnp.full((x.shape[0],), sched.num_train_timesteps // 2, jnp.int32))

        sample_flops = analytic["sample_step"] + (analytic["text_encoder_forward"] if emb is None else 0)
        measure("sample_step", sample_step, (params, x, emb, batch["text_mask"], batch.get("text_ids")), sample_flops)

    if "train" in args.what:
        tx, lr = optim.make_optimizer(config.optim, int(config.train.num_steps), labels)
        state = state_lib.create(jax.tree_util.tree_map(jnp.copy, params), tx)  # donated below
        step = step_lib.make_train_step(
            model,
            sched,
            config.diffusion,
            tx,
            lr,
            labels,
            float(config.train.ema_decay),
            0,
            ssr=config.ssr.to_dict(),
            mask_mixture=config.conditional.mixture.to_dict(),
            grad_accum_steps=int(config.train.grad_accum_steps),
        )
        measure("train_step", step, (state, batch), analytic["train_step"], carry=True, donate=(0,))
        del state
    stats = device.memory_stats() or {}
    record = {
        "name": "step_perf",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": "python bench/step_perf.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "note": args.note,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "device_kind": device.device_kind,
            "num_devices": jax.device_count(),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "config": args.config,
        "overrides": args.set,
        "batch": batch_size,
        "num_frames": cfg.num_frames,
        "resolution": cfg.resolution,
        "dtype": dtype,
        "param_dtype": cfg.stunet.unet.param_dtype,
        "remat": cfg.stunet.unet.remat,
        "attention_impl": cfg.stunet.unet.attention_impl,
        "grad_accum_steps": int(config.train.grad_accum_steps),
        "num_params": n_params,
        "peak_flops": peak,
        "peak_source": peak_source,
        "analytic_forward_flops": analytic["forward"],
        "analytic_forward_by_kind": analytic["forward_by_kind"],
        "peak_bytes_in_use": stats.get("peak_bytes_in_use"),
        "bytes_limit": stats.get("bytes_limit"),
        "steps": args.steps,
        "wall_time_s": round(time.time() - start, 1),
        **rows,
    }
    with open(args.results, "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


if __name__ == "__main__":
    main()
