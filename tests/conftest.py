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


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test` runs `-n 2 --dist loadgroup`), keep tests that share
    fixtures on one worker: each file is a group (module fixtures), and tests/train and
    tests/models are one group each (their session-scoped training runs and compiled models)."""
    import pytest
    root = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        rel = os.path.relpath(str(item.path), root)
        top = rel.split(os.sep)[0]
        group = top if top in ("train", "models") else rel
        item.add_marker(pytest.mark.xdist_group(name=group))
