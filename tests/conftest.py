"""Test-wide JAX settings: CPU, a persistent compilation cache, cheap compiles.

Set before jax is imported anywhere. The suite is compile-bound (tiny models), so
XLA's backend optimisation level 0 roughly halves compile time; results stay
float-exact where tests compare bits (same program on both sides).
"""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import jax  # noqa: E402

_cache = os.environ.get("LUMIERE_JAX_CACHE", os.path.join(os.path.dirname(__file__), "..", ".jax_cache"))
jax.config.update("jax_compilation_cache_dir", os.path.abspath(_cache))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
