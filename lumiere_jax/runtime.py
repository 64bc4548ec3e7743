"""Process-wide JAX settings shared by the entry points (main.py, the demo)."""

from __future__ import annotations

import logging
import os

import jax


def setup(cache_dir: str | None = None) -> None:
    """Persistent XLA compilation cache (a second run of the same config skips most
    compiles; `LUMIERE_JAX_CACHE` overrides the location) and quiet third-party logs:
    our modules log at INFO, orbax et al. log through absl's logger, kept to warnings."""
    cache = cache_dir or os.environ.get("LUMIERE_JAX_CACHE", os.path.expanduser("~/.cache/lumiere_jax/xla"))
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    logging.getLogger("absl").setLevel(logging.WARNING)


# Compiler options for a function run once per process. Parameter initialisation compiles no network
# (XLA drops the forward pass whose output init discards) but one random-number expansion per
# parameter: on the CPU, the quickstart STUNet's init compiled in 35 s with the default optimisation
# and 14 s with the backend's optimisation off, giving the same parameters up to float32 rounding
# (2 of 529 leaves, relative 1e-7; docs/performance.md).
ONCE_OPTIONS = {"xla_backend_optimization_level": 0}


def jit_once(fn, **jit_kwargs):
    """`jax.jit(fn, **jit_kwargs)` for a function called once (initialisation): on the CPU compiled
    with ONCE_OPTIONS (other backends: as `jax.jit`)."""
    return _jit_with_options(fn, ONCE_OPTIONS, **jit_kwargs)


# Compiler options for a compute-bound function (the I3D of the FVD: 12.3 s -> 5.8 s for 6 clips on
# the 2-core CPU when XLA_FLAGS turned the backend's optimisation off, as the tests do to compile faster).
HEAVY_OPTIONS = {"xla_backend_optimization_level": 3}


def jit_heavy(fn):
    """`jax.jit(fn)` for a compute-bound function: on the CPU compiled with HEAVY_OPTIONS whatever
    XLA_FLAGS says (other backends: as `jax.jit`)."""
    return _jit_with_options(fn, HEAVY_OPTIONS)


def _jit_with_options(fn, options: dict, **jit_kwargs):
    """`jax.jit(fn, **jit_kwargs)`, on the CPU compiled with the XLA compiler `options`, once per
    distinct argument shape and dtype."""
    jitted = jax.jit(fn, **jit_kwargs)
    if jax.default_backend() != "cpu":
        return jitted
    compiled = {}

    def call(*args):
        key = tuple((a.shape, str(a.dtype)) for a in jax.tree_util.tree_leaves(args))
        if key not in compiled:
            compiled[key] = jitted.lower(*args).compile(compiler_options=options)
        return compiled[key](*args)

    return call
