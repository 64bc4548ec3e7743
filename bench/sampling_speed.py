"""Sampling speed of the shipped exports through `sampling.Generator` (the loop users run): the
first call's wall time (compilation included) and the denoising steps per second of a second,
compiled call, for text-to-video and for super-resolution with MultiDiffusion.

    python bench/sampling_speed.py [--base=assets/moving_shapes_base] [--ssr=assets/moving_shapes_ssr]

Appends one row per path to bench/results.jsonl (with the git commit and a hash of the uint8
videos, so a change's before and after can be compared for speed and for equal samples).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lumiere_jax import sampling  # noqa: E402


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _sha1(videos) -> str:
    """Of the uint8 videos: equal hashes before and after a change = the same samples."""
    return hashlib.sha1(videos.tobytes()).hexdigest()[:12]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="assets/moving_shapes_base")
    ap.add_argument("--ssr", default="assets/moving_shapes_ssr")
    ap.add_argument("--num_prompts", type=int, default=4)
    ap.add_argument("--num_steps", type=int, default=25)
    args = ap.parse_args(argv)
    prompts = [
        "a red square moving left",
        "a green circle moving right",
        "a blue triangle moving up",
        "a yellow square moving down",
    ][: args.num_prompts]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    )
    rows = []
    base = sampling.Generator.load(args.base)
    gen = lambda seed: base.generate(prompts, seed=seed, num_steps=args.num_steps, progress=False)  # noqa: E731
    low, first = _timed(lambda: gen(0))
    _, second = _timed(lambda: gen(1))
    rows.append(
        {
            "path": "text_to_video",
            "first_call_s": round(first, 2),
            "compiled_call_s": round(second, 2),
            "steps_per_s": round(args.num_steps / second, 2),
            "videos_sha1": _sha1(low.videos),
        }
    )
    if os.path.isdir(args.ssr):
        ssr = sampling.Generator.load(args.ssr)
        up = lambda seed: ssr.upsample(
            low.videos,
            low.prompts,
            seed=seed,
            num_steps=args.num_steps,  # noqa: E731
            progress=False,
        )
        high, first = _timed(lambda: up(0))
        _, second = _timed(lambda: up(1))
        rows.append(
            {
                "path": "super_resolution_multidiffusion",
                "first_call_s": round(first, 2),
                "compiled_call_s": round(second, 2),
                "steps_per_s": round(args.num_steps / second, 2),
                "videos_sha1": _sha1(high.videos),
            }
        )
    meta = {
        "bench": "sampling_speed",
        "commit": commit + ("+dirty" if dirty else ""),
        "batch": len(prompts),
        "num_steps": args.num_steps,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with open(os.path.join(ROOT, "bench", "results.jsonl"), "a") as f:
        for r in rows:
            row = {**meta, **r}
            print(json.dumps(row))
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
