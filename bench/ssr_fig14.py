r"""Lumiere Fig. 14 / App. C ablation: SSR with and without temporal MultiDiffusion.

Takes ``--num_videos`` clips of the moving_shapes **test** split rendered at the SSR model's output
resolution with ``--num_frames`` frames, down-samples them to the model's input resolution
(``low_res.downsample``, area averaging), and super-resolves the same low-resolution input with
the same prompt (the clip's caption) and seed twice with ``sampling.Generator.upsample``:

  (a) ``multidiffusion=False``: non-overlapping windows of the model's window length, each
      denoised on its own and stitched (the paper's baseline);
  (b) ``multidiffusion=True``: overlapping windows (``overlap`` from the config, default 2)
      merged at every denoising step.

For (a), (b) and the ground-truth high-resolution clips it computes the adjacent-frame
difference curve (``diagnostics.frame_difference_curve``: mean |frame[t+1] - frame[t]| in [0, 1]
intensity units, averaged over the videos) and the ratio of the mean difference at window-
boundary transitions to the mean at all other transitions. The boundary transitions are those of
layout (a): frame s-1 -> s for every window start s > 0 of the non-overlapping layout; the same
set is used for (b) and the ground truth, so the three ratios are comparable (the ground truth
moves at constant speed, so its ratio is ~1; seams of (a) show as a ratio > 1).

Command (the trained reference SSR model; ~minutes per variant on a 2-core CPU)::

    JAX_PLATFORMS=cpu LUMIERE_JAX_CACHE=$PWD/.jax_cache .venv/bin/python bench/ssr_fig14.py \
        --ssr=/work/runs/ms_ssr --data_dir=$HOME/lumiere_data \
        --num_frames=32 --num_videos=4 --num_steps=20 --seed=0 --out_dir=docs/figures/ssr_fig14

Writes to ``--out_dir``: ``frame_difference.png`` (the three curves, boundary transitions marked
by dashed lines), ``xt_no_multidiffusion.png`` / ``xt_multidiffusion.png`` /
``xt_ground_truth.png`` (X-T slices of one video, time running down) and ``xt_all.png`` (the
three side by side: ground truth | (a) | (b)), ``results.json`` (curves, ratios, layouts,
command, date, machine, wall time); appends one JSON line (name "ssr_fig14") to
``bench/results.jsonl``.
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

from lumiere_jax import runtime, sampling
from lumiere_jax.data import moving_shapes, video_io
from lumiere_jax.data.input_pipeline import uint8_to_float
from lumiere_jax.diffusion import low_res
from lumiere_jax.diffusion import multidiffusion as md
from lumiere_jax.eval import diagnostics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = ("no_multidiffusion", "multidiffusion", "ground_truth")
LABELS = {
    "no_multidiffusion": "(a) no MultiDiffusion (stitched windows)",
    "multidiffusion": "(b) MultiDiffusion (overlapping windows)",
    "ground_truth": "ground truth (high-res clip)",
}
COLORS = {"no_multidiffusion": (214, 39, 40), "multidiffusion": (31, 119, 180), "ground_truth": (90, 90, 90)}
# (line width, dash length; 0 = solid): drawn in this order, so a dashed (a) stays visible where it
# coincides with (b) (e.g. a model whose temporal layers are still the identity).
STYLES = {"ground_truth": (2, 0), "multidiffusion": (4, 0), "no_multidiffusion": (2, 4)}


# ----------------------------------------------------------------------------- data
def load_test_clips(
    data_dir: str, size: int, num_frames: int, num_videos: int
) -> tuple[np.ndarray, list[str], list[dict]]:
    """The first ``num_videos`` clips of the moving_shapes test split at ``size`` px with
    ``num_frames`` frames (small train / held_out splits, so building is quick): uint8
    [N, T, size, size, 3], their captions and their records (without the video)."""
    if moving_shapes.tfds is None:
        raise ImportError("building moving_shapes needs tensorflow-datasets")
    src = moving_shapes.load_source(  # the name follows the size and counts (moving_shapes.get_config)
        data_dir,
        moving_shapes.DEFAULT_CONFIG,
        "test",
        size=size,
        num_frames=num_frames,
        num_train=16,
        num_test=num_videos,
        num_held_out=8,
    )
    records = src.__getitems__(range(num_videos))
    videos = np.stack([np.asarray(r["video"]) for r in records])
    return videos, [r["caption"] for r in records], [{k: v for k, v in r.items() if k != "video"} for r in records]


def downsample_uint8(videos: np.ndarray, size: int) -> np.ndarray:
    """uint8 [..., H, W, 3] -> uint8 [..., size, size, 3] through [-1, 1] floats (area averaging)."""
    x = jnp.asarray(uint8_to_float(videos))
    return video_io.to_uint8(np.asarray(low_res.downsample(x, size)))


# ----------------------------------------------------------------------------- metrics
def boundary_transitions(num_frames: int, window: int) -> list[int]:
    """Indices into a frame-difference curve (transition t: frame t -> t + 1) at the seams of the
    non-overlapping layout: s - 1 for every window start s > 0 of ``window_layout(T, window, 0)``."""
    layout = md.window_layout(num_frames, window, 0)
    return [s - 1 for s in layout.starts if s > 0]


def mean_curve(videos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean over videos [T-1], per-video curves [N, T-1]) of the frame-difference curve."""
    per = np.stack([diagnostics.frame_difference_curve(v) for v in videos])
    return per.mean(axis=0), per


def boundary_ratio(curve: np.ndarray, boundaries: Sequence[int]) -> dict[str, float]:
    """Mean difference at the boundary transitions, at the other transitions, and their ratio."""
    curve = np.asarray(curve, np.float64)
    mask = np.zeros(curve.shape[0], bool)
    mask[list(boundaries)] = True
    if not mask.any() or mask.all():
        raise ValueError(
            f"need both boundary and other transitions, got boundaries {list(boundaries)} "
            f"for {curve.shape[0]} transitions"
        )
    b, o = float(curve[mask].mean()), float(curve[~mask].mean())
    return {"boundary_mean": b, "other_mean": o, "ratio": b / o if o > 0 else float("inf")}


# ----------------------------------------------------------------------------- plotting (numpy)
def _draw_line(img: np.ndarray, p0, p1, color, width: int = 2, dash: int = 0) -> None:
    (x0, y0), (x1, y1) = p0, p1
    n = int(max(abs(x1 - x0), abs(y1 - y0)) * 2) + 1
    ts = np.linspace(0.0, 1.0, n)
    xs, ys = x0 + ts * (x1 - x0), y0 + ts * (y1 - y0)
    if dash:
        keep = (np.arange(n) // (2 * dash)) % 2 == 0
        xs, ys = xs[keep], ys[keep]
    h, w = img.shape[:2]
    r0, r1 = -(width // 2), width - width // 2
    for dy in range(r0, r1):
        for dx in range(r0, r1):
            xi, yi = np.rint(xs).astype(int) + dx, np.rint(ys).astype(int) + dy
            ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            img[yi[ok], xi[ok]] = color


def _draw_dot(img: np.ndarray, x: float, y: float, color, r: int = 3) -> None:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    keep = yy * yy + xx * xx <= r * r
    xi, yi = int(round(x)) + xx[keep], int(round(y)) + yy[keep]
    ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    img[yi[ok], xi[ok]] = color


def _text(img: np.ndarray, items: list[tuple[tuple[int, int], str, tuple[int, int, int], str]]) -> np.ndarray:
    """Labels with PIL's built-in font (PIL is already a dependency, via video_io); the plot
    itself is drawn with numpy. Skipped if no font is available."""
    try:
        from PIL import Image, ImageDraw, ImageFont

        font = ImageFont.load_default()
    except Exception:  # pragma: no cover - labels are optional
        return img
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    for (x, y), s, color, anchor in items:
        d.text((x, y), s, fill=color, font=font, anchor=anchor)
    return np.asarray(im)


def render_curves_png(
    path: str,
    curves: dict[str, np.ndarray],
    boundaries: Sequence[int],
    *,
    title: str = "",
    legend: dict[str, str] | None = None,
    width: int = 800,
    height: int = 420,
) -> str:
    """Line plot of frame-difference curves (x: transition t -> t + 1, y: mean |diff|) with dashed
    vertical lines at ``boundaries``; drawn with numpy, saved with ``video_io.save_png``."""
    left, right, top, bottom = 60, 20, 40, 110
    img = np.full((height, width, 3), 255, np.uint8)
    n = max(len(c) for c in curves.values())
    ymax = max(float(np.max(c)) for c in curves.values()) * 1.1 or 1.0
    pw, ph = width - left - right, height - top - bottom
    X = lambda t: left + (t / max(n - 1, 1)) * pw
    Y = lambda v: top + ph - (v / ymax) * ph
    labels = []
    for k in range(6):  # horizontal grid + y ticks
        v = ymax * k / 5
        _draw_line(img, (left, Y(v)), (left + pw, Y(v)), (225, 225, 225), 1)
        labels.append(((left - 6, int(Y(v))), f"{v:.3f}", (0, 0, 0), "rm"))
    step = max(1, int(np.ceil(n / 16)))
    for t in range(0, n, step):  # x ticks
        _draw_line(img, (X(t), top + ph), (X(t), top + ph + 4), (0, 0, 0), 1)
        labels.append(((int(X(t)), top + ph + 6), str(t), (0, 0, 0), "mt"))
    for b in boundaries:  # window seams of the non-overlapping layout
        _draw_line(img, (X(b), top), (X(b), top + ph), (150, 150, 150), 1, dash=3)
    _draw_line(img, (left, top), (left, top + ph), (0, 0, 0), 1)
    _draw_line(img, (left, top + ph), (left + pw, top + ph), (0, 0, 0), 1)
    order = sorted(curves, key=lambda k: list(STYLES).index(k) if k in STYLES else len(STYLES))
    for name in order:
        color, (lw, dash) = COLORS.get(name, (0, 0, 0)), STYLES.get(name, (2, 0))
        pts = [(X(t), Y(float(v))) for t, v in enumerate(curves[name])]
        for p0, p1 in zip(pts[:-1], pts[1:]):
            _draw_line(img, p0, p1, color, lw, dash=dash)
        for x, y in pts:
            _draw_dot(img, x, y, color, 2 if lw <= 2 else 3)
    labels.append(
        (
            (left + pw // 2, top + ph + 22),
            "transition t -> t+1 (dashed: window boundaries without MultiDiffusion)",
            (0, 0, 0),
            "mt",
        )
    )
    labels.append(((left, 12), title or "mean |frame[t+1] - frame[t]|", (0, 0, 0), "lt"))
    for i, name in enumerate(curves):  # legend
        y = top + ph + 46 + 16 * i
        lw, dash = STYLES.get(name, (2, 0))
        _draw_line(img, (left + 10, y), (left + 40, y), COLORS.get(name, (0, 0, 0)), lw, dash=dash)
        labels.append(((left + 48, y), (legend or {}).get(name, LABELS.get(name, name)), (0, 0, 0), "lm"))
    return video_io.save_png(path, _text(img, labels))


def xt_row(record: dict, size: int) -> int:
    """The row an X-T slice should take: the object's path for horizontal motion, else the middle."""
    if record.get("direction") in ("left", "right") and "start" in record:
        return int(np.clip(round(float(np.asarray(record["start"])[0])), 0, size - 1))
    return size // 2


# ----------------------------------------------------------------------------- benchmark
def run(
    ssr: str,
    data_dir: str,
    *,
    num_frames: int = 32,
    num_videos: int = 4,
    num_steps: int | None = 20,
    seed: int = 0,
    out_dir: str = "docs/figures/ssr_fig14",
    window: int | None = None,
    overlap: int | None = None,
    chunk_size: int | None = None,
    aug_level: int | None = None,
    batch_size: int = 4,
    xt_video: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Runs the ablation, writes the figures and results.json into ``out_dir``; returns the results."""
    timings = {}
    t0 = time.perf_counter()
    gen = sampling.Generator.load(ssr)
    cfg = gen.model.config
    if cfg.conditioning != "low_res" or cfg.kind != "video":
        raise ValueError(f"{ssr} is not a video super-resolution model (stage 'ssr')")
    timings["load_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    gt, captions, records = load_test_clips(data_dir, cfg.resolution, num_frames, num_videos)
    low = downsample_uint8(gt, cfg.low_resolution)
    timings["data_s"] = time.perf_counter() - t0

    ssr_set = gen.ssr_settings(window=window, overlap=overlap)
    win = int(ssr_set["window"]) or cfg.num_frames
    ovl = int(ssr_set["overlap"])
    boundaries = boundary_transitions(num_frames, win)
    layouts = {
        "no_multidiffusion": list(md.window_layout(num_frames, win, 0).starts),
        "multidiffusion": list(md.window_layout(num_frames, win, ovl).starts),
    }

    common = dict(
        seed=seed,
        batch_size=batch_size,
        progress=progress,
        num_steps=num_steps,
        window=window,
        overlap=overlap,
        chunk_size=chunk_size,
        aug_level=aug_level,
    )
    videos, settings = {"ground_truth": gt}, {}
    for name, use_md in (("no_multidiffusion", False), ("multidiffusion", True)):
        t0 = time.perf_counter()
        res = gen.upsample(low, captions, multidiffusion=use_md, **common)
        timings[f"upsample_{name}_s"] = time.perf_counter() - t0
        videos[name], settings[name] = res.videos, res.settings
        if progress:
            print(f"{name}: {timings[f'upsample_{name}_s']:.1f} s", file=sys.stderr, flush=True)

    curves, per_video, ratios, per_video_ratios = {}, {}, {}, {}
    for name in VARIANTS:
        curves[name], per_video[name] = mean_curve(videos[name])
        ratios[name] = boundary_ratio(curves[name], boundaries)
        per_video_ratios[name] = [boundary_ratio(c, boundaries)["ratio"] for c in per_video[name]]

    os.makedirs(out_dir, exist_ok=True)
    files = {
        "frame_difference": render_curves_png(
            os.path.join(out_dir, "frame_difference.png"),
            curves,
            boundaries,
            title=f"SSR {cfg.low_resolution}->{cfg.resolution}px, {num_frames} frames, window {win}, "
            f"overlap {ovl}, {num_videos} videos, {settings['multidiffusion']['num_steps']} steps",
            legend={k_: f"{LABELS[k_]}: boundary/other = {ratios[k_]['ratio']:.3f}" for k_ in VARIANTS},
        )
    }
    if xt_video is None:  # the first clip moving left / right: its X-T slice shows the motion as a line
        xt_video = next((i for i, r in enumerate(records) if r.get("direction") in ("left", "right")), 0)
    k = min(max(xt_video, 0), num_videos - 1)
    row = xt_row(records[k], cfg.resolution)
    scale = max(1, 256 // cfg.resolution)
    slices = []
    for name in VARIANTS:
        files[f"xt_{name}"] = diagnostics.save_xt_slice(
            videos[name][k], os.path.join(out_dir, f"xt_{name}.png"), y=row, scale=scale
        )
        slices.append(diagnostics.xt_slice(videos[name][k], row))
    sep = np.full((num_frames, 2, 3), 255, np.uint8)
    gt_slice, a_slice, b_slice = slices[2], slices[0], slices[1]  # ground truth | (a) | (b)
    files["xt_all"] = diagnostics.save_png(
        np.concatenate([gt_slice, sep, a_slice, sep, b_slice], axis=1), os.path.join(out_dir, "xt_all.png"), scale
    )
    return {
        "name": "ssr_fig14",
        "ssr": ssr,
        "data_dir": data_dir,
        "model": {
            "resolution": cfg.resolution,
            "low_resolution": cfg.low_resolution,
            "window": win,
            "overlap": ovl,
            "stage": gen.config.get("stage"),
        },
        "num_frames": num_frames,
        "num_videos": num_videos,
        "seed": seed,
        "captions": captions,
        "settings": settings,
        "layouts": layouts,
        "boundary_transitions": boundaries,
        "boundary_transitions_frames": [[b, b + 1] for b in boundaries],
        "curves": {k_: [float(v) for v in c] for k_, c in curves.items()},
        "per_video_curves": {k_: [[float(v) for v in c] for c in pv] for k_, pv in per_video.items()},
        "ratios": ratios,
        "per_video_ratios": per_video_ratios,
        "xt": {
            "video": k,
            "row": row,
            "caption": captions[k],
            "order_in_xt_all": ["ground_truth", "no_multidiffusion", "multidiffusion"],
        },
        "timings_s": {k_: round(v, 2) for k_, v in timings.items()},
        "files": {k_: os.path.relpath(v, out_dir) for k_, v in files.items()},
    }


def table(results: dict[str, Any]) -> str:
    head = f"{'variant':<20} {'boundary mean':>14} {'other mean':>11} {'ratio':>7}"
    lines = [head, "-" * len(head)]
    for name in VARIANTS:
        r = results["ratios"][name]
        lines.append(f"{name:<20} {r['boundary_mean']:>14.4f} {r['other_mean']:>11.4f} {r['ratio']:>7.3f}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--ssr", required=True, help="SSR export or training workdir (Generator.load)")
    p.add_argument(
        "--data_dir",
        default=os.environ.get("LUMIERE_DATA_DIR", "~/lumiere_data"),
        help="where the moving_shapes variant is built (default $LUMIERE_DATA_DIR or ~/lumiere_data)",
    )
    p.add_argument("--num_frames", type=int, default=32)
    p.add_argument("--num_videos", type=int, default=4)
    p.add_argument("--num_steps", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out_dir", default="docs/figures/ssr_fig14")
    p.add_argument("--window", type=int, default=None, help="default: the model config's (its num_frames)")
    p.add_argument("--overlap", type=int, default=None, help="MultiDiffusion overlap; default: config (2)")
    p.add_argument("--chunk_size", type=int, default=None, help="windows per model call; default: config")
    p.add_argument("--aug_level", type=int, default=None, help="low-res noise augmentation; default: config")
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument(
        "--xt_video",
        type=int,
        default=None,
        help="which video the X-T slices show (default: the first one moving left or right)",
    )
    p.add_argument(
        "--results_jsonl",
        default=os.path.join(REPO, "bench", "results.jsonl"),
        help="append one JSON line here ('' = don't)",
    )
    p.add_argument("--no_progress", action="store_true")
    args = p.parse_args(argv)
    runtime.setup()
    command = shlex.join(["python", "bench/ssr_fig14.py", *(sys.argv[1:] if argv is None else argv)])
    start = time.time()
    res = run(
        args.ssr,
        os.path.expanduser(args.data_dir),
        num_frames=args.num_frames,
        num_videos=args.num_videos,
        num_steps=args.num_steps,
        seed=args.seed,
        out_dir=args.out_dir,
        window=args.window,
        overlap=args.overlap,
        chunk_size=args.chunk_size,
        aug_level=args.aug_level,
        batch_size=args.batch_size,
        xt_video=args.xt_video,
        progress=not args.no_progress,
    )
    wall = time.time() - start
    res.update(
        command=command,
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        machine=machine(),
        wall_time_s=round(wall, 1),
    )
    path = os.path.join(args.out_dir, "results.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    print(table(res))
    print(
        f"boundary transitions (frame s-1 -> s): {res['boundary_transitions_frames']}; "
        f"MultiDiffusion window starts: {res['layouts']['multidiffusion']}"
    )
    print(f"wall time {wall:.1f} s; wrote {path} and {', '.join(res['files'].values())} in {args.out_dir}")
    if args.results_jsonl:
        os.makedirs(os.path.dirname(os.path.abspath(args.results_jsonl)), exist_ok=True)
        with open(args.results_jsonl, "a") as f:
            f.write(
                json.dumps(
                    {
                        "name": "ssr_fig14",
                        "date": res["date"],
                        "command": command,
                        "machine": res["machine"],
                        "wall_time_s": res["wall_time_s"],
                        "ssr": args.ssr,
                        "num_frames": args.num_frames,
                        "num_videos": args.num_videos,
                        "num_steps": res["settings"]["multidiffusion"]["num_steps"],
                        "seed": args.seed,
                        "boundary_transitions": res["boundary_transitions"],
                        "ratios": res["ratios"],
                        "out_dir": args.out_dir,
                    }
                )
                + "\n"
            )
    return res


if __name__ == "__main__":
    main()
