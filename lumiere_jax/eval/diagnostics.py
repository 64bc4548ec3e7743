"""Generic video diagnostics.

Videos are ``[T, H, W, C]`` arrays, either ``uint8`` in [0, 255] or floating point in
[-1, 1] (the model's output range); :func:`to_unit` maps both to float32 [0, 1].

* :func:`frame_difference_curve` - mean |frame[t+1] - frame[t]|, [T-1] (Lumiere Fig. 14:
  temporal-consistency spikes at window / chunk boundaries).
* :func:`xt_slice` / :func:`yt_slice` - one row (column) stacked over time, [T, W, C]
  ([T, H, C]) uint8 (Lumiere Fig. 2).
* :func:`save_png` / :func:`save_xt_slice` - write such images, optionally upscaled by an
  integer factor with nearest-neighbour.
"""

from __future__ import annotations

import os

import numpy as np

from lumiere_jax.data import video_io
from lumiere_jax.data.video_io import to_uint8  # noqa: F401  (re-exported: part of this module's API)


def to_unit(video: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> x / 255; float [-1, 1] -> (x + 1) / 2, clipped; float32."""
    video = np.asarray(video)
    if video.dtype == np.uint8:
        return video.astype(np.float32) / 255.0
    if np.issubdtype(video.dtype, np.floating):
        return np.clip((video.astype(np.float32) + 1.0) / 2.0, 0.0, 1.0)
    raise TypeError(f"expected uint8 or floating video, got {video.dtype}")


def frame_difference_curve(video: np.ndarray) -> np.ndarray:
    """Mean absolute difference between consecutive frames, float32 [T-1], in units of
    [0, 1] intensity (1.0: every value flips between 0 and 255)."""
    v = to_unit(video)
    if v.ndim < 2 or v.shape[0] < 2:
        raise ValueError(f"need a video with >= 2 frames, got shape {v.shape}")
    return np.abs(np.diff(v, axis=0)).reshape(v.shape[0] - 1, -1).mean(axis=1).astype(np.float32)


def xt_slice(video: np.ndarray, y: int | None = None) -> np.ndarray:
    """Row ``y`` (default the middle row, H // 2) of every frame stacked over time:
    uint8 [T, W, C]; row t of the image is frame t."""
    v = to_uint8(video)
    h = v.shape[1]
    y = h // 2 if y is None else int(y)
    if not -h <= y < h:
        raise IndexError(f"row {y} out of range for height {h}")
    return np.ascontiguousarray(v[:, y])


def yt_slice(video: np.ndarray, x: int | None = None) -> np.ndarray:
    """Column ``x`` (default W // 2) of every frame stacked over time: uint8 [T, H, C]."""
    v = to_uint8(video)
    w = v.shape[2]
    x = w // 2 if x is None else int(x)
    if not -w <= x < w:
        raise IndexError(f"column {x} out of range for width {w}")
    return np.ascontiguousarray(v[:, :, x])


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of [H, W(, C)] by an integer factor."""
    scale = int(scale)
    if scale < 1:
        raise ValueError("scale must be a positive integer")
    if scale == 1:
        return image
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def save_png(image: np.ndarray, path: str | os.PathLike, scale: int = 1) -> str:
    """Writes an image ([H, W], [H, W, 1] or [H, W, 3]; uint8 or float in [-1, 1]) as a
    PNG, upscaled ``scale`` times (nearest-neighbour). Returns the path."""
    return video_io.save_png(path, upscale(to_uint8(image), scale))


def save_xt_slice(video: np.ndarray, path: str | os.PathLike, y: int | None = None, scale: int = 4) -> str:
    """:func:`xt_slice` of ``video`` saved as a PNG (time runs downwards)."""
    return save_png(xt_slice(video, y), path, scale)
