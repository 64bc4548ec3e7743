"""Inputs of the conditional applications: loading, validating and fitting them to the model.

Used by the Python API and the CLI (``--mode=sample --task=i2v|inpaint|outpaint|cinemagraph``).
Everything is numpy and channels-last:

  * images: uint8 ``[H, W, 3]``;
  * videos: uint8 ``[T, H, W, 3]``;
  * user masks: bool ``[H, W]`` (the same in every frame) or ``[T, H, W]``.

Mask semantics. In a user's mask file the REGION TO GENERATE / ANIMATE is painted WHITE: a pixel
is marked (``True``) when its value scaled to [0, 1] (uint8 / 255; RGB channels averaged, alpha
ignored) is ``>= threshold`` (default :data:`MASK_THRESHOLD`). The model's conditioning mask is
the opposite, ``M = 1`` on KNOWN content (see ``lumiere_jax.diffusion.masks``), i.e.
``M = ~region``. :func:`outpaint_mask` follows the user convention (``True`` = generated border).

File formats:

  * images (:func:`load_image`): png / jpg / jpeg / bmp / webp / tif via pillow (EXIF rotation
    applied; grayscale -> RGB; alpha dropped); ``.npy`` ``[H, W]``, ``[H, W, 1|3|4]`` of uint8, or
    float in [0, 1]; or the first frame of any video :func:`load_video` reads;
  * videos (:func:`load_video`): whatever ``video_io.read_video`` decodes (mp4 / webm / gif /
    folder of frames / ...), and ``.npy`` ``[T, H, W, 1|3|4]`` of uint8 or float in [0, 1];
  * masks (:func:`load_mask`): any image or video above, or ``.npy`` of bool, uint8 or float in
    [0, 1], shaped ``[H, W]``, ``[H, W, 1|3|4]``, ``[T, H, W]`` or ``[T, H, W, 1|3|4]``.

A missing file raises ``FileNotFoundError``; anything that cannot be decoded or has the wrong
shape / dtype / range raises ``ValueError`` naming the file.

A 3-D array whose last axis has 1, 3 or 4 entries is read as one image with channels (so masks
3 or 4 pixels wide are not supported as ``[T, H, W]``; add a channel axis).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageOps

from lumiere_jax.data import video_io

MASK_THRESHOLD = 0.5
"""A user mask pixel marks the region to generate when its value in [0, 1] is >= this."""

IMAGE_EXTENSIONS = video_io.FRAME_EXTENSIONS + (".tif", ".tiff")
DIRECTIONS = ("left", "right", "up", "down")
_CHANNELS = (1, 3, 4)


# ----------------------------------------------------------------------------- helpers


def _check_exists(path: str | os.PathLike, what: str) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} file not found: {path!r}")
    return path


def _ext(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def _load_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any numpy failure means "not a usable .npy"
        raise ValueError(f"cannot read {path!r} as .npy: {type(e).__name__}: {e}") from e


def _pixels_to_uint8(arr: np.ndarray, source: str) -> np.ndarray:
    """uint8 passes through; float in [0, 1] -> rounded uint8; anything else is an error."""
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and not np.isfinite(arr).all():
            raise ValueError(f"{source}: float pixels contain NaN or inf")
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{source}: float pixels must be in [0, 1], got [{lo:g}, {hi:g}]"
                + ("; for [-1, 1] data save (x + 1) / 2" if lo < 0.0 else "")
            )
        return np.round(arr * 255.0).astype(np.uint8)
    raise ValueError(f"{source}: pixels must be uint8 (0..255) or float in [0, 1], got {arr.dtype}")


def _to_rgb(arr: np.ndarray, source: str) -> np.ndarray:
    """``[..., 1|3|4]`` -> ``[..., 3]`` (gray repeated, alpha dropped)."""
    c = arr.shape[-1]
    if c == 1:
        return np.repeat(arr, 3, axis=-1)
    if c == 4:
        return arr[..., :3]
    if c == 3:
        return arr
    raise ValueError(f"{source}: expected 1, 3 or 4 channels, got {c} (shape {arr.shape})")


def _open_image(path: str) -> np.ndarray:
    """Decode one image file with pillow -> uint8 [H, W, 3]."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode.startswith("I;16"):  # 16-bit grayscale: scale, don't clip
                gray = np.asarray(im, dtype=np.uint16).astype(np.float32) / 257.0
                return _to_rgb(np.round(gray).astype(np.uint8)[..., None], path)
            return np.asarray(im.convert("RGB"))
    except Exception as e:  # noqa: BLE001 - pillow reports bad data in many ways
        raise ValueError(f"cannot decode image {path!r}: {type(e).__name__}: {e}") from e


# ----------------------------------------------------------------------------- loading


def load_image(path: str | os.PathLike) -> np.ndarray:
    """One image as uint8 ``[H, W, 3]`` (see the module docstring for the formats).

    A video file, gif or folder of frames gives its first frame.
    """
    path = _check_exists(path, "image")
    ext = _ext(path)
    if ext == ".npy":
        arr = _load_npy(path)
        if arr.ndim == 4:  # a video: its first frame
            if not len(arr):
                raise ValueError(f"{path!r}: the .npy video has no frames")
            arr = arr[0]
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[-1] not in _CHANNELS or not arr.shape[0] or not arr.shape[1]:
            raise ValueError(
                f"{path!r}: expected an image [H, W], [H, W, 1|3|4] (or a video [T, H, W, C]), got shape {arr.shape}"
            )
        return _to_rgb(_pixels_to_uint8(arr, path), path)
    if os.path.isdir(path) or (video_io.is_video_path(path) and ext not in IMAGE_EXTENSIONS):
        video, _ = video_io.read_video(path, max_frames=1)  # VideoDecodeError is a ValueError
        return video[0]
    return _open_image(path)


def load_video(path: str | os.PathLike, *, max_frames: int | None = None) -> np.ndarray:
    """A video as uint8 ``[T, H, W, 3]``: anything ``video_io.read_video`` decodes, or ``.npy``
    ``[T, H, W, 1|3|4]`` of uint8 / float in [0, 1]. ``max_frames`` keeps the first frames."""
    path = _check_exists(path, "video")
    ext = _ext(path)
    if ext == ".npy":
        arr = _load_npy(path)
        if arr.ndim != 4 or arr.shape[-1] not in _CHANNELS or 0 in arr.shape:
            raise ValueError(f"{path!r}: expected a video [T, H, W, 1|3|4] with T, H, W > 0, got shape {arr.shape}")
        video = _to_rgb(_pixels_to_uint8(arr, path), path)
        return video if max_frames is None else video[:max_frames]
    if ext in IMAGE_EXTENSIONS:
        raise ValueError(
            f"{path!r} is a single image, not a video; give a video file, a gif, a "
            f".npy [T, H, W, 3] or a folder of frames"
        )
    video, _ = video_io.read_video(path, max_frames=max_frames)
    return video


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 < threshold <= 1.0:  # also rejects NaN
        raise ValueError(f"mask threshold must be in (0, 1], got {threshold}")
    return threshold


def binarize(mask: np.ndarray, threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """User mask -> bool (True = the region the user marked, i.e. to generate / animate).

    ``mask``: bool, uint8 (0..255) or float in [0, 1]; a trailing axis of 1, 3 or 4 channels
    (on a 3-D or 4-D array) is averaged (alpha dropped). A pixel is True when its value scaled to
    [0, 1] is ``>= threshold``, with ``threshold`` in (0, 1].
    """
    threshold = _check_threshold(threshold)
    m = np.asarray(mask)
    if m.ndim < 2:
        raise ValueError(f"a mask needs at least 2 dimensions [H, W], got shape {m.shape}")
    if m.ndim >= 3 and m.shape[-1] in _CHANNELS:
        m = m[..., :3] if m.shape[-1] == 4 else m
        channels = True
    else:
        channels = False
    if m.dtype == np.bool_:
        values = m.astype(np.float32)
    elif m.dtype == np.uint8:
        values = m.astype(np.float32) / 255.0
    elif np.issubdtype(m.dtype, np.floating):
        if m.size and not np.isfinite(m).all():
            raise ValueError("mask values contain NaN or inf")
        lo, hi = (float(m.min()), float(m.max())) if m.size else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"float mask values must be in [0, 1], got [{lo:g}, {hi:g}]")
        values = m.astype(np.float32)
    else:
        raise ValueError(
            f"mask must be bool, uint8 (0..255) or float in [0, 1], got {m.dtype}"
            + ("; for 0/1 integers use mask.astype(bool)" if np.issubdtype(m.dtype, np.integer) else "")
        )
    if channels:
        values = values.mean(axis=-1)
    return values >= threshold


def load_mask(path: str | os.PathLike, threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """A user mask file -> bool ``[H, W]`` (static) or ``[T, H, W]`` (per frame); True = region to
    generate (white in the file, see :func:`binarize`). A video of masks with a single frame gives
    ``[H, W]``."""
    threshold = _check_threshold(threshold)
    path = _check_exists(path, "mask")
    ext = _ext(path)
    if ext == ".npy":
        arr = _load_npy(path)
        if not 2 <= arr.ndim <= 4 or (arr.ndim == 4 and arr.shape[-1] not in _CHANNELS) or 0 in arr.shape:
            raise ValueError(
                f"{path!r}: expected a mask [H, W], [H, W, C], [T, H, W] or "
                f"[T, H, W, C] (C = 1, 3 or 4), got shape {arr.shape}"
            )
        try:
            return binarize(arr, threshold)
        except ValueError as e:
            raise ValueError(f"{path!r}: {e}") from e
    if os.path.isdir(path) or (video_io.is_video_path(path) and ext not in IMAGE_EXTENSIONS):
        m = binarize(video_io.read_video(path)[0], threshold)
        return m[0] if len(m) == 1 else m
    return binarize(_open_image(path), threshold)


# ----------------------------------------------------------------------------- validation


def _nearest_resize_crop(mask: np.ndarray, size: int) -> np.ndarray:
    """bool [..., H, W] -> [..., size, size] with the geometry of resize_and_center_crop."""
    h, w = mask.shape[-2:]
    scale = max(size / h, size / w)
    nh, nw = max(size, int(round(h * scale))), max(size, int(round(w * scale)))
    top, left = (nh - size) // 2, (nw - size) // 2
    frames = mask.reshape(-1, h, w)
    out = np.empty((len(frames), size, size), bool)
    for i, f in enumerate(frames):
        im = Image.fromarray(f.astype(np.uint8) * 255).resize((nw, nh), Image.Resampling.NEAREST)
        out[i] = np.asarray(im)[top : top + size, left : left + size] >= 128
    return out.reshape(mask.shape[:-2] + (size, size))


def fit_frames(x: np.ndarray, resolution: int, *, what: str, resize: bool = True) -> np.ndarray:
    """Fit an image / video (uint8 ``[H, W, 3]`` / ``[T, H, W, 3]``) or a mask (bool ``[H, W]`` /
    ``[T, H, W]``) to ``resolution x resolution`` frames.

    Already that size: returned as is. Otherwise with ``resize``: scaled to cover the square and
    centre-cropped (``video_io.resize_and_center_crop`` for pixels, nearest neighbour for masks,
    same geometry, so an image and its mask stay aligned); without: ``ValueError``. ``what``
    names the input in errors (e.g. ``"--image"``).
    """
    x = np.asarray(x)
    resolution = int(resolution)
    if resolution <= 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    if x.dtype == np.bool_:
        if x.ndim not in (2, 3):
            raise ValueError(f"{what}: a mask must be bool [H, W] or [T, H, W], got shape {x.shape}")
        h, w = x.shape[-2:]
    elif x.dtype == np.uint8:
        if x.ndim not in (3, 4) or x.shape[-1] != 3:
            raise ValueError(f"{what}: expected uint8 [H, W, 3] or [T, H, W, 3], got shape {x.shape}")
        h, w = x.shape[-3:-1]
    else:
        raise ValueError(f"{what}: expected uint8 frames or a bool mask, got {x.dtype}")
    if h == 0 or w == 0:
        raise ValueError(f"{what} is empty ({h}x{w})")
    if (h, w) == (resolution, resolution):
        return x
    if not resize:
        raise ValueError(
            f"{what} is {h}x{w} (height x width) but the model makes "
            f"{resolution}x{resolution} frames; pass resize=True (--resize_inputs) "
            f"or resize it to {resolution}x{resolution}"
        )
    if x.dtype == np.bool_:
        return _nearest_resize_crop(x, resolution)
    return video_io.resize_and_center_crop(x, resolution)


def check_num_frames(video: np.ndarray, num_frames: int, *, what: str) -> np.ndarray:
    """``video`` ``[T, ...]`` unchanged when ``T == num_frames``; ``ValueError`` otherwise."""
    video = np.asarray(video)
    if video.ndim < 3:
        raise ValueError(f"{what}: expected a video [T, H, W, ...], got shape {video.shape}")
    t = video.shape[0]
    if t != num_frames:
        hint = (
            f"trim it to its first {num_frames} frames (e.g. video[:{num_frames}])"
            if t > num_frames
            else f"give at least {num_frames} frames"
        )
        raise ValueError(f"{what} has {t} frames but the model generates exactly {num_frames} frames; {hint}")
    return video


def mask_for_video(mask: np.ndarray, num_frames: int) -> np.ndarray:
    """bool ``[H, W]`` -> ``[num_frames, H, W]`` (same mask every frame); ``[T, H, W]`` must have
    ``T == num_frames``. Returns a new (writable) array."""
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"mask_for_video expects a bool mask (see binarize), got {mask.dtype}")
    if mask.ndim == 2:
        return np.repeat(mask[None], num_frames, axis=0)
    if mask.ndim == 3:
        if mask.shape[0] != num_frames:
            raise ValueError(
                f"the mask has {mask.shape[0]} frames but the video has {num_frames}; "
                f"give one mask per frame or a single [H, W] mask for all frames"
            )
        return mask.copy()
    raise ValueError(f"a mask must be [H, W] or [T, H, W], got shape {mask.shape}")


def _as_count(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {v!r}")
    return int(v)


def outpaint_mask(
    height: int,
    width: int,
    *,
    padding: int | Sequence[int] | None = None,
    direction: str | None = None,
    amount: float = 0.25,
) -> np.ndarray:
    """bool ``[H, W]``, True = the border region to generate.

    Either ``padding``: pixels generated on every side (an int) or per side
    ``(top, bottom, left, right)``; or ``direction`` in ``DIRECTIONS``: the frame's ``amount``
    (a fraction in (0, 1), at least one pixel row / column, at most all but one) is generated on
    that side. The rest (the known area) must be non-empty.
    """
    height, width = _as_count(height, "height"), _as_count(width, "width")
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if (padding is None) == (direction is None):
        raise ValueError(
            "outpaint_mask needs exactly one of padding= (pixels per side) or "
            f"direction= (one of {DIRECTIONS})" + (", not both" if padding is not None else "")
        )
    region = np.zeros((height, width), bool)
    if padding is not None:
        if isinstance(padding, (int, np.integer, float, np.floating)):
            pads = (padding,) * 4  # a float is rejected by _as_count below
        elif isinstance(padding, Sequence) or isinstance(padding, np.ndarray):
            pads = tuple(padding)
        else:
            raise ValueError(f"padding must be an int or (top, bottom, left, right), got {padding!r}")
        if len(pads) != 4:
            raise ValueError(f"padding must be an int or (top, bottom, left, right), got {padding!r}")
        top, bottom, left, right = (_as_count(p, "padding") for p in pads)
        if min(top, bottom, left, right) < 0:
            raise ValueError(f"padding must be >= 0, got {(top, bottom, left, right)}")
        if top + bottom >= height or left + right >= width:
            raise ValueError(
                f"padding (top, bottom, left, right) = {(top, bottom, left, right)} "
                f"leaves no known area in a {height}x{width} frame"
            )
        if top == bottom == left == right == 0:
            raise ValueError("padding is 0 on every side: nothing to outpaint")
        region[:top] = True
        region[height - bottom :] = True
        region[:, :left] = True
        region[:, width - right :] = True
        return region
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    amount = float(amount)
    if not 0.0 < amount < 1.0:
        raise ValueError(f"amount (the fraction of the frame to generate) must be in (0, 1), got {amount}")
    side = width if direction in ("left", "right") else height
    if side < 2:
        raise ValueError(f"a {height}x{width} frame is too small to outpaint to the {direction}")
    n = min(max(int(round(amount * side)), 1), side - 1)
    if direction == "left":
        region[:, :n] = True
    elif direction == "right":
        region[:, width - n :] = True
    elif direction == "up":
        region[:n] = True
    else:
        region[height - n :] = True
    return region
