"""Checks of the conditional applications on real moving_shapes clips (Lumiere §4.2, Fig. 7-9).

For each clip of a split (its caption as the prompt):
  ``i2v``          condition on the real first frame: PSNR of generated frame 0 against it, and the
                   probe's scores of the whole video (does the object move in the prompted direction?);
  ``i2v_pil``      the same from a first frame drawn by another renderer (PIL's ImageDraw, no
                   anti-aliasing) with the clip's shape, colour and position: does the model take
                   images it was not trained on?
  ``cinemagraph``  animate the region the object sweeps over the clip (dilated); outside it, the mean
                   absolute difference of every frame to the input image (0-255 scale, worst frame),
                   inside, how much the content changes (and the real clip's change, for reference);
  ``inpaint``      regenerate a box over the object's path: PSNR outside the box against the input;
  ``outpaint``     regenerate a border of 1/4 of the frame: PSNR of the known centre;
  ``sdedit``       re-generate the clip at several strengths with ANOTHER caption: distance to the
                   input (PSNR) and the probe's agreement with the input's caption and with the new one;
                   and with its own caption (no edit asked): the distance to the input alone.
The output is the model's own (no pasting of known pixels), so the numbers measure the model.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import numpy as np

from lumiere_jax import config as config_lib
from lumiere_jax.eval import probe

log = logging.getLogger(__name__)

# the tasks, plus i2v from a first frame drawn by another renderer (PIL) and SDEdit with the base model
TASKS = config_lib.CONDITIONAL_TASKS + ("i2v_pil", "sdedit")
SDEDIT_STRENGTHS = (0.3, 0.5, 0.7, 0.9)


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """PSNR (dB) of uint8 arrays over the pixels where `where` ([..., H, W] bool) is True."""
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if where is not None:
        d = d[np.broadcast_to(where, d.shape[:-1])]
    mse = float(d.mean()) if d.size else float("nan")
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def mad(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """Mean absolute difference (0-255) of uint8 arrays over the [H, W] region `where`."""
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return float(d[np.broadcast_to(where, d.shape[:-1])].mean())


def swept_region(clip: np.ndarray, margin: int = 2, threshold: int = 40) -> np.ndarray:
    """[H, W] bool: pixels the object covers in any frame, dilated by `margin`."""
    lit = (clip.max(axis=-1) > threshold).any(axis=0)
    out = lit.copy()
    for dy in range(-margin, margin + 1):
        for dx in range(-margin, margin + 1):
            out |= np.roll(np.roll(lit, dy, 0), dx, 1)
    return out


def path_box(clip: np.ndarray, frac: float = 0.4) -> np.ndarray:
    """[H, W] bool: a box of `frac` of the frame centred on the object's mid-clip position."""
    t, h, w, _ = clip.shape
    ys, xs = np.nonzero(clip[t // 2].max(axis=-1) > 40)
    cy, cx = (ys.mean(), xs.mean()) if len(ys) else (h / 2, w / 2)
    bh, bw = max(1, round(frac * h)), max(1, round(frac * w))
    y0 = int(np.clip(round(cy - bh / 2), 0, h - bh))
    x0 = int(np.clip(round(cx - bw / 2), 0, w - bw))
    box = np.zeros((h, w), bool)
    box[y0 : y0 + bh, x0 : x0 + bw] = True
    return box


def pil_first_frame(clip: np.ndarray, caption: str, threshold: int = 40) -> np.ndarray:
    """uint8 [H, W, 3]: the caption's shape in its colour, drawn with PIL over the bounding box of
    the object in the clip's first frame (black background)."""
    from PIL import Image, ImageDraw

    from lumiere_jax.data import moving_shapes

    color, shape, _ = moving_shapes.parse_caption(caption)
    frame = clip[0]
    ys, xs = np.nonzero(frame.max(axis=-1) > threshold)
    h, w = frame.shape[:2]
    if not len(ys):
        ys, xs = np.array([h // 2 - 2, h // 2 + 2]), np.array([w // 2 - 2, w // 2 + 2])
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    image = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(image)
    rgb = moving_shapes.COLORS[color]
    if shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=rgb)
    elif shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=rgb)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x0, y1), (x1, y1)], fill=rgb)
    return np.asarray(image)


def other_caption(caption: str, index: int) -> str:
    """A different moving_shapes caption: colour and direction changed, shape kept."""
    from lumiere_jax.data import moving_shapes

    color, shape, direction = moving_shapes.parse_caption(caption)
    colors, dirs = list(moving_shapes.COLORS), list(moving_shapes.DIRECTIONS)
    new_color = colors[(colors.index(color) + 1 + index % (len(colors) - 1)) % len(colors)]
    new_dir = dirs[(dirs.index(direction) + 1 + index % (len(dirs) - 1)) % len(dirs)]
    return f"a {new_color} {shape} moving {new_dir}"


def _summary(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, np.float64)
    finite = v[np.isfinite(v)]
    return {
        "mean": float(finite.mean()) if len(finite) else float("inf"),
        "min": float(v.min()),
        "median": float(np.median(v)),
        "frac_inf": float(np.mean(~np.isfinite(v))),
    }


def i2v_scores(videos: np.ndarray, clips: np.ndarray, captions: Sequence[str]) -> dict[str, Any]:
    """Image-to-video scores of generated `videos` whose first frames were `clips[:, 0]`: PSNR of
    generated frame 0 against it, and the probe's readings of the whole video against `captions`."""
    scores = probe.score(videos, list(captions))
    return {
        "first_frame_psnr": _summary([psnr(v[0], c[0]) for v, c in zip(videos, clips)]),
        **{k: scores[k] for k in ("color_accuracy", "direction_accuracy", "shape_accuracy", "presence", "jitter_px")},
    }


def sdedit_edit_scores(
    videos: np.ndarray, clips: np.ndarray, captions: Sequence[str], new: Sequence[str]
) -> dict[str, Any]:
    """Scores of SDEdit `videos` made from `clips` (captioned `captions`) with the `new` captions: PSNR
    to the input, and the probe's colour and direction readings against the new and the input captions."""
    to_new, to_input = probe.score(videos, list(new)), probe.score(videos, list(captions))
    keys = ("color_accuracy", "direction_accuracy")
    return {
        "psnr_to_input": _summary([psnr(v, c) for v, c in zip(videos, clips)]),
        "new_prompt": {k: to_new[k] for k in keys},
        "input_caption": {k: to_input[k] for k in keys},
    }


def evaluate_tasks(
    gen,
    clips: np.ndarray,
    captions: Sequence[str],
    tasks: Sequence[str] = TASKS,
    *,
    seed: int = 0,
    strengths: Sequence[float] = SDEDIT_STRENGTHS,
    fvd=None,
    **overrides,
) -> dict[str, Any]:
    """Scores of `tasks` on real `clips` (uint8 [N, T, H, W, 3]) with their `captions`. `fvd` (an
    `fvd.SplitFVD`, or any callable of videos returning a dict): each task's videos also get an "fvd"."""
    clips = np.asarray(clips)
    captions = list(captions)
    out: dict[str, Any] = {"num_videos": len(clips), "settings": gen.settings(**overrides)}
    kw = dict(seed=seed, progress=False, resize=False, **overrides)
    made: dict[Any, Any] = {}  # task (or (task, strength)) -> its videos
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {TASKS}")
    mark = [time.perf_counter()]

    def done(task):  # one log line per task (an evaluation of 32 clips runs for tens of minutes)
        now = time.perf_counter()
        log.info("%s: %d clips scored in %.0f s", task, len(clips), now - mark[0])
        mark[0] = now

    if "i2v" in tasks:
        vids = np.concatenate([gen.i2v(c[0], p, **kw).videos for c, p in zip(clips, captions)])
        out["i2v"] = i2v_scores(vids, clips, captions)
        made["i2v"] = vids
        done("i2v")
    if "i2v_pil" in tasks:
        firsts = np.stack([pil_first_frame(c, p) for c, p in zip(clips, captions)])
        vids = np.concatenate([gen.i2v(f, p, **kw).videos for f, p in zip(firsts, captions)])
        out["i2v_pil"] = i2v_scores(vids, firsts[:, None], captions)
        made["i2v_pil"] = vids
        done("i2v_pil")
    if "cinemagraph" in tasks:
        outside, inside, real_inside, made["cinemagraph"] = [], [], [], []
        for c, p in zip(clips, captions):
            region = swept_region(c)
            v = gen.cinemagraph(c[0], region, p, **kw).videos[0]
            made["cinemagraph"].append(v)
            outside.append(max(mad(f, c[0], ~region) for f in v))
            inside.append(float(np.mean([mad(f, c[0], region) for f in v[1:]])))
            real_inside.append(float(np.mean([mad(f, c[0], region) for f in c[1:]])))
        out["cinemagraph"] = {
            "outside_mad_worst_frame": _summary(outside),
            "inside_change_mad": _summary(inside),
            "real_clip_inside_change_mad": _summary(real_inside),
        }
        done("cinemagraph")
    if "inpaint" in tasks:
        vals, inside, made["inpaint"] = [], [], []
        for c, p in zip(clips, captions):
            box = path_box(c)
            v = gen.inpaint(c, box, p, **kw).videos[0]
            made["inpaint"].append(v)
            vals.append(psnr(v, c, ~box))
            inside.append(psnr(v, c, box))
        out["inpaint"] = {"outside_psnr": _summary(vals), "inside_psnr": _summary(inside)}
        done("inpaint")
    if "outpaint" in tasks:
        vals, made["outpaint"] = [], []
        for c, p in zip(clips, captions):
            h = c.shape[1]
            pad = h // 8
            v = gen.outpaint(c, p, padding=pad, **kw).videos[0]
            made["outpaint"].append(v)
            known = np.zeros(c.shape[1:3], bool)
            known[pad : h - pad, pad : c.shape[2] - pad] = True
            vals.append(psnr(v, c, known))
        out["outpaint"] = {"known_psnr": _summary(vals), "padding_px": clips.shape[2] // 8}
        done("outpaint")
    if "sdedit" in tasks:
        new = [other_caption(p, i) for i, p in enumerate(captions)]
        rows = {}
        for s in strengths:
            r = gen.sdedit(clips, new, strength=s, **kw)
            made[("sdedit", f"{s:g}")] = r.videos
            same = gen.sdedit(clips, captions, strength=s, **kw).videos  # no edit asked: how much is kept
            rows[f"{s:g}"] = {
                **sdedit_edit_scores(r.videos, clips, captions, new),
                "psnr_to_input_same_caption": _summary([psnr(v, c) for v, c in zip(same, clips)]),
                "start_step": r.settings["start_step"],
            }
        out["sdedit"] = rows
        done("sdedit")
    if fvd is not None:  # each task's videos against the split's real clips
        for name, videos in made.items():
            where = out[name[0]][name[1]] if isinstance(name, tuple) else out[name]
            where["fvd"] = fvd(np.stack(list(videos)))
    return out


def split_clips(config, split: str, num: int) -> tuple[np.ndarray, list[str]]:
    """The first `num` clips of a moving_shapes split with their captions, at the config's model size."""
    from lumiere_jax.train import validation
    from lumiere_jax.data import sources

    source = sources.make_source(config, validation.validate(config), split)
    items = [source[i] for i in range(min(num, len(source)))]
    return np.stack([it["video"] for it in items]), [it["caption"] for it in items]


def format_task_scores(scores: dict[str, Any]) -> str:
    lines = [f"[{scores.get('split', 'clips')}, {scores['num_videos']} videos]"]
    if "i2v" in scores:
        s = scores["i2v"]
        lines.append(
            f"i2v: first-frame PSNR mean {s['first_frame_psnr']['mean']:.1f} dB (min "
            f"{s['first_frame_psnr']['min']:.1f}), direction {s['direction_accuracy']:.3f}, colour "
            f"{s['color_accuracy']:.3f}, shape {s['shape_accuracy']:.3f}"
        )
    if "i2v_pil" in scores:
        s = scores["i2v_pil"]
        lines.append(
            f"i2v (PIL-drawn first frame): first-frame PSNR mean {s['first_frame_psnr']['mean']:.1f} dB "
            f"(min {s['first_frame_psnr']['min']:.1f}), direction {s['direction_accuracy']:.3f}, colour "
            f"{s['color_accuracy']:.3f}, shape {s['shape_accuracy']:.3f}"
        )
    if "cinemagraph" in scores:
        s = scores["cinemagraph"]
        lines.append(
            f"cinemagraph: outside MAD (worst frame) mean {s['outside_mad_worst_frame']['mean']:.2f}, "
            f"inside change {s['inside_change_mad']['mean']:.2f} (real clip "
            f"{s['real_clip_inside_change_mad']['mean']:.2f})"
        )
    if "inpaint" in scores:
        s = scores["inpaint"]
        lines.append(
            f"inpaint: outside PSNR mean {s['outside_psnr']['mean']:.1f} dB (min "
            f"{s['outside_psnr']['min']:.1f}), inside {s['inside_psnr']['mean']:.1f} dB"
        )
    if "outpaint" in scores:
        s = scores["outpaint"]["known_psnr"]
        lines.append(f"outpaint: known-centre PSNR mean {s['mean']:.1f} dB (min {s['min']:.1f})")
    for strength, s in scores.get("sdedit", {}).items():
        lines.append(
            f"sdedit strength {strength}: PSNR to input {s['psnr_to_input']['mean']:.1f} dB "
            f"(with its own caption {s['psnr_to_input_same_caption']['mean']:.1f} dB), "
            f"new prompt colour {s['new_prompt']['color_accuracy']:.3f} dir "
            f"{s['new_prompt']['direction_accuracy']:.3f}; input caption colour "
            f"{s['input_caption']['color_accuracy']:.3f} dir {s['input_caption']['direction_accuracy']:.3f}"
        )
    from lumiere_jax.eval.evaluate import format_fvd

    for task in TASKS:
        rows = scores.get(task, {})
        rows = rows.items() if task == "sdedit" else [("", rows)]
        for strength, s in rows:
            if isinstance(s, dict) and "fvd" in s:
                lines.append(f"{task}{' strength ' + strength if strength else ''}: {format_fvd(s['fvd'])}")
    return "\n".join(lines)
