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
