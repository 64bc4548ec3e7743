"""Style variants of moving_shapes frames, for stylized generation (Lumiere §4.1) experiments.

Pure-numpy transforms of uint8 frames ``[..., H, W, 3]`` showing bright objects on a black
background (``config.data.style`` applies one to every clip of the dataset, see
:func:`lumiere_jax.data.sources.make_source`; both the video and the T2I image view see it):

* ``"none"``    -- the frames unchanged.
* ``"outline"`` -- only the object's 1 px outline stays: a pixel is *lit* when its max channel is
  > :data:`LIT_THRESHOLD` (40); lit pixels whose four 4-neighbours are all lit (pixels outside
  the frame count as unlit) are the *interior* and become background (0). Everything else,
  the ring and the faint anti-aliased pixels outside it, keeps its value.
* ``"tinted"``  -- the background becomes :data:`TINT` (dark blue, (0, 0, 32)); objects keep their
  colour. Anti-aliased edge pixels are blended by coverage: with coverage ``a = max channel / 255``
  (exact for moving_shapes, whose palette colours all have a 255 channel, edge pixels are
  ``a * colour``) the pixel becomes ``pixel + (1 - a) * TINT``, i.e. ``a * colour + (1 - a) * TINT``.
  The tint's max channel, 32 / 255 = 0.125, stays well below the probe's object threshold (0.3, see
  :mod:`lumiere_jax.eval.probe`; 44 levels of margin for noisy generated frames), so the probe still
  finds the object, its colour and motion on tinted frames. (Its shape reading, a fill ratio over
  max-channel intensity, is slightly biased by any non-black background: brighter tints turned
  noisy triangles into circles, hence this dark one.)

:func:`style_statistics` measures which style frames (rendered or generated, uint8 or float in
[-1, 1]) look like: background colour, fill ratio and interior ratio of the object.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

STYLES = ("none", "outline", "tinted")
LIT_THRESHOLD = 40  # uint8: a pixel is lit (object) when its max channel exceeds this
TINT = (0, 0, 32)  # "tinted" background colour (uint8 RGB)


def _check_style(style: str) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; valid styles: {STYLES}")


def _check_frames(frames: Any) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise TypeError(f"styles apply to uint8 frames [..., H, W, 3], got dtype {frames.dtype}")
    if frames.ndim < 3 or frames.shape[-1] != 3:
        raise ValueError(f"styles apply to frames of shape [..., H, W, 3], got {frames.shape}")
    return frames


def interior_mask(lit: np.ndarray) -> np.ndarray:
    """Pixels of a boolean mask [..., H, W] whose four 4-neighbours are all set (outside = unset)."""
    pad = [(0, 0)] * (lit.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(lit, pad, constant_values=False)
    return lit & p[..., :-2, 1:-1] & p[..., 2:, 1:-1] & p[..., 1:-1, :-2] & p[..., 1:-1, 2:]


def outline(frames: np.ndarray) -> np.ndarray:
    """The ``"outline"`` style (see the module docstring)."""
    frames = _check_frames(frames)
    interior = interior_mask(frames.max(axis=-1) > LIT_THRESHOLD)
    return np.where(interior[..., None], np.uint8(0), frames)


def tinted(frames: np.ndarray, tint: tuple[int, int, int] = TINT) -> np.ndarray:
    """The ``"tinted"`` style (see the module docstring)."""
    frames = _check_frames(frames)
    f = frames.astype(np.float32)
    uncovered = 1.0 - f.max(axis=-1, keepdims=True) / 255.0
    out = f + uncovered * np.asarray(tint, np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def apply_style(frames: np.ndarray, style: str) -> np.ndarray:
    """``frames`` (uint8 [..., H, W, 3]) in ``style`` (one of :data:`STYLES`). ``"none"`` returns
    the input array itself."""
    _check_style(style)
    frames = _check_frames(frames)
    if style == "outline":
        return outline(frames)
    if style == "tinted":
        return tinted(frames)
    return frames


def _to_uint8(frames: Any) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    if np.issubdtype(frames.dtype, np.floating):  # model outputs in [-1, 1]
        return np.clip(np.rint((frames.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    raise TypeError(f"expected uint8 frames or floating frames in [-1, 1], got dtype {frames.dtype}")


def style_statistics(frames: Any) -> dict[str, Any]:
    """Numbers that tell the styles apart, robust to noisy generated frames.

    ``frames``: uint8 [..., H, W, 3] or float in [-1, 1]. Returns

    * ``background_rgb``: per-channel median over all pixels (the background dominates every
      frame): ~(0, 0, 0) for ``none`` / ``outline``, ~:data:`TINT` for ``tinted``;
    * ``fill_ratio``: per frame, the object is the largest 8-connected component of pixels that
      differ from ``background_rgb`` by more than :data:`LIT_THRESHOLD` in some channel (isolated
      noise specks are ignored); fill = lit pixels inside its bounding box / box area. Median over
      frames with an object (square ~1, circle ~0.8, triangle ~0.5; outlines lower);
    * ``interior_ratio``: per frame, the share of the object's pixels whose four 4-neighbours are
      lit too; median over frames. 0 for outlines, clearly > 0 for filled objects of >= 4 px;
    * ``object_frames``: number of frames with an object (ratios are nan when 0).
    """
    u8 = _to_uint8(frames)
    if u8.ndim < 3 or u8.shape[-1] != 3:
        raise ValueError(f"expected frames [..., H, W, 3], got {u8.shape}")
    from scipy import ndimage

    flat = u8.reshape(-1, *u8.shape[-3:])
    background = np.median(flat.reshape(-1, 3).astype(np.float32), axis=0)
    lit_all = np.abs(flat.astype(np.float32) - background).max(axis=-1) > LIT_THRESHOLD
    fills, interiors = [], []
    for lit in lit_all:
        if not lit.any():
            continue
        labels, n = ndimage.label(lit, structure=np.ones((3, 3), bool))
        sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
        blob = labels == int(np.argmax(sizes)) + 1
        ys, xs = np.nonzero(blob)
        box = lit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        fills.append(float(box.sum()) / box.size)
        interiors.append(float((interior_mask(lit) & blob).sum()) / float(blob.sum()))
    return {
        "background_rgb": tuple(float(c) for c in background),
        "fill_ratio": float(np.median(fills)) if fills else float("nan"),
        "interior_ratio": float(np.median(interiors)) if interiors else float("nan"),
        "object_frames": len(fills),
    }


class StyledSource:
    """A random-access video source whose records' ``key`` frames (uint8) are in ``style``.

    Records are shallow copies; other fields pass through. ``__getitems__`` is forwarded when the
    wrapped source has it (so :class:`lumiere_jax.data.views.ImageView` batch reads stay batched).
    """

    def __init__(self, source: Any, style: str, key: str = "video"):
        _check_style(style)
        self.source, self.style, self.key = source, style, key

    def __len__(self) -> int:
        return len(self.source)

    def _styled(self, record: Any) -> dict[str, Any]:
        out = dict(record)
        out[self.key] = apply_style(out[self.key], self.style)
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._styled(self.source[index])

    def __getitems__(self, indices: Iterable[int]) -> list[dict[str, Any]]:
        getitems = getattr(self.source, "__getitems__", None)
        records = getitems(list(indices)) if getitems is not None else [self.source[i] for i in indices]
        return [self._styled(r) for r in records]

    def __repr__(self) -> str:
        return f"StyledSource({self.source!r}, style={self.style!r})"
