r"""What FVD's I3D costs per batch: `fvd.I3DFeatures` (the path `--mode=eval` takes) on uint8 noise
videos of 16 frames at 64 x 64 (resized to 224² inside, as every FVD input is): the first call (the
weights' load and the compile) and the median of the next calls. Prints both, appends one JSON line
to bench/results.jsonl.

    JAX_PLATFORMS=cpu .venv/bin/python bench/i3d_cpu.py [--batch_size=8] [--calls=3] [--note=...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch_size", type=int, default=8, help="clips a call (fvd.I3DFeatures' default: 8)")
    ap.add_argument("--calls", type=int, default=3, help="timed calls after the first")
    ap.add_argument("--note", default="")
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results.jsonl"))
    args = ap.parse_args()
    if args.batch_size < 1 or args.calls < 1:
        ap.error(f"--batch_size and --calls must be >= 1, got {args.batch_size} and {args.calls}")

    from lumiere_jax.eval import fvd

    features = fvd.I3DFeatures(batch_size=args.batch_size)
    videos = np.random.default_rng(0).integers(0, 256, (args.batch_size, 16, 64, 64, 3), dtype=np.uint8)
    start = time.perf_counter()
    features(videos)
    first = time.perf_counter() - start
    times = []
    for _ in range(args.calls):
        start = time.perf_counter()
        features(videos)
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    print(f"first call (weights, compile, one batch): {first:.2f} s")
    print(f"batch of {args.batch_size}: median {median:.2f} s ({median / args.batch_size:.3f} s a clip)")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    with open(args.results, "a") as f:
        line = dict(
            bench="i3d_cpu",
            batch_size=args.batch_size,
            first_call_s=round(first, 2),
            batch_s=round(median, 3),
            calls_s=[round(t, 3) for t in times],
            note=args.note,
            commit=commit.stdout.strip(),
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            machine=f"{platform.machine()} {os.cpu_count()} cpu",
        )
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
