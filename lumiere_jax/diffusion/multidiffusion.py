"""Temporal MultiDiffusion (Lumiere §3.2 / App. C): denoising overlapping temporal windows.

A model that only sees T' frames at a time (Lumiere's spatial super-resolution network) is run on
overlapping temporal windows of a longer video ``[B, T, ...]``. At every denoising step each
window takes its own sampler step, and the windows' results are merged by a per-frame weighted
average (weights of all windows covering a frame sum to one), so the next step starts from one
coherent video.

The step's noise is drawn once for the whole video and each window gets its slice of it, so frames
shared by windows see identical noise (the loop that drives the steps, with its key convention:
`lumiere_jax.sampling.loop`). Solver state (DPM-Solver++'s previous x0 prediction) is kept per
window, with a leading window axis. With a single window covering the whole clip the result is
exactly that of plain sampling; with a model that treats frames independently it equals plain
sampling up to float rounding. (Dynamic thresholding is computed per window, i.e. over the
window's frames, so it is the one per-window-dependent sampler option.)

Windows that do not overlap (``overlap=0``) give the "no MultiDiffusion" baseline of the paper's
Fig. 14: each window is denoised on its own and the results are just stitched together.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lumiere_jax import axes
from lumiere_jax.diffusion.samplers import Sampler

WEIGHT_KINDS = ("uniform", "triangular")

# model_fn(x_window [B, T', ...], t [B], *cond_windows) -> model output for the window.
WindowModelFn = Callable[..., jax.Array]


@dataclasses.dataclass(frozen=True)
class WindowLayout:
    """Static placement of temporal windows: ``starts[k]`` is the first frame of window k.

    Hashable, so it can be a static argument of ``jax.jit``.
    """

    starts: tuple[int, ...]
    window: int
    num_frames: int

    @property
    def num_windows(self) -> int:
        return len(self.starts)


def window_layout(num_frames: int, window: int, overlap: int = 2) -> WindowLayout:
    """Windows of ``window`` frames with stride ``window - overlap`` covering ``num_frames``.

    Starts are 0, stride, 2*stride, ... while the window fits; if the last one does not reach the
    end, a final window aligned to the end (start ``num_frames - window``) is added, so it overlaps
    its neighbour by more than ``overlap``. ``overlap=0`` gives non-overlapping windows.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got window={window}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got overlap={overlap}")
    if overlap >= window:
        raise ValueError(f"overlap must be < window, got overlap={overlap}, window={window}")
    if num_frames < window:
        raise ValueError(f"the video is shorter than one window: num_frames={num_frames} < window={window}")
    stride = window - overlap
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return WindowLayout(starts=tuple(starts), window=window, num_frames=num_frames)


def _raw_weights(window: int, kind: str) -> np.ndarray:
    j = np.arange(window, dtype=np.float64)
    if kind == "uniform":
        return np.ones(window, np.float64)
    if kind == "triangular":
        return np.minimum(j + 1, window - j)
    raise ValueError(f"Unknown weight kind {kind!r}; valid kinds: {', '.join(WEIGHT_KINDS)}")


def window_weights(layout: WindowLayout, kind: str = "uniform") -> np.ndarray:
    """Per-window per-frame weights, float32 ``[num_windows, window]``.

    Normalised so that for every frame of the video the weights of the windows covering it sum
    to one. ``uniform``: all covering windows count equally (the paper's default);
    ``triangular``: raw weight ``min(j + 1, window - j)``, so window centres dominate.
    """
    raw = _raw_weights(layout.window, kind)
    total = np.zeros(layout.num_frames, np.float64)
    for s in layout.starts:
        total[s : s + layout.window] += raw
    w = np.stack([raw / total[s : s + layout.window] for s in layout.starts])
    return w.astype(np.float32)


def extract_windows(video: jax.Array, layout: WindowLayout) -> jax.Array:
    """``[B, T, ...]`` -> ``[num_windows, B, T', ...]`` (static slices along the frame axis)."""
    check_frames(video, layout, "video")
    if layout.num_windows == 1 and layout.window == layout.num_frames:
        return video[None]  # keep the whole-clip case a plain reshape (bit-exact vs. samplers)
    return jnp.stack([video[:, s : s + layout.window] for s in layout.starts])


def combine_windows(windows: jax.Array, layout: WindowLayout, weights: Any) -> jax.Array:
    """Weighted scatter-add ``[num_windows, B, T', ...]`` -> ``[B, T, ...]``.

    The layout is static, so this unrolls into static slice updates (no scatter op).

    ``weights`` is ``[num_windows, T']`` (see :func:`window_weights`); frame weights broadcast
    over the batch and all trailing dims.
    """
    n, w = layout.num_windows, layout.window
    if windows.shape[0] != n or windows.shape[2] != w:
        raise ValueError(f"windows of shape {windows.shape} do not match the layout (num_windows={n}, window={w})")
    weights = jnp.asarray(weights, windows.dtype)
    if weights.shape != (n, w):
        raise ValueError(f"weights must have shape {(n, w)}, got {weights.shape}")
    trailing = (1,) * (windows.ndim - 3)
    out = jnp.zeros((windows.shape[1], layout.num_frames) + windows.shape[3:], windows.dtype)
    for k, s in enumerate(layout.starts):
        wk = weights[k].reshape((1, w) + trailing)
        acc = jax.lax.slice_in_dim(out, s, s + w, axis=1) + wk * windows[k]
        out = jax.lax.dynamic_update_slice_in_dim(out, acc, s, axis=1)
    return out


def init_multidiffusion_state(sampler: Sampler, x_T: jax.Array, layout: WindowLayout) -> Any:
    """Per-window solver state before step 0, with a leading window axis."""
    return jax.vmap(sampler.init_state)(extract_windows(x_T, layout))


def _fold(x: jax.Array) -> jax.Array:
    """[num_windows, B, ...] -> [num_windows * B, ...] (window-major), split over the batch mesh
    axes when a mesh and rules are active (no-op otherwise)."""
    x = x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:])
    return nn.with_logical_constraint(x, (axes.BATCH,) + (None,) * (x.ndim - 1))


def _eval_windows(
    model_fn: WindowModelFn,
    xw: jax.Array,
    t: jax.Array,
    cond_ws: tuple[jax.Array, ...],
    chunk_size: int | None,
    fold_windows: bool = False,
) -> jax.Array:
    def f(args):
        x, cs = args
        return model_fn(x, t, *cs)

    if xw.shape[0] == 1:
        # A single window (e.g. the whole clip): call the model as plain sampling would, unbatched.
        return f((xw[0], tuple(c[0] for c in cond_ws)))[None]
    if chunk_size is None and fold_windows:
        # One model call on a batch of num_windows * B: the windows share the batch axis, so the
        # model's batch sharding splits them over devices (vmap would leave the window axis whole).
        n = xw.shape[0]
        out = model_fn(_fold(xw), jnp.tile(t, n), *(_fold(c) for c in cond_ws))
        return out.reshape((n, xw.shape[1]) + out.shape[1:])
    if chunk_size is None:
        return jax.vmap(f)((xw, cond_ws))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 or None, got chunk_size={chunk_size}")
    return jax.lax.map(f, (xw, cond_ws), batch_size=chunk_size)


def multidiffusion_step(
    sampler: Sampler,
    state: Any,
    i: jax.Array | int,
    x: jax.Array,
    model_fn: WindowModelFn,
    noise: jax.Array | None,
    layout: WindowLayout,
    weights: Any,
    *,
    conds: Sequence[jax.Array] = (),
    chunk_size: int | None = None,
    fold_windows: bool = False,
) -> tuple[jax.Array, Any]:
    """One MultiDiffusion step: per-window sampler steps merged by per-frame weighted averaging.

    ``x`` and every entry of ``conds`` are ``[B, T, ...]`` and are windowed alike; ``noise`` is one
    full-video array (or None for deterministic samplers) sliced per window. The model runs on
    ``chunk_size`` windows at a time (``jax.lax.map``; None: all windows in one vmapped call, or,
    with ``fold_windows``, in one call on a batch of ``num_windows * B`` (window-major) whose batch
    axis a mesh splits: ``model_fn`` must then accept that batch, i.e. repeat any per-example
    context it closes over ``num_windows`` times).
    ``state`` comes from :func:`init_multidiffusion_state`. Returns ``(x_next, new_state)``.
    """
    if sampler.needs_noise and noise is None:
        raise ValueError(f"sampler {sampler.name!r} (eta={sampler.eta}) needs a noise array")
    xw = extract_windows(x, layout)
    cond_ws = tuple(extract_windows(c, layout) for c in conds)
    t = jnp.full((x.shape[0],), sampler.timesteps[i], jnp.int32)
    out = _eval_windows(model_fn, xw, t, cond_ws, chunk_size, fold_windows)
    noise_w = None if noise is None else extract_windows(noise, layout)

    def step(s, xk, ok, nk):
        return sampler.step(s, i, xk, ok, nk)

    x_next_w, state = jax.vmap(step, in_axes=(0, 0, 0, None if noise_w is None else 0))(state, xw, out, noise_w)
    return combine_windows(x_next_w, layout, weights).astype(x.dtype), state


def check_frames(video: jax.Array, layout: WindowLayout, name: str) -> None:
    if video.ndim < 2 or video.shape[1] != layout.num_frames:
        raise ValueError(
            f"{name} of shape {video.shape} must be [B, T, ...] with T={layout.num_frames} "
            "frames (the layout's num_frames)"
        )
