r"""FLOPs that temporal down-sampling buys (Lumiere §3.1): the STUNet of a config against the same
network without temporal down-sampling (num_temporal_downsamples=0: every level, the temporal
attention at the coarsest one included, runs at the full frame rate), at several frame counts.

Per (network, frames): the analytic forward FLOPs of lumiere_jax/flops.py (convolutions, dense
layers, attention matmuls) split by kind, and XLA's cost analysis of the forward pass lowered on
abstract inputs (`jax.jit(apply).lower(ShapeDtypeStructs).cost_analysis()`: the HLO before
optimisation, nothing compiled or run, so paper-scale configs take seconds on a CPU).

  JAX_PLATFORMS=cpu python bench/temporal_flops.py --config=configs/base.py --frames=16,80

Appends one JSON line (name "temporal_flops") to bench/results.jsonl (--results).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import sys
import time

import jax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from lumiere_jax import config as config_lib  # noqa: E402
from lumiere_jax.train import validation  # noqa: E402
from lumiere_jax import flops as flops_lib  # noqa: E402
from lumiere_jax.models.stunet import STUNet, dummy_inputs, dummy_kwargs  # noqa: E402


def xla_forward_flops(cfg, frames: int, size: int, text_len: int, batch: int) -> float:
    x, t, text, mask = dummy_inputs(cfg, frames, size, batch=batch, text_len=text_len)
    model = STUNet(cfg)
    kwargs = dummy_kwargs(cfg)
    params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, t, text, mask, **kwargs))
    abstract = lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype)
    args = jax.tree_util.tree_map(abstract, (x, t, text, mask))
    cost = jax.jit(lambda p, *a: model.apply(p, *a, **kwargs)).lower(params, *args).cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0]
    return float(cost["flops"])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/base.py", help="FILE[:ARG]")
    p.add_argument("--frames", default="16,80")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument(
        "--xla",
        default=True,
        action=argparse.BooleanOptionalAction,
        help="also lower each network for XLA's cost analysis",
    )
    p.add_argument("--results", default=os.path.join(REPO, "bench", "results.jsonl"))
    args = p.parse_args(argv)
    start = time.time()
    path, _, arg = args.config.partition(":")
    model_cfg = validation.validate(config_lib.load_config_file(path, arg or None))
    stunet, size, text_len = model_cfg.stunet, model_cfg.resolution, model_cfg.text_length
    flat = dataclasses.replace(stunet, num_temporal_downsamples=0)
    rows = []
    for frames in [int(f) for f in args.frames.split(",")]:
        row = {"frames": frames}
        for name, cfg in (("stunet", stunet), ("no_temporal_downsampling", flat)):
            by_kind = flops_lib.denoiser_flops(
                cfg, batch=args.batch, frames=frames, size=size, text_len=text_len, by_kind=True
            )
            row[name] = {"analytic": sum(by_kind.values()), "by_kind": by_kind}
            if args.xla:
                t0 = time.time()
                row[name]["xla"] = xla_forward_flops(cfg, frames, size, text_len, args.batch)
                row[name]["xla_lower_s"] = round(time.time() - t0, 1)
                row[name]["xla_over_analytic"] = row[name]["xla"] / row[name]["analytic"]
        row["ratio_analytic"] = row["no_temporal_downsampling"]["analytic"] / row["stunet"]["analytic"]
        if args.xla:
            row["ratio_xla"] = row["no_temporal_downsampling"]["xla"] / row["stunet"]["xla"]
        ta = lambda r: r["by_kind"].get("temporal_attention", 0)
        row["temporal_attention_ratio"] = ta(row["no_temporal_downsampling"]) / max(ta(row["stunet"]), 1)
        print(
            f"{frames} frames: STUNet {row['stunet']['analytic'] / 1e12:.2f} TFLOP, without temporal down-sampling "
            f"{row['no_temporal_downsampling']['analytic'] / 1e12:.2f} TFLOP: x{row['ratio_analytic']:.2f} "
            f"(XLA x{row.get('ratio_xla', float('nan')):.2f}); "
            f"temporal attention x{row['temporal_attention_ratio']:.1f}",
            flush=True,
        )
        rows.append(row)
    record = {
        "name": "temporal_flops",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": "python bench/temporal_flops.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
        },
        "config": args.config,
        "batch": args.batch,
        "resolution": size,
        "text_len": text_len,
        "num_temporal_downsamples": stunet.temporal_downsamples,
        "rows": rows,
        "wall_time_s": round(time.time() - start, 1),
    }
    with open(args.results, "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


if __name__ == "__main__":
    main()
