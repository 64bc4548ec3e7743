r"""Does a super-resolution model keep the objects' shapes? Fill ratios of real and super-resolved clips.

Takes the first `num_clips` clips of a moving_shapes split at the SSR's output size, area-downsamples
them to its input size (`diffusion.low_res.downsample`, what SSR training does), super-resolves them
with their own captions through `Generator.upsample` (the path `--mode=sample|eval` runs), and reports
per shape the probe's fill ratio (`eval.probe`: area over widest row x tallest column; a triangle is
read as one below 0.68) of the real clips at both sizes and of the super-resolved ones, with how many
the probe reads as the prompted shape. An image SSR (stage `ssr_image`) is given `--frames` frames of
each clip as images.

    .venv/bin/python bench/ssr_shapes.py --ssr=assets/moving_shapes_ssr --split=test --num_clips=64
    .venv/bin/python bench/ssr_shapes.py --ssr=runs/ms_ssr_image --split=test --num_clips=64 --shapes=triangle

Prints one line per shape and source, appends one JSON line to bench/results.jsonl.
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

from lumiere_jax import config as config_lib, runtime, sampling  # noqa: E402
from lumiere_jax.data import moving_shapes as ms  # noqa: E402
from lumiere_jax.data.input_pipeline import uint8_to_float  # noqa: E402
from lumiere_jax.data.views import as_str  # noqa: E402
from lumiere_jax.diffusion import low_res  # noqa: E402
from lumiere_jax.eval import conditional, probe  # noqa: E402


def shape_rows(videos: np.ndarray, captions: list[str]) -> dict[str, dict]:
    """Per prompted shape: videos, median / min / max fill ratio, fraction read as the prompted shape."""
    per_video = probe.score(list(videos), captions)["per_video"]
    rows = {}
    for shape in ms.SHAPES:
        sel = [p for p in per_video if p["expected"]["shape"] == shape]
        if not sel:
            continue
        fills = np.array([p["fill_ratio"] for p in sel])
        rows[shape] = {
            "videos": len(sel),
            "fill_median": round(float(np.nanmedian(fills)), 4),
            "fill_min": round(float(np.nanmin(fills)), 4),
            "fill_max": round(float(np.nanmax(fills)), 4),
            "read_as_prompted": round(float(np.mean([p["shape_correct"] for p in sel])), 4),
        }
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ssr", default="assets/moving_shapes_ssr", help="SSR export or workdir")
    p.add_argument("--config", default="configs/moving_shapes.py:ssr", help="FILE[:ARG]: the split's dataset")
    p.add_argument("--split", default="test")
    p.add_argument("--num_clips", type=int, default=64)
    p.add_argument("--shapes", default=",".join(ms.SHAPES), help="only the clips of these shapes (comma-separated)")
    p.add_argument("--frames", default="0,5,10,15", help="an image SSR's frames of each clip (comma-separated)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--results", default=os.path.join(ROOT, "bench", "results.jsonl"))
    args = p.parse_args(argv)
    runtime.setup()
    gen = sampling.Generator.load(args.ssr)
    cfg = gen.model.config
    if cfg.conditioning != "low_res":
        raise SystemExit(f"--ssr={args.ssr} is not a super-resolution model (conditioning {cfg.conditioning!r})")
    path, _, arg = args.config.partition(":")
    split_config = config_lib.load_config_file(path, arg or None)
    clips, captions = conditional.split_clips(split_config, args.split, args.num_clips)
    captions = [as_str(c) for c in captions]
    shapes = args.shapes.split(",")
    if not set(shapes) <= set(ms.SHAPES):
        raise SystemExit(f"--shapes={args.shapes}: choose from {ms.SHAPES}")
    keep = [i for i, c in enumerate(captions) if ms.parse_caption(c)[1] in shapes]
    clips, captions = clips[keep], [captions[i] for i in keep]
    if clips.shape[-2] != cfg.resolution:
        raise SystemExit(f"the split's clips are {clips.shape[-2]} px, the SSR outputs {cfg.resolution} px")
    if cfg.kind == "image":  # frames as images, each with its clip's caption; probed as 1-frame videos
        frames = [int(f) for f in args.frames.split(",")]
        if max(frames) >= clips.shape[1]:
            raise SystemExit(f"--frames={args.frames}: clips have {clips.shape[1]} frames")
        clips = clips[:, frames].reshape(-1, 1, *clips.shape[2:])
        captions = [c for c in captions for _ in frames]
    small = np.asarray(low_res.downsample(uint8_to_float(clips), cfg.low_resolution))  # as SSR training sees them
    t0 = time.perf_counter()
    inputs = small[:, 0] if cfg.kind == "image" else small
    out = gen.upsample(inputs, captions, seed=args.seed, batch_size=args.batch_size, progress=False).videos
    seconds = time.perf_counter() - t0
    if cfg.kind == "image":
        out = out[:, None]
    rows = {
        f"real {cfg.resolution} px": shape_rows(clips, captions),
        f"real, area-downsampled to {cfg.low_resolution} px": shape_rows(small, captions),
        f"SSR of the {cfg.low_resolution} px clips": shape_rows(out, captions),
    }
    for source, by_shape in rows.items():
        for shape, r in by_shape.items():
            print(f"{source:>36} {shape:>8}: {r}", flush=True)
    line = {
        "name": "ssr_shapes",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "args": vars(args) | {"results": None},
        "upsample_seconds": round(seconds, 1),
        "rows": rows,
    }
    with open(args.results, "a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
