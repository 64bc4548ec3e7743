r"""Peak memory of one SSR MultiDiffusion sampling step vs. video length and chunk size.

Lumiere §3.2 / App. C: the spatial super-resolution (SSR) model runs on overlapping temporal
windows; the pipeline evaluates ``chunk_size`` windows per batched model call
(``jax.lax.map(..., batch_size=chunk_size)``, 0 = all windows in one vmapped call). With a fixed
chunk size, the working memory of a step is one chunk of window activations plus O(video size)
buffers (the video, its conditioning, the window stack), whatever the number of frames; with
chunk = all it grows with the number of windows.

This benchmark measures exactly the function users run: it builds ``sampling.Generator`` on
ABSTRACT parameters (``jax.eval_shape(model.init, key)``, never materialised) and lowers and
compiles ``Generator._ssr_step_fn(...)`` (the jitted per-step function of
``Generator.upsample``) on ``jax.ShapeDtypeStruct`` inputs, batch 1, for every
(frames, chunk size, guidance scale), then reports XLA's ``compiled.memory_analysis()``. Nothing
is executed. Guidance scale 3.0 runs classifier-free guidance, which doubles the batch inside
the model call.

Command (about a minute or two of compiling on a 2-core CPU)::

    JAX_PLATFORMS=cpu .venv/bin/python bench/ssr_memory.py \
        --config=configs/moving_shapes.py --config_arg=ssr --frames=16,64 --chunks=1,2,0 --scales=1.0,3.0

The persistent compilation cache is off unless ``--compilation_cache`` (then ``compile_s`` would
time a cache hit). Writes ``docs/figures/ssr_memory.json`` (``--out``) and appends one JSON line (name
"ssr_memory") to ``bench/results.jsonl``.
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
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lumiere_jax import config as config_lib
from lumiere_jax.train import validation
from lumiere_jax import runtime, sampling
from lumiere_jax.diffusion import multidiffusion as md
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.train import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 2.0**20
FIELDS = (
    "temp_size_in_bytes",
    "argument_size_in_bytes",
    "output_size_in_bytes",
    "alias_size_in_bytes",
    "generated_code_size_in_bytes",
)


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


def _floats(s: str) -> list[float]:
    return [float(v) for v in s.split(",") if v.strip()]


def build_generator(config_path: str, config_arg: str | None) -> sampling.Generator:
    """A Generator over abstract (ShapeDtypeStruct) parameters: enough to lower its step."""
    config = config_lib.load_config_file(config_path, config_arg)
    model_cfg = validation.validate(config)
    if model_cfg.conditioning != "low_res" or model_cfg.kind != "video":
        raise ValueError(f"{config_path}:{config_arg} is not a video super-resolution config (stage 'ssr')")
    model = DiffusionModel(model_cfg)
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    return sampling.Generator(model, params, trainer.config_json(config))


def abstract_step_inputs(gen: sampling.Generator, num_frames: int, layout: md.WindowLayout, batch: int = 1):
    """The arguments of `Generator._ssr_step_fn(...)` as in `Generator._upsample_batch`, abstract."""
    cfg = gen.model.config
    sampler = gen.sampler(gen.settings())
    sds = jax.ShapeDtypeStruct
    x = sds((batch, num_frames, cfg.resolution, cfg.resolution, cfg.sample_channels), jnp.float32)
    cond = sds((batch, num_frames, cfg.resolution, cfg.resolution, cfg.cond_channels), jnp.float32)
    state = jax.eval_shape(lambda x: md.init_multidiffusion_state(sampler, x, layout), x)
    ids, mask = gen.tokenizer(["a red square moving left"] * batch)
    ctx = jax.eval_shape(gen._context, gen.params, sds(ids.shape, ids.dtype), sds(mask.shape, mask.dtype))
    keys = jax.eval_shape(lambda: jnp.stack([jax.random.fold_in(jax.random.PRNGKey(i), 2) for i in range(batch)]))
    aug = sds((batch,), jnp.int32)
    weights = sds((layout.num_windows, layout.window), jnp.float32)
    i = sds((), jnp.int32)
    return sampler, (sampler, (gen.params, ctx, aug), x, state, i, keys, (cond,), weights)


def measure(gen: sampling.Generator, num_frames: int, chunk: int, scale: float, batch: int = 1) -> dict[str, Any]:
    """Lower + compile one SSR step; memory_analysis() fields (bytes) and timings."""
    cfg = gen.model.config
    ssr = gen.ssr_settings()
    window = int(ssr["window"]) or cfg.num_frames
    layout = md.window_layout(num_frames, window, int(ssr["overlap"]))
    sampler, args = abstract_step_inputs(gen, num_frames, layout, batch)
    step = gen._ssr_step_fn((float(scale), None), layout, int(chunk) or None)
    t0 = time.perf_counter()
    lowered = step.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    mem = compiled.memory_analysis()
    row = {
        "frames": num_frames,
        "num_windows": layout.num_windows,
        "window_starts": list(layout.starts),
        "chunk_size": int(chunk) or "all",
        "guidance_scale": float(scale),
        "batch": batch,
        "video_bytes": int(np.prod(args[2].shape)) * 4,
        "lower_s": round(t1 - t0, 2),
        "compile_s": round(t2 - t1, 2),
    }
    for f in FIELDS:
        row[f] = None if mem is None else int(getattr(mem, f, -1))
    return row


def per_window_bytes(rows: list[dict], scale: float) -> float | None:
    """Temp memory one extra window costs when all windows run at once: from the longest video,
    (temp[chunk=all] - temp[chunk=1]) / (num_windows - 1)."""
    rs = [r for r in rows if r["guidance_scale"] == scale and r["temp_size_in_bytes"] is not None]
    if not rs:
        return None
    t = max(r["frames"] for r in rs)
    by_chunk = {r["chunk_size"]: r for r in rs if r["frames"] == t}
    if "all" not in by_chunk or 1 not in by_chunk or by_chunk["all"]["num_windows"] < 2:
        return None
    a, one = by_chunk["all"], by_chunk[1]
    return (a["temp_size_in_bytes"] - one["temp_size_in_bytes"]) / (a["num_windows"] - 1)


def summarize(rows: list[dict]) -> list[dict]:
    """Growth of temp memory from the shortest to the longest video, per (scale, chunk), in
    bytes, in units of the extra video size, and in units of one window's activations."""
    out = []
    for scale in sorted({r["guidance_scale"] for r in rows}):
        pw = per_window_bytes(rows, scale)
        for chunk in dict.fromkeys(r["chunk_size"] for r in rows):
            rs = sorted(
                (r for r in rows if r["guidance_scale"] == scale and r["chunk_size"] == chunk),
                key=lambda r: r["frames"],
            )
            if len(rs) < 2 or rs[0]["temp_size_in_bytes"] is None:
                continue
            a, b = rs[0], rs[-1]
            out.append(
                {
                    "guidance_scale": scale,
                    "chunk_size": chunk,
                    "frames": [a["frames"], b["frames"]],
                    "windows": [a["num_windows"], b["num_windows"]],
                    "temp_growth_bytes": b["temp_size_in_bytes"] - a["temp_size_in_bytes"],
                    "temp_ratio": b["temp_size_in_bytes"] / max(a["temp_size_in_bytes"], 1),
                    "video_growth_bytes": b["video_bytes"] - a["video_bytes"],
                    "temp_growth_in_videos": (b["temp_size_in_bytes"] - a["temp_size_in_bytes"])
                    / max(b["video_bytes"] - a["video_bytes"], 1),
                    "per_window_bytes": pw,
                    "temp_growth_in_windows": None
                    if not pw
                    else (b["temp_size_in_bytes"] - a["temp_size_in_bytes"]) / pw,
                }
            )
    return out


def table(rows: list[dict]) -> str:
    head = (
        f"{'T':>4} {'win':>4} {'cfg':>4} {'chunk':>5} | {'temp MiB':>9} {'args MiB':>9} {'out MiB':>8} "
        f"{'video MiB':>9} {'temp/video':>10} | {'compile s':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        t = r["temp_size_in_bytes"]
        lines.append(
            f"{r['frames']:>4} {r['num_windows']:>4} {r['guidance_scale']:>4.1f} {str(r['chunk_size']):>5} | "
            f"{t / MIB:>9.2f} {r['argument_size_in_bytes'] / MIB:>9.2f} {r['output_size_in_bytes'] / MIB:>8.2f} "
            f"{r['video_bytes'] / MIB:>9.2f} {t / r['video_bytes']:>10.2f} | {r['compile_s']:>9.1f}"
        )
    return "\n".join(lines)


def run(
    config_path: str = "configs/moving_shapes.py",
    config_arg: str | None = "ssr",
    frames: Sequence[int] = (16, 64),
    chunks: Sequence[int] = (1, 2, 0),
    scales: Sequence[float] = (1.0, 3.0),
    batch: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    gen = build_generator(config_path, config_arg)
    cfg = gen.model.config
    ssr = gen.ssr_settings()
    rows = []
    for scale in scales:
        for t in frames:
            for chunk in chunks:
                rows.append(measure(gen, t, chunk, scale, batch))
                if progress:
                    r = rows[-1]
                    print(
                        f"  T={t} windows={r['num_windows']} cfg={scale} chunk={r['chunk_size']}: "
                        f"temp {r['temp_size_in_bytes'] / MIB:.2f} MiB (compile {r['compile_s']} s)",
                        file=sys.stderr,
                        flush=True,
                    )
    return {
        "config": f"{config_path}:{config_arg}" if config_arg else config_path,
        "model": {
            "resolution": cfg.resolution,
            "low_resolution": cfg.low_resolution,
            "window": int(ssr["window"]) or cfg.num_frames,
            "overlap": int(ssr["overlap"]),
            "sampler": gen.config["sample"]["sampler"],
            "num_params": int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(gen.params))),
        },
        "rows": rows,
        "growth": summarize(rows),
    }


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", default="configs/moving_shapes.py")
    p.add_argument("--config_arg", default="ssr")
    p.add_argument("--frames", default="16,64", help="comma-separated video lengths T")
    p.add_argument("--chunks", default="1,2,0", help="comma-separated chunk sizes (0 = all windows)")
    p.add_argument("--scales", default="1.0,3.0", help="comma-separated guidance scales")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument(
        "--compilation_cache",
        action="store_true",
        help="use the persistent XLA cache (runtime.setup); off by default so compile_s is a real "
        "compile (memory_analysis is the same either way)",
    )
    p.add_argument("--out", default=os.path.join(REPO, "docs", "figures", "ssr_memory.json"))
    p.add_argument(
        "--results_jsonl",
        default=os.path.join(REPO, "bench", "results.jsonl"),
        help="append one JSON line here ('' = don't)",
    )
    args = p.parse_args(argv)
    if args.compilation_cache:
        runtime.setup()
    start = time.time()
    res = run(
        args.config, args.config_arg or None, _ints(args.frames), _ints(args.chunks), _floats(args.scales), args.batch
    )
    wall = time.time() - start
    command = shlex.join(["python", "bench/ssr_memory.py", *(sys.argv[1:] if argv is None else argv)])
    res.update(
        name="ssr_memory",
        command=command,
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        machine=machine(),
        wall_time_s=round(wall, 1),
    )
    print(table(res["rows"]))
    print("\ntemp growth from the shortest to the longest video:")
    for g in res["growth"]:
        print(
            f"  cfg={g['guidance_scale']} chunk={g['chunk_size']}: T {g['frames'][0]}->{g['frames'][1]} "
            f"(windows {g['windows'][0]}->{g['windows'][1]}): temp x{g['temp_ratio']:.2f}, "
            f"+{g['temp_growth_bytes'] / MIB:.2f} MiB = {g['temp_growth_in_videos']:.2f} x extra video"
            + (
                ""
                if g["temp_growth_in_windows"] is None
                else f" = {g['temp_growth_in_windows']:.2f} x one window's activations "
                f"({g['per_window_bytes'] / MIB:.2f} MiB)"
            )
        )
    print(f"wall time {wall:.1f} s")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
        print(f"wrote {args.out}")
    if args.results_jsonl:
        os.makedirs(os.path.dirname(os.path.abspath(args.results_jsonl)), exist_ok=True)
        with open(args.results_jsonl, "a") as f:
            f.write(
                json.dumps(
                    {
                        "name": "ssr_memory",
                        "date": res["date"],
                        "command": res["command"],
                        "machine": res["machine"],
                        "wall_time_s": res["wall_time_s"],
                        "config": res["config"],
                        "rows": res["rows"],
                        "growth": res["growth"],
                    }
                )
                + "\n"
            )
    return res


if __name__ == "__main__":
    main()
