r"""How FVD moves with the number of videos: the generated videos of one `--mode=eval` run (their I3D
features, which the CLI saves as fvd_features_<split>.npy) and as many real clips (the real-vs-real
floor), at counts 8, 16, 32, ... up to the run's, against the same reference statistics as the run
(the split's first `num_real` clips, from the cache). Prints a table, appends one JSON line to
bench/results.jsonl.

    python main.py --config=configs/moving_shapes.py:video --mode=eval --checkpoint=assets/moving_shapes_base \
        --eval_split=held_out --eval_num_prompts=64 --output_dir=runs/eval64
    .venv/bin/python bench/fvd_stability.py --config=configs/moving_shapes.py:video --eval_dir=runs/eval64 \
        --split=held_out
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/moving_shapes.py:video")
    ap.add_argument(
        "--eval_dir", required=True, help="a --mode=eval output folder (eval_<split>.json, fvd_features_<split>.npy)"
    )
    ap.add_argument("--split", default="held_out")
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results.jsonl"))
    args = ap.parse_args()

    from lumiere_jax import config as config_lib, runtime
    from lumiere_jax.eval import fvd

    runtime.setup()
    path, _, arg = args.config.partition(":")
    config = config_lib.load_config_file(path, arg or None)
    with open(os.path.join(args.eval_dir, f"eval_{args.split}.json")) as f:
        run = json.load(f)["fvd"]
    generated = np.load(os.path.join(args.eval_dir, f"fvd_features_{args.split}.npy"))
    m, n = run["num_real"], len(generated)
    t0 = time.perf_counter()
    features = fvd.I3DFeatures()
    reference = fvd.cached_real_statistics(config, args.split, 0, m, features)
    real = features(fvd.real_clips(config, args.split, m, n))  # the run's floor clips
    counts = [c for c in (8, 16, 32, 64, 128, 256) if c < n] + [n]
    rows = []
    print(f"{'videos':>6} {'fvd':>8} {'floor':>8}   (reference: the first {m} real clips of {args.split})")
    for c in counts:
        g = fvd.stats_distance(fvd.FeatureStats(generated.shape[1]).update(generated[:c]), reference)
        r = fvd.stats_distance(fvd.FeatureStats(real.shape[1]).update(real[:c]), reference)
        rows.append(dict(videos=c, fvd=round(g, 2), floor=round(r, 2)))
        print(f"{c:6d} {g:8.1f} {r:8.1f}")
    assert abs(rows[-1]["fvd"] - run["fvd"]) < 1e-3 * max(1.0, run["fvd"]), (rows[-1], run)  # the run's own figure
    with open(args.results, "a") as f:
        line = dict(
            bench="fvd_stability",
            config=args.config,
            eval_dir=args.eval_dir,
            split=args.split,
            num_real=m,
            rows=rows,
            seconds=round(time.perf_counter() - t0, 1),
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            machine=f"{platform.machine()} {os.cpu_count()} cpu",
        )
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
