"""Generic random-access sources and views over video sources.

A *source* is anything with ``__len__`` and ``__getitem__(int) -> record`` (tfds /
ArrayRecord data sources, :class:`lumiere_jax.data.moving_shapes.MovingShapesSource`,
lists of dicts, grain ``RandomAccessDataSource``s). Video records follow the shared
schema ``{'video': uint8 [T, H, W, 3], 'caption': str, ...}``.

:class:`ImageView` turns a video source into an image source for text-to-image
pre-training (Lumiere trains the T2I base model first, then inflates it).
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Source(Protocol):
    """Random-access source: ``len(src)`` records, ``src[i]`` for 0 <= i < len(src)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


def as_str(v: Any) -> str:
    """A record's string field as ``str``: tfds returns ``bytes`` (or 0-d arrays of them)."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, (bytes, bytearray, np.bytes_)):
        return bytes(v).decode("utf-8")
    return str(v)


class ImageView:
    """Every frame of every video as an image record.

    ``len(view) == len(videos) * frames_per_video``; index ``i`` maps to video
    ``i // frames_per_video``, frame ``i % frames_per_video`` (so consecutive indices
    are frames of one video; shuffle with the sampler). ``view[i]`` ->
    ``{'image': uint8 [H, W, 3], 'caption': str}``, plus ``'video_index'`` /
    ``'frame_index'`` if ``with_indices``.

    ``frames_per_video`` defaults to the frame count of ``videos[0]`` (all videos must
    have at least that many frames; with fewer a ValueError is raised on access).
    """

    def __init__(
        self,
        videos: Source,
        frames_per_video: int | None = None,
        *,
        video_key: str = "video",
        caption_key: str = "caption",
        with_indices: bool = False,
    ):
        self.videos = videos
        self.video_key, self.caption_key = video_key, caption_key
        self.with_indices = with_indices
        if frames_per_video is None:
            if len(videos) == 0:
                raise ValueError("frames_per_video must be given for an empty source")
            frames_per_video = int(videos[0][video_key].shape[0])
        if frames_per_video < 1:
            raise ValueError("frames_per_video must be >= 1")
        self.frames_per_video = int(frames_per_video)

    def __len__(self) -> int:
        return len(self.videos) * self.frames_per_video

    def locate(self, index: int) -> tuple[int, int]:
        """``index`` -> (video index, frame index); negative indices count from the end."""
        n = len(self)
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        return divmod(index, self.frames_per_video)

    def _record(self, record: Any, video_index: int, frame_index: int) -> dict[str, Any]:
        video = record[self.video_key]
        if video.shape[0] < self.frames_per_video:
            raise ValueError(f"video {video_index} has {video.shape[0]} frames < {self.frames_per_video}")
        out = {"image": video[frame_index], "caption": as_str(record[self.caption_key])}
        if self.with_indices:
            out["video_index"], out["frame_index"] = video_index, frame_index
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        v, f = self.locate(index)
        return self._record(self.videos[v], v, f)

    def __getitems__(self, indices: Iterable[int]) -> list[dict[str, Any]]:
        """Batch access: reads (and decodes) each distinct video once."""
        located = [self.locate(i) for i in indices]
        unique = sorted({v for v, _ in located})
        getitems = getattr(self.videos, "__getitems__", None)
        records: Sequence[Any] = getitems(unique) if getitems is not None else [self.videos[v] for v in unique]
        by_video = dict(zip(unique, records))
        return [self._record(by_video[v], v, f) for v, f in located]

    def __repr__(self) -> str:
        return f"ImageView({len(self.videos)} videos x {self.frames_per_video} frames)"
