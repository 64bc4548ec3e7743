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


# Test groups under pytest-xdist (`make test` runs `-n 2 --dist loadscope`): tests that share
# fixtures run on one worker. Each file is a group (module fixtures); tests/train and tests/models
# are one group each (their session-scoped training runs and compiled models would otherwise be
# built on both workers). xdist's own `loadgroup` marks do not work with pytest 9 (it renames
# `item._nodeid`, which pytest 9 no longer reads), so the scope is chosen by this scheduler hook.
_SHARED_DIRS = ("tests/train/", "tests/models/")


def _group(nodeid: str) -> str:
    """The shared directory a test id lies in, else its file."""
    return next((d for d in _SHARED_DIRS if nodeid.startswith(d)), nodeid.split("::", 1)[0])


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class DirectoryOrFileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    return DirectoryOrFileScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """The largest groups first, so the other worker fills in around them (stable otherwise)."""
    rank = {d: i for i, d in enumerate(_SHARED_DIRS)}
    items.sort(key=lambda item: rank.get(_group(item.nodeid), len(_SHARED_DIRS)))
