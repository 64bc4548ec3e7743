"""Test-wide JAX settings: CPU, a persistent compilation cache, cheap compiles.

Set before jax is imported anywhere. The suite is compile-bound (tiny models), so
XLA's backend optimisation level 0 roughly halves compile time, and at that level XLA:CPU's
elemental IR emitters compile a quarter faster than its MLIR fusion emitters (the tiny T2I train
step 8.0 s -> 6.0 s, the video and SSR steps 6.3 -> 4.9 s; at the default level it is the other way
round: the moving_shapes video step's first call, compile included, 26 s -> 47 s; so only the tests,
which run unoptimised, switch).
Results stay float-exact where tests compare bits (same program on both sides). The `main.py`
processes the tests start inherit these flags, so they share the tests' compiled programs.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false")

import jax  # noqa: E402
import pytest  # noqa: E402

from lumiere_jax import runtime  # noqa: E402

# main.py's XLA:CPU flags (`runtime.setup` adds them there): the tests compile the programs its runs do,
# and the `main.py` subprocesses of the tests share this process's compilation cache entries.
os.environ["XLA_FLAGS"] = runtime.cpu_xla_flags(os.environ["XLA_FLAGS"])

_cache = os.environ.get("LUMIERE_JAX_CACHE", os.path.join(os.path.dirname(__file__), "..", ".jax_cache"))
jax.config.update("jax_compilation_cache_dir", os.path.abspath(_cache))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# Test groups under pytest-xdist (`make test` runs `-n 2 --dist loadscope`): tests that share
# fixtures run on one worker. Each file is a group (module fixtures); the tests on the tiny runs
# (the files below that use t2i_run, video_run, ssr_run or conditional_run) and tests/models are one
# group each (their session-scoped training runs and compiled models would otherwise be built on both
# workers). Files of tests/train that train nothing shared are groups of their own, so the other
# worker takes them (the "runs" group is the suite's longest).
# xdist's own `loadgroup` marks do not work with pytest 9 (it renames `item._nodeid`, which
# pytest 9 no longer reads), so the scope is chosen by this scheduler hook.
_SHARED_DIRS = {
    **{f"tests/train/test_{name}.py": "runs" for name in ("checkpoint", "conditional", "ssr", "trainer", "workdir")},
    "tests/sampling/": "runs",
    "tests/cli/": "runs",
    "tests/eval/test_conditional.py": "runs",
    "tests/test_demo.py": "runs",
    "tests/app/": "runs",
    "tests/models/": "models",
}


def _group(nodeid: str) -> str:
    """The group of the shared directory (or file) a test id lies in, else its file."""
    return next((g for d, g in _SHARED_DIRS.items() if nodeid.startswith(d)), nodeid.split("::", 1)[0])


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class DirectoryOrFileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    return DirectoryOrFileScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """The largest groups first, so the other worker fills in around them (stable otherwise)."""
    rank = {"runs": 0, "models": 1}
    items.sort(key=lambda item: rank.get(_group(item.nodeid), len(rank)))


# -- tiny training runs shared by the training, sampling and CLI tests (one of each per session) --
from lumiere_jax import sampling  # noqa: E402
from lumiere_jax.train import trainer  # noqa: E402
from tests.helpers import load_config  # noqa: E402


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def t2i_run(tmp_path_factory, data_dir):
    workdir = str(tmp_path_factory.mktemp("t2i"))
    config = load_config("tiny", "t2i", data_dir, **{"train.num_steps": 4})
    state = trainer.train(config, workdir)
    return workdir, config, state


@pytest.fixture(scope="session")
def video_run(tmp_path_factory, data_dir, t2i_run):
    workdir = str(tmp_path_factory.mktemp("video"))
    # no warm-up: the schedule `make demo` gives a 4-step video stage, so tests/test_demo.py's video
    # stage is this program (from the persistent compilation cache)
    config = load_config(
        "tiny",
        "video",
        data_dir,
        **{
            "train.num_steps": 4,
            "train.init_from": t2i_run[0],
            "train.sample_every": 4,
            "optim.warmup_steps": 0,
            "train.checkpoint_every": 4,  # one save (tests read the last checkpoint only)
        },
    )
    state = trainer.train(config, workdir, sampling.write_training_samples)
    return workdir, config, state


@pytest.fixture(scope="session")
def ssr_image_run(tmp_path_factory, data_dir):
    workdir = str(tmp_path_factory.mktemp("ssr_image"))
    config = load_config(
        "tiny", "ssr_image", data_dir, **{"train.num_steps": 4, "train.checkpoint_every": 4, "ssr.patch_size": 4}
    )
    state = trainer.train(config, workdir)
    return workdir, config, state


@pytest.fixture(scope="session")
def ssr_run(tmp_path_factory, data_dir, ssr_image_run):
    workdir = str(tmp_path_factory.mktemp("ssr"))
    config = load_config(
        "tiny",
        "ssr",
        data_dir,
        **{"train.num_steps": 4, "train.checkpoint_every": 4, "train.init_from": ssr_image_run[0]},
    )
    state = trainer.train(config, workdir)
    return workdir, config, state


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory, data_dir, video_run):
    workdir = str(tmp_path_factory.mktemp("conditional"))
    config = load_config("tiny", "conditional", data_dir, **{"train.num_steps": 2, "train.init_from": video_run[0]})
    state = trainer.train(config, workdir)
    return workdir, config, state


# -- opt-in report of JAX compile time per test (LUMIERE_TEST_COMPILE_REPORT=path: one TSV line per
# test: id, compiles, seconds compiling, of which in compiles under 0.3 s, i.e. eager per-leaf ops,
# then seconds tracing to jaxprs and seconds lowering them to MLIR, then the compiles of 1 s or more
# as name:seconds) --
_REPORT = os.environ.get("LUMIERE_TEST_COMPILE_REPORT")
if _REPORT:
    _events: dict[str, list[float]] = {"compile": [], "trace": [], "lower": []}
    _NAMES = {
        "/jax/core/compile/backend_compile_duration": "compile",
        "/jax/core/compile/jaxpr_trace_duration": "trace",
        "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    }

    def _on_event(event, secs, fun_name="?", **_):
        if event in _NAMES:
            _events[_NAMES[event]].append(secs)
        if _NAMES.get(event) == "compile" and secs >= 1:
            _slow.append(f"{fun_name}:{secs:.1f}")

    _slow: list[str] = []

    jax.monitoring.register_event_duration_secs_listener(_on_event)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        start = {k: len(v) for k, v in _events.items()}
        _slow.clear()
        yield
        got, traced, lowered = (_events[k][start[k] :] for k in ("compile", "trace", "lower"))
        with open(_REPORT, "a") as f:
            f.write(
                f"{item.nodeid}\t{len(got)}\t{sum(got):.2f}\t{sum(t for t in got if t < 0.3):.2f}"
                f"\t{sum(traced):.2f}\t{sum(lowered):.2f}\t{' '.join(_slow)}\n"
            )
