"""Video decoding, encoding, resizing and temporal resampling (numpy in, numpy out).

All videos are channels-last uint8 ``[T, H, W, 3]`` numpy arrays.

Decoding (:func:`read_video` -> ``(video, fps or None)``):
  * mp4 / webm / mov / mkv / avi / anything else ffmpeg reads: imageio v3 with the
    ``FFMPEG`` plugin (the ffmpeg binary shipped by ``imageio-ffmpeg``);
  * gif: pillow (frames composited by pillow, converted to RGB; fps from the mean
    frame duration);
  * a directory of frames (png / jpg / jpeg / bmp / webp), sorted by file name in
    natural order (``f2.png`` before ``f10.png``; identical to plain sorting for
    zero-padded names). A directory has no frame rate: fps is ``None``;
  * ``.npy`` (as written by :func:`write_npy`): fps ``None``.
  Every failure (missing, unreadable, corrupt, zero frames, inconsistent frame
  sizes) raises :class:`VideoDecodeError`, which names the file.

Encoding: :func:`write_mp4` (H.264 / yuv420p, playable everywhere), :func:`write_gif`,
:func:`write_npy`, :func:`contact_sheet` + :func:`save_png`.

H.264 with yuv420p chroma subsampling needs even width and height. ``write_mp4``
pads odd sizes by one row / column, replicating the last row / column (no
resampling, no loss of content); the file therefore decodes to the padded (even)
size. Pass ``pad_to_even=False`` to get an error instead.

Spatial: :func:`resize_and_center_crop` scales so that the target is covered
(short side matches for a square target) and crops the centre, with pillow's area
filter (``BOX``) when shrinking and ``BICUBIC`` when enlarging.

Temporal: :func:`resample_indices` / :func:`resample_fps` pick source frames
(nearest previous frame, no blending) for a target frame rate;
:func:`clip_starts` / :func:`temporal_clips` cut fixed-length clips every
``stride`` frames.
"""

from __future__ import annotations

import os
import re
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageSequence

FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
GIF_EXTENSIONS = (".gif",)
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
ALL_EXTENSIONS = VIDEO_EXTENSIONS + GIF_EXTENSIONS + (".npy",)


class VideoDecodeError(ValueError):
    """A video could not be decoded; ``path`` names the file and ``reason`` says why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"cannot decode video {self.path!r}: {reason}")


# ----------------------------------------------------------------------------- decoding


def _natural_key(name: str):
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


def _to_rgb_uint8(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    elif frame.shape[-1] == 4:
        frame = frame[..., :3]
    if frame.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {frame.dtype}")
    return frame


def _stack(path, frames: list[np.ndarray]) -> np.ndarray:
    if not frames:
        raise VideoDecodeError(path, "no frames")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise VideoDecodeError(path, f"frames have different sizes: {sorted(shapes)}")
    return np.stack(frames)


def list_frame_files(directory: str | os.PathLike) -> list[str]:
    """Image files of a frames folder, in natural name order."""
    names = [n for n in os.listdir(directory) if n.lower().endswith(FRAME_EXTENSIONS) and not n.startswith(".")]
    return [os.path.join(directory, n) for n in sorted(names, key=_natural_key)]


def _read_frames_dir(path: str, max_frames: int | None) -> np.ndarray:
    files = list_frame_files(path)
    if not files:
        raise VideoDecodeError(path, f"directory has no frame images ({', '.join(FRAME_EXTENSIONS)})")
    if max_frames is not None:
        files = files[:max_frames]
    frames = []
    for f in files:
        try:
            with Image.open(f) as im:
                frames.append(np.asarray(im.convert("RGB")))
        except Exception as e:  # noqa: BLE001 - any pillow failure is a decode failure
            raise VideoDecodeError(path, f"frame {os.path.basename(f)!r}: {e}") from e
    return _stack(path, frames)


def _read_gif(path: str, max_frames: int | None) -> tuple[np.ndarray, float | None]:
    try:
        with Image.open(path) as im:
            frames, durations = [], []
            for frame in ImageSequence.Iterator(im):
                frames.append(np.asarray(frame.convert("RGB")))
                durations.append(frame.info.get("duration", 0) or 0)
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except VideoDecodeError:
        raise
    except Exception as e:  # noqa: BLE001
        raise VideoDecodeError(path, f"{type(e).__name__}: {e}") from e
    mean_ms = float(np.mean(durations)) if durations else 0.0
    return _stack(path, frames), (1000.0 / mean_ms if mean_ms > 0 else None)


def _read_ffmpeg(path: str, max_frames: int | None) -> tuple[np.ndarray, float | None]:
    import imageio.v3 as iio

    try:
        meta = iio.immeta(path, plugin="FFMPEG")
        frames = []
        for frame in iio.imiter(path, plugin="FFMPEG"):
            frames.append(_to_rgb_uint8(frame))
            if max_frames is not None and len(frames) >= max_frames:
                break
    except Exception as e:  # noqa: BLE001 - ffmpeg reports corrupt data in many ways
        msg = str(e).strip().splitlines()
        raise VideoDecodeError(path, f"{type(e).__name__}: {msg[-1] if msg else ''}") from e
    fps = meta.get("fps")
    fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else None
    return _stack(path, frames), fps


def read_video(path: str | os.PathLike, *, max_frames: int | None = None) -> tuple[np.ndarray, float | None]:
    """Decode a video file, gif, ``.npy`` or frames directory.

    Returns ``(video uint8 [T, H, W, 3], fps or None)``; ``max_frames`` stops
    decoding early. Raises :class:`VideoDecodeError` on any failure.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoDecodeError(path, "file not found")
    if os.path.isdir(path):
        return _read_frames_dir(path, max_frames), None
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "empty file")
    ext = os.path.splitext(path)[1].lower()
    if ext in GIF_EXTENSIONS:
        return _read_gif(path, max_frames)
    if ext == ".npy":
        try:
            video = np.load(path, allow_pickle=False)
        except Exception as e:  # noqa: BLE001
            raise VideoDecodeError(path, f"{type(e).__name__}: {e}") from e
        if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3 or not len(video):
            raise VideoDecodeError(path, f"expected uint8 [T>0, H, W, 3], got {video.dtype} {video.shape}")
        return (video if max_frames is None else video[:max_frames]), None
    return _read_ffmpeg(path, max_frames)


def is_video_path(path: str | os.PathLike) -> bool:
    """True for a file with a known video extension or a directory containing frames."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return bool(list_frame_files(path))
    return path.lower().endswith(ALL_EXTENSIONS)


# ----------------------------------------------------------------------------- encoding


def to_uint8(x: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Float array in ``value_range`` -> uint8 (clipped, rounded); uint8 passes through."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    lo, hi = value_range
    y = (x.astype(np.float32) - lo) / (hi - lo) * 255.0
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def _check_video(video: np.ndarray) -> np.ndarray:
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or not len(video):
        raise ValueError(f"expected a uint8 video [T>0, H, W, 3], got {video.dtype} {video.shape}")
    return video


def pad_to_even(video: np.ndarray) -> np.ndarray:
    """Pad height / width to even sizes by replicating the last row / column."""
    _, h, w, _ = video.shape
    if h % 2 == 0 and w % 2 == 0:
        return video
    return np.pad(video, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def write_mp4(
    path: str | os.PathLike, video: np.ndarray, fps: float = 8.0, *, crf: int = 18, pad_to_even_size: bool = True
) -> str:
    """Write uint8 ``[T, H, W, 3]`` as H.264/yuv420p mp4 (``crf``: 0 best .. 51 worst).

    Odd heights / widths are padded by one replicated row / column (see the module
    docstring) unless ``pad_to_even_size=False``, which raises ``ValueError``.
    """
    import imageio.v3 as iio

    video = _check_video(video)
    if video.shape[1] % 2 or video.shape[2] % 2:
        if not pad_to_even_size:
            raise ValueError(f"H.264/yuv420p needs even sizes, got {video.shape[1]}x{video.shape[2]}")
        video = pad_to_even(video)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    iio.imwrite(
        path,
        video,
        plugin="FFMPEG",
        fps=float(fps),
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=1,
        quality=None,
        output_params=["-crf", str(int(crf))],
        ffmpeg_log_level="error",
    )
    return path


def write_gif(path: str | os.PathLike, video: np.ndarray, fps: float = 8.0, *, loop: int = 0) -> str:
    """Write uint8 ``[T, H, W, 3]`` as an animated gif (palette-quantised per frame).

    GIF durations are stored in centiseconds, so the decoded fps is approximate.
    """
    video = _check_video(video)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    frames = [Image.fromarray(f) for f in video]
    frames[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=max(int(round(1000.0 / fps)), 10),
        loop=loop,
        disposal=1,
    )
    return path


def write_npy(path: str | os.PathLike, video: np.ndarray) -> str:
    """Write the exact uint8 array (lossless; read back with :func:`read_video`)."""
    video = _check_video(video)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.save(path, video, allow_pickle=False)
    return path


def write_frames(directory: str | os.PathLike, video: np.ndarray, ext: str = ".png") -> str:
    """Write one image per frame, named ``frame_00000.png`` ..."""
    video = _check_video(video)
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    for i, frame in enumerate(video):
        Image.fromarray(frame).save(os.path.join(directory, f"frame_{i:05d}{ext}"))
    return directory


def contact_sheet(
    videos: np.ndarray, *, separator: int = 2, separator_value: int = 255, max_frames: int | None = None
) -> np.ndarray:
    """Tile ``[N, T, H, W, 3]`` (or one ``[T, H, W, 3]``) into one uint8 image.

    Rows are samples, columns are frames, with ``separator``-pixel lines between
    them (no outer border). Float input is taken to be in [-1, 1]. ``max_frames``
    keeps that many evenly spaced frames (first and last included).
    """
    videos = to_uint8(np.asarray(videos))
    if videos.ndim == 4:
        videos = videos[None]
    if videos.ndim != 5 or videos.shape[-1] not in (1, 3):
        raise ValueError(f"expected [N, T, H, W, 3], got {videos.shape}")
    if videos.shape[-1] == 1:
        videos = np.repeat(videos, 3, axis=-1)
    n, t, h, w, c = videos.shape
    if max_frames is not None and t > max_frames:
        videos = videos[:, np.round(np.linspace(0, t - 1, max_frames)).astype(int)]
        t = max_frames
    s = separator
    sheet = np.full((n * h + (n - 1) * s, t * w + (t - 1) * s, c), separator_value, np.uint8)
    for i in range(n):
        for j in range(t):
            sheet[i * (h + s) : i * (h + s) + h, j * (w + s) : j * (w + s) + w] = videos[i, j]
    return sheet


def save_png(path: str | os.PathLike, image: np.ndarray) -> str:
    """Save a uint8 ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` (or float in [-1, 1]) image as png."""
    image = to_uint8(np.asarray(image))
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")
    return path


# ----------------------------------------------------------------------------- spatial


def _size_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def resize_and_center_crop(video: np.ndarray, size: int | Sequence[int], *, resample: str = "auto") -> np.ndarray:
    """Resize ``[T, H, W, 3]`` (or one ``[H, W, 3]`` image) to cover ``size`` and crop the centre.

    ``size``: an int (square) or ``(height, width)``. ``resample``: ``"auto"``
    (area / BOX when shrinking, BICUBIC when enlarging), ``"area"``, ``"bicubic"``
    or ``"bilinear"``.
    """
    video = np.asarray(video)
    single = video.ndim == 3
    if single:
        video = video[None]
    th, tw = _size_hw(size)
    _, h, w, _ = video.shape
    scale = max(th / h, tw / w)
    nh, nw = max(th, int(round(h * scale))), max(tw, int(round(w * scale)))
    filters = {"area": Image.Resampling.BOX, "bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
    if resample == "auto":
        flt = filters["area"] if scale < 1 else filters["bicubic"]
    elif resample in filters:
        flt = filters[resample]
    else:
        raise ValueError(f"unknown resample {resample!r}; use auto, {', '.join(filters)}")
    top, left = (nh - th) // 2, (nw - tw) // 2
    out = np.empty((len(video), th, tw, 3), np.uint8)
    for i, frame in enumerate(video):
        if (nh, nw) != (h, w):
            frame = np.asarray(Image.fromarray(frame).resize((nw, nh), resample=flt))
        out[i] = frame[top : top + th, left : left + tw]
    return out[0] if single else out


# ----------------------------------------------------------------------------- temporal


def resample_indices(num_frames: int, src_fps: float | None, target_fps: float | None) -> np.ndarray:
    """Source frame indices for a target frame rate (nearest previous frame).

    Output frame k shows time ``k / target_fps`` and takes source frame
    ``floor(k * src_fps / target_fps)``; output frames cover the source duration
    ``num_frames / src_fps`` (``ceil(num_frames * target_fps / src_fps)`` of them).
    With an unknown rate on either side, every frame is kept.
    """
    if num_frames <= 0:
        return np.zeros((0,), np.int64)
    if not src_fps or not target_fps:
        return np.arange(num_frames)
    step = float(src_fps) / float(target_fps)
    count = max(1, int(np.ceil(num_frames / step - 1e-6)))
    idx = np.floor(np.arange(count) * step + 1e-6).astype(np.int64)
    return np.minimum(idx, num_frames - 1)


def resample_fps(video: np.ndarray, src_fps: float | None, target_fps: float | None) -> np.ndarray:
    """``video`` resampled in time from ``src_fps`` to ``target_fps`` (see :func:`resample_indices`)."""
    return np.asarray(video)[resample_indices(len(video), src_fps, target_fps)]


def clip_starts(length: int, num_frames: int, stride: int | None = None, max_clips: int | None = None) -> list[int]:
    """Start frames of clips of ``num_frames`` every ``stride`` (default: ``num_frames``,
    non-overlapping) that fit in ``length``; empty when too short."""
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    stride = num_frames if stride is None else int(stride)
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    starts = list(range(0, length - num_frames + 1, stride))
    return starts if max_clips is None else starts[:max_clips]


def temporal_clips(
    video: np.ndarray, num_frames: int, stride: int | None = None, max_clips: int | None = None
) -> Iterable[tuple[int, np.ndarray]]:
    """Yield ``(start, video[start:start + num_frames])`` for :func:`clip_starts`."""
    for s in clip_starts(len(video), num_frames, stride, max_clips):
        yield s, video[s : s + num_frames]


def sample_clip(
    video: np.ndarray,
    src_fps: float | None,
    *,
    num_frames: int,
    target_fps: float | None = None,
    start: int = 0,
    size: int | Sequence[int] | None = None,
) -> np.ndarray:
    """One clip: resample to ``target_fps``, take ``num_frames`` from ``start``
    (in resampled frames), then resize + centre-crop to ``size``. Raises
    ``ValueError`` when the video is too short."""
    idx = resample_indices(len(video), src_fps, target_fps)
    if start + num_frames > len(idx):
        raise ValueError(
            f"video too short: {len(idx)} frames at {target_fps or src_fps} fps, need {start + num_frames}"
        )
    clip = np.asarray(video)[idx[start : start + num_frames]]
    return clip if size is None else resize_and_center_crop(clip, size)
