"""The one denoising loop. Every sampling path runs it: the sampling API (`sampling.Generator`:
text-to-video, super-resolution with MultiDiffusion, the conditional tasks, SDEdit, style) and
the sampler tests (`sample`, `sample_multidiffusion`).

A step (`make_step`) evaluates the model once per step (on the whole video, or on overlapping
temporal windows combined by MultiDiffusion: no layout = one window) and takes the sampler's
step; `run` drives it from step 0 to the end, optionally replacing part of the sample after every
step but the last (`after_step`: the conditional model's replacement method).

Random keys (one convention everywhere): sample b of a batch has its own key k_b, and step i's
noise for it is `normal(fold_in(k_b, i), x.shape[1:])`, drawn for the whole video (MultiDiffusion
windows take their slices of it, so frames shared by windows see the same noise). A sample's
noise therefore depends on its key alone, whatever else is in the batch.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lumiere_jax.diffusion import multidiffusion as md
from lumiere_jax.diffusion import samplers
from lumiere_jax.diffusion.samplers import Sampler
from lumiere_jax.diffusion.schedules import Schedule

# model_fn(args, x [B, T', ...], t [B], *conds) -> model output; `args` is what varies between
# calls without recompiling (parameters, text context, ...).
StepModelFn = Callable[..., jax.Array]
Step = Callable[..., tuple[jax.Array, Any]]


def step_noise(keys: jax.Array, i: jax.Array | int, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    """Step i's noise [B, *shape]: sample b's from `fold_in(keys[b], i)`."""
    return jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, i), tuple(shape), dtype))(keys)


def make_step(
    model_fn: StepModelFn,
    *,
    layout: md.WindowLayout | None = None,
    chunk_size: int | None = None,
    fold_windows: bool = False,
    return_x0: bool = False,
) -> Step:
    """The pure step `step(sampler, args, x, state, i, keys, conds=(), weights=None) -> (x, state)`
    (jit it). `layout` None: the model sees the whole video. Otherwise MultiDiffusion over the
    layout's windows, combined with `weights` [num_windows, window]; `conds` ([B, T, ...] each)
    are windowed like x; `chunk_size` / `fold_windows`: `multidiffusion.multidiffusion_step`.
    `return_x0` (whole videos only): the step returns (x, state, x0 estimate), what `run`'s
    `callback` sees."""
    if return_x0 and layout is not None:
        raise ValueError("return_x0 is for whole-video steps (no MultiDiffusion layout)")

    def step(sampler: Sampler, args, x, state, i, keys, conds=(), weights=None):
        fn = lambda x, t, *c: model_fn(args, x, t, *c)
        noise = step_noise(keys, i, x.shape[1:], x.dtype) if sampler.needs_noise else None
        if layout is None:
            t = jnp.full((x.shape[0],), sampler.timesteps[i], jnp.int32)
            out = fn(x, t, *conds)
            x_next, state = sampler.step(state, i, x, out, noise)
            return (x_next, state, sampler.predict_x0(i, x, out)) if return_x0 else (x_next, state)
        return md.multidiffusion_step(
            sampler,
            state,
            i,
            x,
            fn,
            noise,
            layout,
            weights,
            conds=tuple(conds),
            chunk_size=chunk_size,
            fold_windows=fold_windows,
        )

    return step


def step_sampler(sampler: Sampler) -> Sampler:
    """The sampler as `run` passes it to the step: padded to a power of two of at least 64 steps
    (`Sampler.padded`), so one compiled step serves 2 steps or 50 (a notebook changing num_steps
    does not recompile)."""
    return sampler.padded(max(64, 1 << max(sampler.num_steps - 1, 0).bit_length()))


def init_state(sampler: Sampler, x: jax.Array, layout: md.WindowLayout | None = None) -> Any:
    """The solver state before step 0 (per window under MultiDiffusion)."""
    return sampler.init_state(x) if layout is None else md.init_multidiffusion_state(sampler, x, layout)


def run(
    step: Step,
    sampler: Sampler,
    x: jax.Array,
    args: Any = None,
    *,
    keys: jax.Array | None = None,
    conds: Sequence[jax.Array] = (),
    weights: jax.Array | None = None,
    layout: md.WindowLayout | None = None,
    after_step: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    record: bool = False,
    progress: Any = False,
    desc: str = "denoise",
    callback: Callable[[int, int, dict], Any] | None = None,
    place: Callable[[Any], Any] | None = None,
) -> tuple[jax.Array, list[jax.Array] | None]:
    """Denoise `x` (at the sampler's first timestep) through all the sampler's steps.

    `step`: from `make_step` (jitted or not; the same `layout`). `after_step(x, i)`: applied after
    every step but the last, with i the next step's index. `progress`: True (a bar of this loop),
    or a bar (anything with `update(n)`) shared by a longer job; steps are counted when finished,
    not when dispatched (one step is kept in flight). `callback(step, timestep, state)` (a step made
    with `return_x0`): after every step, `state` = {"latents": x after the step, "x0": the step's x0
    estimate} (numpy); a true return stops the loop, which then returns that x0 estimate. Returns
    (x0, the trajectory [x_T, x_1, ..., x0] when `record`). Samplers that draw noise need `keys`.
    `place((x, state)) -> (x, state)`: puts step 0's x and solver state where the step returns them
    (a step on a device mesh: `Engine` pins both ends), so step 0 does not compile a step of its own."""
    if sampler.needs_noise and keys is None:
        raise ValueError(f"sampler {sampler.name!r} (eta={sampler.eta}) draws noise: pass a PRNG key")
    state = init_state(sampler, x, layout)
    if place is not None:
        x, state = place((x, state))
    traj = [x] if record else None
    conds = tuple(conds)
    n = sampler.num_steps
    padded = step_sampler(sampler)
    bar, own = (None if progress is False or progress is None else progress), False
    if progress is True:
        from tqdm import tqdm

        bar, own = tqdm(total=n, desc=desc, leave=False, unit="step"), True
    in_flight = None
    try:
        for i in range(n):
            out = step(padded, args, x, state, jnp.int32(i), keys, conds, weights)
            x, state = out[0], out[1]
            if callback is not None:
                if len(out) < 3:
                    raise ValueError("a callback needs a step made with make_step(..., return_x0=True)")
                x0 = np.asarray(out[2])
                if callback(i, int(sampler.timesteps[i]), {"latents": np.asarray(x), "x0": x0}):
                    if bar is not None:
                        bar.update(1)
                    return jnp.asarray(x0), traj
            if after_step is not None and i + 1 < n:
                x = after_step(x, jnp.int32(i + 1))
            if record:
                traj.append(x)
            if bar is not None:  # count step i - 1 once it has finished; keep step i in flight
                if in_flight is not None:
                    jax.block_until_ready(in_flight)
                    bar.update(1)
                in_flight = x
        if bar is not None and in_flight is not None:
            jax.block_until_ready(in_flight)
            bar.update(1)
    finally:
        if own:
            bar.close()
    return x, traj


@functools.lru_cache(maxsize=64)
def _jitted_step(model_fn, layout, chunk_size, fold_windows):
    """One compiled step per (model_fn object, layout, ...): reuse the model_fn to reuse the step."""
    return jax.jit(
        make_step(
            lambda args, x, t, *c: model_fn(x, t, *c), layout=layout, chunk_size=chunk_size, fold_windows=fold_windows
        )
    )


def _keys(key: jax.Array | None, keys: jax.Array | None, batch: int) -> jax.Array | None:
    if keys is not None:
        if keys.shape[0] != batch:
            raise ValueError(f"{keys.shape[0]} keys for a batch of {batch}: give one per sample")
        return keys
    return None if key is None else jax.random.split(key, batch)


def sample(
    model_fn: samplers.ModelFn,
    x_T: jax.Array,
    sched: Schedule,
    sampler: str = "ddim",
    num_steps: int = 50,
    *,
    key: jax.Array | None = None,
    keys: jax.Array | None = None,
    record: bool = False,
    **options: Any,
):
    """The loop with `model_fn(x, t)` (int32 timesteps [B]) from x_T; returns x0, or (x0, the
    trajectory [num_steps + 1, *x_T.shape]) with `record`. `options`: `samplers.get_sampler`'s.
    Samplers that draw noise need `keys` (one per sample) or `key` (split into one per sample)."""
    s = samplers.get_sampler(sampler, sched, num_steps, **options)
    keys = _keys(key, keys, x_T.shape[0])
    x, traj = run(_jitted_step(model_fn, None, None, False), s, x_T, keys=keys, record=record)
    return (x, jnp.stack(traj)) if record else x


def sample_multidiffusion(
    model_fn: md.WindowModelFn,
    x_T: jax.Array,
    sampler: Sampler,
    layout: md.WindowLayout,
    *,
    conds: Sequence[jax.Array] = (),
    key: jax.Array | None = None,
    keys: jax.Array | None = None,
    weights: str | Any = "uniform",
    chunk_size: int | None = None,
    fold_windows: bool = False,
) -> jax.Array:
    """The loop with MultiDiffusion from x_T [B, T, ...]: `model_fn(x_window, t, *cond_windows)`;
    `conds` [B, T, ...] windowed like x; `weights` a `multidiffusion.window_weights` kind or a
    [num_windows, window] array; keys as `sample`."""
    keys = _keys(key, keys, x_T.shape[0])
    md.check_frames(x_T, layout, "x_T")
    conds = tuple(conds)
    for c in conds:
        md.check_frames(c, layout, "cond")
        if c.shape[0] != x_T.shape[0]:
            raise ValueError(f"cond of shape {c.shape} has a batch size other than x_T's {x_T.shape[0]}")
    w = md.window_weights(layout, weights) if isinstance(weights, str) else weights
    step = _jitted_step(model_fn, layout, chunk_size, fold_windows)
    x, _ = run(step, sampler, x_T, keys=keys, conds=conds, weights=jnp.asarray(w, jnp.float32), layout=layout)
    return x


def sample_windows_independently(
    model_fn: md.WindowModelFn,
    x_T: jax.Array,
    sampler: Sampler,
    window: int,
    *,
    conds: Sequence[jax.Array] = (),
    key: jax.Array | None = None,
    keys: jax.Array | None = None,
    chunk_size: int | None = None,
) -> jax.Array:
    """Baseline without MultiDiffusion (paper Fig. 14): non-overlapping windows, stitched (when
    `window` does not divide T the last window is end-aligned and shared frames are averaged)."""
    layout = md.window_layout(x_T.shape[1], window, overlap=0)
    return sample_multidiffusion(model_fn, x_T, sampler, layout, conds=conds, key=key, keys=keys, chunk_size=chunk_size)
