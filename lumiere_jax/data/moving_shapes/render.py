"""The moving_shapes renderer (numpy only, no tensorflow-datasets): the combinations and their
captions, clip specs, anti-aliased rendering and records. The dataset as a whole: the package
docstring (`lumiere_jax.data.moving_shapes`)."""

from __future__ import annotations

import dataclasses
import itertools
import re
from typing import Any, Mapping, Sequence

import numpy as np

from lumiere_jax.data.views import as_str


COLORS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
    "white": (255, 255, 255),
}
SHAPES: tuple[str, ...] = ("square", "circle", "triangle")
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")
# Unit motion vector (dy, dx) per direction, image coordinates (y grows downwards).
DIRECTION_VECTORS: dict[str, tuple[int, int]] = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}

Combo = tuple[str, str, str]  # (color, shape, direction)
ALL_COMBOS: tuple[Combo, ...] = tuple(itertools.product(COLORS, SHAPES, DIRECTIONS))
# 8 of 84 (~10%): every colour once (red twice), each shape and direction 2-3 times; no
# two held-out combos share a (colour, shape), (colour, direction) or (shape, direction)
# pair, so every colour, shape, direction and every such pair still occurs in train.
HELD_OUT: frozenset[Combo] = frozenset(
    {
        ("red", "square", "left"),
        ("green", "circle", "right"),
        ("blue", "triangle", "up"),
        ("yellow", "square", "down"),
        ("cyan", "triangle", "left"),
        ("magenta", "circle", "up"),
        ("white", "triangle", "right"),
        ("red", "circle", "down"),
    }
)
TRAIN_COMBOS: tuple[Combo, ...] = tuple(c for c in ALL_COMBOS if c not in HELD_OUT)
HELD_OUT_COMBOS: tuple[Combo, ...] = tuple(c for c in ALL_COMBOS if c in HELD_OUT)

SUPERSAMPLE = 4
EDGE_MARGIN = 0.5  # px between the object's extent and the frame border
TRAVEL_FRACTION = 0.5  # of the frame extent along the motion axis
SPEED_JITTER = 0.15  # relative
PERPENDICULAR_JITTER = 0.125  # of the frame extent perpendicular to the motion
_CAPTION_RE = re.compile(r"^\s*a\s+(\w+)\s+(\w+)\s+moving\s+(\w+)\s*$")


def _hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def object_diameter(size: int | Sequence[int]) -> float:
    """Object diameter D (px) for a frame of ``size`` (int or (H, W)): min(H, W) / 4."""
    return min(_hw(size)) / 4.0


def centroid_offset(shape: str, diameter: float) -> tuple[float, float]:
    """(dy, dx) from the shape's centre (``ClipSpec.start``) to its area centroid."""
    if shape == "triangle":  # apex at -r, base at +r: centroid 1/3 of the way down
        return diameter / 6.0, 0.0
    return 0.0, 0.0


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """One clip. ``start`` is the object centre (y, x) in frame 0 (pixel-index coords,
    the centre of the bounding box), ``velocity`` (vy, vx) in px / frame."""

    color: str
    shape: str
    direction: str
    start: tuple[float, float]
    velocity: tuple[float, float]
    diameter: float | None = None  # None: object_diameter(size) at render time

    def __post_init__(self):
        if self.color not in COLORS:
            raise ValueError(f"unknown colour {self.color!r}")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {self.direction!r}")

    @property
    def combo(self) -> Combo:
        return (self.color, self.shape, self.direction)

    def centers(self, num_frames: int) -> np.ndarray:
        """Object centres [T, 2] (y, x) for frames 0..T-1."""
        t = np.arange(num_frames, dtype=np.float64)[:, None]
        return np.asarray(self.start, np.float64)[None] + t * np.asarray(self.velocity, np.float64)[None]


def caption(spec: ClipSpec | Combo) -> str:
    """``"a {color} {shape} moving {direction}"``."""
    color, shape, direction = spec.combo if isinstance(spec, ClipSpec) else spec
    return f"a {color} {shape} moving {direction}"


def parse_caption(text: str | bytes) -> Combo:
    """Inverse of :func:`caption` -> (color, shape, direction); ValueError if unparsable."""
    m = _CAPTION_RE.match(as_str(text).lower())
    if m is None:
        raise ValueError(f"not a moving_shapes caption: {text!r}")
    color, shape, direction = m.groups()
    if color not in COLORS or shape not in SHAPES or direction not in DIRECTIONS:
        raise ValueError(f"unknown colour/shape/direction in caption: {text!r}")
    return color, shape, direction


def sample_spec(
    rng: np.random.Generator,
    size: int | Sequence[int],
    num_frames: int,
    combos: Sequence[Combo] = ALL_COMBOS,
    *,
    combo: Combo | None = None,
) -> ClipSpec:
    """Samples a clip: a combination (uniform over ``combos``, or ``combo`` if given),
    speed and start position such that the object is fully inside every frame."""
    if num_frames < 2:
        raise ValueError("num_frames must be >= 2")
    h, w = _hw(size)
    if combo is None:
        combo = tuple(combos[int(rng.integers(len(combos)))])
    color, shape, direction = combo
    diameter = object_diameter((h, w))
    r = diameter / 2.0
    dy, dx = DIRECTION_VECTORS[direction]
    along, perp = (w, h) if dx else (h, w)  # frame extents along / across the motion
    lo, hi = r - 0.5 + EDGE_MARGIN, along - 0.5 - r - EDGE_MARGIN  # allowed centre range
    dist = TRAVEL_FRACTION * along * rng.uniform(1 - SPEED_JITTER, 1 + SPEED_JITTER)
    dist = min(dist, hi - lo)
    slack = (hi - lo) - dist
    mid = (lo + hi) / 2 + rng.uniform(-0.5, 0.5) * slack
    sign = dx + dy  # +1 right/down, -1 left/up
    start_along = mid - sign * dist / 2
    p_lo, p_hi = r - 0.5 + EDGE_MARGIN, perp - 0.5 - r - EDGE_MARGIN
    start_perp = float(np.clip((perp - 1) / 2 + rng.uniform(-1, 1) * PERPENDICULAR_JITTER * perp, p_lo, p_hi))
    speed = sign * dist / (num_frames - 1)
    if dx:
        start, velocity = (start_perp, start_along), (0.0, speed)
    else:
        start, velocity = (start_along, start_perp), (speed, 0.0)
    return ClipSpec(
        color, shape, direction, (float(start[0]), float(start[1])), (float(velocity[0]), float(velocity[1])), diameter
    )


def coverage(
    shape: str, centers: np.ndarray, diameter: float, size: int | Sequence[int], supersample: int = SUPERSAMPLE
) -> np.ndarray:
    """Fraction of each pixel covered by the shape: float32 [T, H, W] in [0, 1] for
    object centres ``centers`` [T, 2] (y, x); ``supersample`` x ``supersample`` point
    samples per pixel. Parts outside the frame are cut off."""
    h, w = _hw(size)
    centers = np.asarray(centers, np.float64).reshape(-1, 2)
    t, s, r = centers.shape[0], int(supersample), diameter / 2.0
    # Evaluate only a k x k window per frame that contains the object's extent
    # [c - r, c + r]: pixels i with i + 0.5 > c - r and i - 0.5 < c + r.
    k = int(np.ceil(diameter)) + 2
    origin = np.floor(centers - r - 0.5).astype(np.int64)  # [T, 2] first window pixel
    offs = (np.arange(s) + 0.5) / s - 0.5
    grid = (np.arange(k)[:, None] + offs[None]).reshape(-1)  # [k*s] window-relative
    ddy = (origin[:, 0, None] + grid[None] - centers[:, 0, None])[:, :, None]  # [T, ks, 1]
    ddx = (origin[:, 1, None] + grid[None] - centers[:, 1, None])[:, None, :]  # [T, 1, ks]
    if shape == "square":
        inside = (np.abs(ddy) <= r) & (np.abs(ddx) <= r)
    elif shape == "circle":
        inside = ddy * ddy + ddx * ddx <= r * r
    elif shape == "triangle":  # apex (-r, 0), base corners (+r, +-r)
        inside = (ddy >= -r) & (ddy <= r) & (np.abs(ddx) <= (ddy + r) / 2)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    win = inside.reshape(t, k, s, k, s).mean(axis=(2, 4), dtype=np.float32)
    out = np.zeros((t, h, w), np.float32)
    for i, (oy, ox) in enumerate(origin):
        y0, y1, x0, x1 = max(oy, 0), min(oy + k, h), max(ox, 0), min(ox + k, w)
        if y0 < y1 and x0 < x1:
            out[i, y0:y1, x0:x1] = win[i, y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    return out


def render_clip(
    spec: ClipSpec, num_frames: int, size: int | Sequence[int], supersample: int = SUPERSAMPLE
) -> np.ndarray:
    """Renders ``spec`` -> uint8 [T, H, W, 3]."""
    diameter = spec.diameter if spec.diameter is not None else object_diameter(size)
    cov = coverage(spec.shape, spec.centers(num_frames), diameter, size, supersample)
    rgb = np.asarray(COLORS[spec.color])
    if np.isin(rgb, (0, 255)).all():  # fast path, same values: scale once, then mask channels
        return np.rint(cov * np.float32(255)).astype(np.uint8)[..., None] * (rgb == 255).astype(np.uint8)
    return np.rint(cov[..., None] * rgb.astype(np.float32)).astype(np.uint8)


def spec_from_record(record: Mapping[str, Any]) -> ClipSpec:
    """The :class:`ClipSpec` stored in a dataset record."""
    start, vel = np.asarray(record["start"], np.float64), np.asarray(record["velocity"], np.float64)
    return ClipSpec(
        as_str(record["color"]),
        as_str(record["shape"]),
        as_str(record["direction"]),
        (float(start[0]), float(start[1])),
        (float(vel[0]), float(vel[1])),
        float(record["diameter"]),
    )


SPLITS: tuple[str, ...] = ("train", "test", "held_out")
_SPLIT_IDS = {"train": 0, "test": 1, "held_out": 2}


def split_combos(split: str) -> tuple[Combo, ...]:
    """The combinations a split draws from (``train`` and ``test`` share them)."""
    return HELD_OUT_COMBOS if split == "held_out" else TRAIN_COMBOS


def example_spec(seed: int, split: str, index: int, size: int | Sequence[int], num_frames: int) -> ClipSpec:
    """Spec of example ``index`` of ``split``: depends only on (seed, split, index), so
    the dataset is identical whatever the build order or parallelism. Combinations are
    balanced (example i uses combo i mod n); positions/speeds come from a per-example
    generator seeded with (seed, split id, index)."""
    combos = split_combos(split)
    rng = np.random.default_rng([int(seed), _SPLIT_IDS[split], int(index)])
    return sample_spec(rng, size, num_frames, combo=combos[index % len(combos)])


def make_record(spec: ClipSpec, num_frames: int, size: int | Sequence[int]) -> dict[str, Any]:
    """A record in the shared schema (``caption`` as ``str``)."""
    return {
        "video": render_clip(spec, num_frames, size),
        "caption": caption(spec),
        "color": spec.color,
        "shape": spec.shape,
        "direction": spec.direction,
        "start": np.asarray(spec.start, np.float32),
        "velocity": np.asarray(spec.velocity, np.float32),
        "diameter": np.float32(spec.diameter if spec.diameter is not None else object_diameter(size)),
    }


_STRING_KEYS = ("caption", "color", "shape", "direction")


def decode_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """tfds returns strings as ``bytes``: decode them to ``str`` (other values as is)."""
    out = dict(record)
    for k in _STRING_KEYS:
        if k in out:
            out[k] = as_str(out[k])
    return out
