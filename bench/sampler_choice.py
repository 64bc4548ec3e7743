r"""Which sampler and settings to ship: probe scores of one export under several sampling settings.

Samples the same prompts and seeds through `sampling.Generator` (the path `main.py --mode=sample`
runs) once per setting and scores them with the moving_shapes probe. An image (T2I) export is
scored on colour and shape (its images as one-frame videos); a video export on everything.

    .venv/bin/python bench/sampler_choice.py --checkpoint=assets/moving_shapes_t2i --num_prompts=42
    .venv/bin/python bench/sampler_choice.py --checkpoint=assets/moving_shapes_base --num_prompts=32 \
        --settings=ddim_thr,ddim_thr_unclipped,ddim_plain,dpmpp_thr

Prompts: `num_prompts` captions drawn (seeded) from every colour/shape/direction combination;
seeds `seed`, `seed` + 1, ... Prints a table, appends one JSON line to bench/results.jsonl.
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

from lumiere_jax import sampling  # noqa: E402
from lumiere_jax.data import moving_shapes  # noqa: E402
from lumiere_jax.eval import probe  # noqa: E402

SETTINGS = {
    "ddim_thr": dict(sampler="ddim", thresholding=True, use_clipped_model_output=True),
    "ddim_thr_unclipped": dict(sampler="ddim", thresholding=True, use_clipped_model_output=False),
    "ddim_plain": dict(sampler="ddim", thresholding=False),
    "dpmpp_thr": dict(sampler="dpmpp_2m", thresholding=True),
    "dpmpp_plain": dict(sampler="dpmpp_2m", thresholding=False),
    "ddpm50_thr": dict(sampler="ddpm", thresholding=True, num_steps=50),
}
KEYS = ("color_accuracy", "shape_accuracy", "direction_accuracy", "presence", "jitter_px")


def prompts(num: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    combos = moving_shapes.ALL_COMBOS
    return [moving_shapes.caption(combos[i]) for i in rng.choice(len(combos), num, replace=len(combos) < num)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--num_prompts", type=int, default=42)
    ap.add_argument("--seed", type=int, default=2000)
    ap.add_argument("--num_steps", type=int, default=25)
    ap.add_argument("--guidance_scale", type=float, default=3.0)
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results.jsonl"))
    args = ap.parse_args()
    names = args.settings.split(",")
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"unknown --settings {unknown}; choose from {sorted(SETTINGS)}")
    gen = sampling.Generator.load(args.checkpoint)
    ps = prompts(args.num_prompts, args.seed)
    rows = {}
    for name in names:
        s = {"num_steps": args.num_steps, "guidance_scale": args.guidance_scale, **SETTINGS[name]}
        t0 = time.time()
        r = gen.generate(ps, seed=args.seed, progress=False, **s)
        videos = r.videos if r.videos.ndim == 5 else r.videos[:, None]
        scores = probe.score(videos, r.prompts)
        rows[name] = {"settings": s, "seconds": round(time.time() - t0, 1), **{k: scores[k] for k in KEYS}}
        print(f"{name:20s} " + " ".join(f"{k.split('_')[0]}={scores[k]:.3f}" for k in KEYS), flush=True)
    line = {
        "name": "sampler_choice",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": "python " + " ".join(sys.argv),
        "checkpoint": args.checkpoint,
        "num_prompts": args.num_prompts,
        "seed": args.seed,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "rows": rows,
    }
    with open(args.results, "a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
