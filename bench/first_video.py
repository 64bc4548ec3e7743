r"""Time to first video in a fresh process (the Colab experience): import, `Generator.load` of an
export, one video with the default settings; cold (an empty compilation cache) and warm (the same
cache again). Each run is its own Python process. A second video (another prompt and seed) follows
in the same process: its time is the sampling steps alone, so first - second is what the first
video pays to compile (cold) or to load its programs from the cache (warm). The wall time and the
three parts before it are up to the first video. Prints a table, appends one JSON line to
bench/results.jsonl.

    .venv/bin/python bench/first_video.py [--checkpoint=assets/moving_shapes_base] [--repeats=1]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from lumiere_jax import runtime, sampling
runtime.setup()
t1 = time.perf_counter()
gen = sampling.Generator.load(sys.argv[1])
t2 = time.perf_counter()
video = gen.generate(["a red square moving left"], seed=0, progress=False).videos
t3 = time.perf_counter()
assert video.shape[0] == 1 and video.std() > 0
gen.generate(["a blue circle moving up"], seed=1, progress=False)
t4 = time.perf_counter()
print(json.dumps(dict(imports=t1 - t0, load=t2 - t1, first_video=t3 - t2, second_video=t4 - t3)))
"""


def run_once(checkpoint: str, cache: str) -> dict:
    env = {**os.environ, "LUMIERE_JAX_CACHE": cache, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, checkpoint], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - t0
    parts = json.loads(out.stdout.strip().splitlines()[-1])
    # the process's wall up to the first video: the second one is timed, not part of it
    return {"wall": round(wall - parts["second_video"], 2), **{k: round(v, 2) for k, v in parts.items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="assets/moving_shapes_base")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results.jsonl"))
    args = ap.parse_args()
    rows = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            rows.append(dict(cache="cold", **run_once(args.checkpoint, cache)))
            rows.append(dict(cache="warm", **run_once(args.checkpoint, cache)))
    print(f"{'cache':>5} {'wall s':>7} {'imports':>8} {'load':>6} {'video':>6} {'2nd video':>9}")
    for r in rows:
        print(
            f"{r['cache']:>5} {r['wall']:7.1f} {r['imports']:8.1f} {r['load']:6.1f} "
            f"{r['first_video']:6.1f} {r['second_video']:9.1f}"
        )
    with open(args.results, "a") as f:
        f.write(
            json.dumps(
                dict(
                    bench="first_video",
                    checkpoint=args.checkpoint,
                    rows=rows,
                    load_avg=os.getloadavg()[0],
                    date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    machine=f"{platform.machine()} {os.cpu_count()} cpu",
                )
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
