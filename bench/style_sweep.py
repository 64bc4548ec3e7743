r"""Stylized generation (Lumiere §4.1): sweep alpha in spatial = alpha * W_style + (1 - alpha) * W_orig.

The style checkpoint is the T2I U-Net fine-tuned on outlined moving_shapes
(`configs/moving_shapes.py:style`); W_orig are the base STUNet's spatial weights (its frozen T2I).
For each alpha the base model's temporal layers are kept and the same prompts and seeds are sampled.
Reported per alpha: `interior_ratio` (share of object pixels whose 4-neighbours are lit: 0 for
outlines, > 0.3 for filled shapes; data/styles.py), `fill_ratio`, the probe's direction accuracy and
presence (motion kept?), and the mean absolute frame-to-frame difference (temporal smoothness).
The style T2I's own images and the training data's statistics are the references.

    .venv/bin/python bench/style_sweep.py --base=assets/moving_shapes_base --style=runs/ms_style \
        --alphas=0,0.5,0.7,0.85,1 --num_prompts=16

Writes docs/figures/style_sweep.json and docs/figures/style_alpha.png (rows: alphas; first prompt's
frames) and appends a line to bench/results.jsonl.
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
from lumiere_jax.data import moving_shapes, styles, video_io  # noqa: E402
from lumiere_jax.eval import probe  # noqa: E402


def prompts(num: int) -> list[str]:
    combos = [c for c in moving_shapes.ALL_COMBOS if c[1] != "triangle"]  # triangles have little interior
    rng = np.random.default_rng(0)
    return [moving_shapes.caption(combos[i]) for i in rng.choice(len(combos), num, replace=False)]


def stats(videos: np.ndarray) -> dict:
    per = [styles.style_statistics(v) for v in videos]
    f = lambda k: float(np.nanmean([p[k] for p in per]))
    return {"interior_ratio": f("interior_ratio"), "fill_ratio": f("fill_ratio")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="assets/moving_shapes_base")
    ap.add_argument("--style", required=True)
    ap.add_argument("--alphas", default="0,0.5,0.7,0.85,1")
    ap.add_argument("--num_prompts", type=int, default=16)
    ap.add_argument("--num_steps", type=int, default=25)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "figures"))
    args = ap.parse_args()
    t0 = time.time()
    base = sampling.Generator.load(args.base)
    ps = prompts(args.num_prompts)
    rows, sheet = {}, []
    for alpha in [float(a) for a in args.alphas.split(",")]:
        gen = base.with_style(args.style, alpha) if alpha > 0 else base
        r = gen.generate(ps, seed=0, progress=False, num_steps=args.num_steps)
        p = probe.score(r.videos, ps)
        motion = float(np.abs(np.diff(r.videos.astype(np.float32), axis=1)).mean())
        rows[f"{alpha:g}"] = {
            **stats(r.videos),
            "direction_accuracy": p["direction_accuracy"],
            "presence": p["presence"],
            "frame_diff_mad": motion,
        }
        print(f"alpha {alpha:g}: {rows[f'{alpha:g}']}", flush=True)
        sheet.append(r.videos[0])
    style_t2i = sampling.Generator.load(args.style)
    images = style_t2i.generate(ps, seed=0, progress=False, num_steps=args.num_steps).videos
    rng = np.random.default_rng(0)
    orig = np.stack(
        [
            moving_shapes.render_clip(
                moving_shapes.sample_spec(rng, 32, 16, combo=moving_shapes.parse_caption(p)), 16, 32
            )
            for p in ps
        ]
    )
    refs = {
        "style_t2i_images": stats(images[:, None]),
        "data_none": stats(orig),
        "data_outline": stats(styles.apply_style(orig, "outline")),
    }
    result = {
        "name": "style_sweep",
        "date": datetime.date.today().isoformat(),
        "machine": platform.processor() or platform.machine(),
        "base": args.base,
        "style": args.style,
        "prompts": ps,
        "num_steps": args.num_steps,
        "alphas": rows,
        "references": refs,
        "wall_s": round(time.time() - t0, 1),
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "style_sweep.json"), "w") as f:
        json.dump(result, f, indent=1)
    video_io.save_png(os.path.join(args.out, "style_alpha.png"), video_io.contact_sheet(np.stack(sheet)))
    with open(os.path.join(ROOT, "bench", "results.jsonl"), "a") as f:
        keys = ("name", "date", "machine", "alphas", "references", "wall_s")
        f.write(json.dumps({k: result[k] for k in keys}) + "\n")
    print(json.dumps(refs))


if __name__ == "__main__":
    main()
