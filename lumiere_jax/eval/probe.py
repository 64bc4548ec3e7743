"""A rule-based probe that reads (colour, shape, direction) off a moving_shapes video.

Input videos are ``[T, H, W, 3]``, either ``uint8`` in [0, 255] or floating point in
[-1, 1] (model outputs); both are mapped to [0, 1] (:func:`diagnostics.to_unit`).

Per frame (intensity = max over RGB, in [0, 1]):

1. *Object pixels*: intensity > ``threshold`` (0.3: the object is bright, the background
   black). Connected components (8-connectivity); the *blob* is the component with the
   largest summed intensity.
2. *Presence*: the blob's pixel count is within [``min_area``, ``max_area``] x D^2 (D =
   min(H, W) / 4, the dataset's object diameter: a triangle covers D^2/2, a square D^2)
   and the blob holds >= ``min_dominance`` of all above-threshold intensity (pure noise
   gives either one huge component or many comparable specks -> absent).
3. *Centroid*: intensity-weighted centroid over the blob dilated by one pixel (so the
   anti-aliased rim counts with its coverage): sub-pixel exact on rendered clips.
4. *Colour*: median over the blob's core pixels (intensity >= 0.5 x the blob's peak)
   of RGB / max(RGB) (brightness-invariant), per frame.
5. *Shape*: fill ratio = area / (widest row x tallest column), with coverage =
   intensity / peak: square ~1, circle ~pi/4, triangle ~1/2 (thresholds 0.9, 0.68; the
   video's median is ``fill_ratio``). Reliable from 32 px frames (D >= 8 px; rendered
   triangles read about 0.63 at 32 px, 0.55 at 64 px); at 16 px triangles are often read
   as circles.

Per video: colour = nearest palette colour (normalised RGB, Euclidean) to the median of
the per-frame colours of present frames; shape = majority vote; motion = least-squares
line through the centroids of present frames (needs >= max(3, T/2) of them). Direction =
sign of the dominant velocity component, or ``'none'`` when the fitted displacement over
the clip, |v| (T - 1), is below ``min_travel`` x the frame extent (0.125: 4 px at 32 px;
the dataset travels ~1/2) or when the track is too short. Jitter = RMS distance (px) of
the centroids from the fitted line (constant-velocity fit): ~0 for rendered clips.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import ndimage

from lumiere_jax.data.moving_shapes import COLORS, parse_caption
from lumiere_jax.data.views import as_str
from lumiere_jax.eval.diagnostics import to_unit

NO_DIRECTION = "none"
UNKNOWN = "none"
_PALETTE_NAMES = tuple(COLORS)
_PALETTE = np.asarray([COLORS[c] for c in _PALETTE_NAMES], np.float32) / 255.0
_EIGHT = np.ones((3, 3), bool)


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    threshold: float = 0.3  # object pixel: max-channel intensity in [0, 1] above this
    min_area: float = 0.25  # x D^2, smallest blob counted as the object
    max_area: float = 2.0  # x D^2, largest blob counted as the object
    min_dominance: float = 0.5  # blob's share of all above-threshold intensity
    core: float = 0.5  # colour from pixels >= core x blob peak intensity
    min_track: float = 0.5  # fraction of frames (and >= 3) needed to fit the motion
    min_travel: float = 0.125  # x frame extent: less fitted displacement -> 'none'
    square_fill: float = 0.9  # fill ratio above: square
    circle_fill: float = 0.68  # fill ratio above (and below square_fill): circle


@dataclasses.dataclass
class ProbeResult:
    color: str  # palette name, or 'none' if no frame has an object
    color_distance: float  # distance of the measured colour to that palette entry
    shape: str  # 'square' / 'circle' / 'triangle' / 'none'
    direction: str  # 'left' / 'right' / 'up' / 'down' / 'none'
    presence: float  # fraction of frames with an object
    jitter: float  # RMS px around the constant-velocity fit (nan: no fit)
    velocity: tuple[float, float]  # fitted (vy, vx) px / frame (nan: no fit)
    centroids: np.ndarray  # [T, 2] (y, x), nan where absent
    present: np.ndarray  # [T] bool
    fill_ratio: float = float("nan")  # median over present frames of what the shape vote reads (nan: none)

    def as_dict(self) -> dict[str, Any]:
        return {
            "color": self.color,
            "color_distance": self.color_distance,
            "shape": self.shape,
            "direction": self.direction,
            "presence": self.presence,
            "jitter": self.jitter,
            "velocity": self.velocity,
            "fill_ratio": self.fill_ratio,
        }


def _frame(intensity: np.ndarray, rgb: np.ndarray, cfg: ProbeConfig, diameter: float):
    """-> (centroid (y, x), colour [3], fill ratio) or None if no object."""
    mask = intensity > cfg.threshold
    if not mask.any():
        return None
    labels, n = ndimage.label(mask, structure=_EIGHT)
    sums = ndimage.sum_labels(intensity, labels, index=np.arange(1, n + 1))
    best = int(np.argmax(sums)) + 1
    blob = labels == best
    area = int(blob.sum())
    d2 = diameter * diameter
    if not cfg.min_area * d2 <= area <= cfg.max_area * d2:
        return None
    if sums[best - 1] < cfg.min_dominance * sums.sum():
        return None
    region = ndimage.binary_dilation(blob, structure=_EIGHT)
    w = np.where(region, intensity, 0.0)
    total = w.sum()
    ys, xs = np.indices(intensity.shape)
    centroid = np.array([(w * ys).sum() / total, (w * xs).sum() / total])
    peak = float(np.percentile(intensity[blob], 90))
    core = blob & (intensity >= cfg.core * peak)
    px = rgb[core]
    color = np.median(px / np.maximum(px.max(axis=1, keepdims=True), 1e-6), axis=0)
    cov = np.clip(w / max(peak, 1e-6), 0.0, 1.0)
    widest, tallest = cov.sum(axis=1).max(), cov.sum(axis=0).max()
    fill = float(cov.sum() / max(widest * tallest, 1e-6))
    return centroid, color, fill


def probe(video: np.ndarray, config: ProbeConfig = ProbeConfig(), **overrides) -> ProbeResult:
    """Probes one video (uint8 [T, H, W, 3], or float in [-1, 1]); ``overrides`` replace
    :class:`ProbeConfig` fields."""
    cfg = dataclasses.replace(config, **overrides) if overrides else config
    u = to_unit(video)
    if u.ndim != 4 or u.shape[-1] != 3:
        raise ValueError(f"expected [T, H, W, 3], got {u.shape}")
    t, h, w, _ = u.shape
    diameter = min(h, w) / 4.0
    intensity = u.max(axis=-1)
    centroids = np.full((t, 2), np.nan)
    present = np.zeros(t, bool)
    colors, fills = [], []
    for i in range(t):
        res = _frame(intensity[i], u[i], cfg, diameter)
        if res is None:
            continue
        centroids[i], c, f = res
        present[i] = True
        colors.append(c)
        fills.append(f)

    if colors:
        mean_color = np.median(np.stack(colors), axis=0)
        dist = np.linalg.norm(_PALETTE - mean_color[None], axis=1)
        k = int(np.argmin(dist))
        color, color_distance = _PALETTE_NAMES[k], float(dist[k])
        votes = ["square" if f > cfg.square_fill else "circle" if f > cfg.circle_fill else "triangle" for f in fills]
        shape = max(("square", "circle", "triangle"), key=votes.count)
    else:
        color, color_distance, shape = UNKNOWN, float("nan"), UNKNOWN

    direction, jitter, velocity = NO_DIRECTION, float("nan"), (float("nan"), float("nan"))
    idx = np.flatnonzero(present)
    if len(idx) >= max(3, int(np.ceil(cfg.min_track * t))):
        tt = idx.astype(np.float64)
        a = np.stack([tt, np.ones_like(tt)], axis=1)
        coef, *_ = np.linalg.lstsq(a, centroids[idx], rcond=None)  # [2 (slope, icpt), 2 (y, x)]
        vy, vx = coef[0]
        resid = centroids[idx] - a @ coef
        jitter = float(np.sqrt((resid**2).sum(axis=1).mean()))
        velocity = (float(vy), float(vx))
        if abs(vx) >= abs(vy):
            travel, extent, name = abs(vx) * (t - 1), w, "right" if vx > 0 else "left"
        else:
            travel, extent, name = abs(vy) * (t - 1), h, "down" if vy > 0 else "up"
        if travel >= cfg.min_travel * extent:
            direction = name
    fill = float(np.median(fills)) if fills else float("nan")
    return ProbeResult(
        color, color_distance, shape, direction, float(present.mean()), jitter, velocity, centroids, present, fill
    )


def score(
    videos: Iterable[np.ndarray] | np.ndarray, prompts: Sequence[str], config: ProbeConfig = ProbeConfig(), **overrides
) -> dict[str, Any]:
    """Probes ``videos`` (an [N, T, H, W, 3] array or a sequence of videos) against
    their ``prompts`` (moving_shapes captions; ValueError if one does not parse).

    Returns ``color_accuracy``, ``direction_accuracy``, ``shape_accuracy`` (fractions),
    ``presence`` (mean over videos), ``jitter_px`` (median over videos with a motion
    fit; nan if none), ``num_videos`` and ``per_video`` (a dict per video: the prompt,
    expected and probed colour / shape / direction, correctness flags, presence,
    jitter, velocity)."""
    videos = list(videos)
    if len(videos) != len(prompts):
        raise ValueError(f"{len(videos)} videos but {len(prompts)} prompts")
    per_video = []
    for video, prompt in zip(videos, prompts):
        color, shape, direction = parse_caption(prompt)
        r = probe(video, config, **overrides)
        per_video.append(
            {
                "prompt": as_str(prompt),
                "expected": {"color": color, "shape": shape, "direction": direction},
                **r.as_dict(),
                "color_correct": r.color == color,
                "shape_correct": r.shape == shape,
                "direction_correct": r.direction == direction,
            }
        )
    n = len(per_video)

    def frac(key):
        return float(np.mean([p[key] for p in per_video])) if n else float("nan")

    jitters = [p["jitter"] for p in per_video if np.isfinite(p["jitter"])]
    return {
        "color_accuracy": frac("color_correct"),
        "direction_accuracy": frac("direction_correct"),
        "shape_accuracy": frac("shape_correct"),
        "presence": frac("presence"),
        "jitter_px": float(np.median(jitters)) if jitters else float("nan"),
        "num_videos": n,
        "per_video": per_video,
    }
