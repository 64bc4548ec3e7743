"""runtime: process settings, `jit_once` (initialisation compiled without backend optimisation) and
`jit_heavy` (compute-bound functions compiled with full optimisation)."""

import os
import platform
import subprocess
import sys

import jax
import pytest
import numpy as np

from lumiere_jax import runtime
from lumiere_jax.models import build
from lumiere_jax.models.diffusion_model import DiffusionModel
from tests.helpers import ROOT, load_config


def test_jit_once_initialises_as_jit_does(tmp_path):
    """The parameters of a tiny U-Net from `jit_once(model.init)` equal those of a fully optimised
    compile (what `jax.jit` gives where XLA_FLAGS leave XLA's default; the tests set the unoptimised
    level for every compile, so the reference asks for the full one: `jit_heavy`) up to float32
    rounding: the cheaper compile changes no value beyond it."""
    config = load_config("tiny", "t2i", str(tmp_path))
    # one U-Net level: half the leaves, each a random draw XLA compiles on its own
    config.model.unet.channel_mult, config.model.unet.attention_resolutions = (1,), (1,)
    config.model.temporal.num_temporal_downsamples = 0
    model = DiffusionModel(build.model_config(config.to_dict()))
    rng = jax.random.PRNGKey(3)
    # every third leaf (each initialiser kind among them): XLA drops the other draws from both programs,
    # and the fully optimised compile takes seconds per hundred leaves
    init = lambda r: jax.tree_util.tree_leaves(model.init(r))[::3]  # noqa: E731
    once, ref = runtime.jit_once(init)(rng), runtime.jit_heavy(init)(rng)
    assert jax.tree_util.tree_structure(once) == jax.tree_util.tree_structure(ref)
    for a, b in zip(jax.tree_util.tree_leaves(once), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert any(float(np.abs(a).max()) > 0 for a in jax.tree_util.tree_leaves(once))  # random, not all zero


def test_jit_heavy_computes_what_jit_does_and_compiles_once_per_shape(monkeypatch):
    """`jit_heavy` (full backend optimisation whatever XLA_FLAGS says) gives jax.jit's values, and
    compiles once per distinct argument shape."""
    lowered = []
    real_jit = jax.jit

    def counting_jit(fn):
        j = real_jit(fn)

        class Counting:
            def lower(self, *args):
                lowered.append(tuple(a.shape for a in args))
                return j.lower(*args)

        return Counting()

    f = lambda x, w: jax.numpy.tanh(x @ w).sum(-1)  # noqa: E731
    x, w = np.random.default_rng(0).normal(size=(2, 8, 8)).astype(np.float32)
    ref = np.asarray(jax.jit(f)(x, w))
    monkeypatch.setattr(jax, "jit", counting_jit)
    heavy = runtime.jit_heavy(f)
    np.testing.assert_allclose(np.asarray(heavy(x, w)), ref, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(heavy(x + 1, w)), np.asarray(real_jit(f)(x + 1, w)), rtol=1e-6)
    heavy(x[:4], w)
    assert lowered == [((8, 8), (8, 8)), ((4, 8), (8, 8))]


def _cpu_config(batch, accum=1, **mesh):
    from lumiere_jax import config as config_lib

    config = config_lib.default_config()
    config.data.global_batch, config.train.grad_accum_steps = batch, accum
    config.mesh.update(mesh)
    return config


def test_cpu_devices_for_training_auto(monkeypatch):
    """auto: the largest count <= the cores dividing the micro-batch; left alone (None) when XLA_FLAGS
    fixes the count or the config lays out its own mesh."""
    monkeypatch.delenv(runtime.CPU_DEVICES_ENV, raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0")
    assert runtime.cpu_devices_for_training(_cpu_config(4), cores=2) == 2
    assert runtime.cpu_devices_for_training(_cpu_config(32), cores=2) == 2
    assert runtime.cpu_devices_for_training(_cpu_config(3), cores=2) == 1
    assert runtime.cpu_devices_for_training(_cpu_config(6), cores=4) == 3
    assert runtime.cpu_devices_for_training(_cpu_config(8, accum=4), cores=4) == 2  # micro-batch 2
    assert runtime.cpu_devices_for_training(_cpu_config(4), cores=1) == 1
    assert runtime.cpu_devices_for_training(_cpu_config(4, ici_data=1, ici_fsdp=-1), cores=2) is None
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    assert runtime.cpu_devices_for_training(_cpu_config(4), cores=2) is None


def test_cpu_devices_for_training_from_the_environment(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv(runtime.CPU_DEVICES_ENV, "1")
    assert runtime.cpu_devices_for_training(_cpu_config(4), cores=2) == 1
    monkeypatch.setenv(runtime.CPU_DEVICES_ENV, "AUTO")
    assert runtime.cpu_devices_for_training(_cpu_config(4), cores=2) == 2
    for bad in ("0", "two", "-2"):
        monkeypatch.setenv(runtime.CPU_DEVICES_ENV, bad)
        with pytest.raises(ValueError, match=rf"LUMIERE_JAX_CPU_DEVICES='{bad}': expected 'auto' or a positive"):
            runtime.cpu_devices_for_training(_cpu_config(4), cores=2)


def test_no_cpu_split_when_an_accelerator_computes(monkeypatch):
    """JAX_PLATFORMS naming an accelerator first, or (unset) an accelerator plugin installed: no split."""
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.delenv(runtime.CPU_DEVICES_ENV, raising=False)
    monkeypatch.setattr(runtime, "_platforms", lambda: "cuda,cpu")
    assert not runtime.cpu_is_the_backend()
    assert runtime.cpu_devices_for_training(_cpu_config(4), cores=2) is None
    monkeypatch.setattr(runtime, "_platforms", lambda: "")

    class Dist:
        def __init__(self, name):
            self.metadata = {"Name": name}

    from importlib import metadata

    monkeypatch.setattr(metadata, "distributions", lambda: [Dist("numpy"), Dist("jax-cuda12-plugin")])
    assert not runtime.cpu_is_the_backend()
    monkeypatch.setattr(metadata, "distributions", lambda: [Dist("numpy"), Dist("jaxlib")])
    assert runtime.cpu_is_the_backend()
    assert runtime.cpu_devices_for_training(_cpu_config(4), cores=2) == 2


def test_cpu_devices_for_sampling(monkeypatch):
    """Sampling and evaluation: one device per core whatever the batch (the partitioner pads an uneven
    split); the environment, XLA_FLAGS and a laid-out mesh decide as for training."""
    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.delenv(runtime.CPU_DEVICES_ENV, raising=False)
    assert runtime.cpu_devices_for_sampling(_cpu_config(3), cores=2) == 2
    assert runtime.cpu_devices_for_sampling(_cpu_config(3), cores=4) == 4
    assert runtime.cpu_devices_for_sampling(_cpu_config(4, ici_data=1, ici_fsdp=-1), cores=2) is None
    monkeypatch.setenv(runtime.CPU_DEVICES_ENV, "1")
    assert runtime.cpu_devices_for_sampling(_cpu_config(4), cores=2) == 1
    monkeypatch.setenv(runtime.CPU_DEVICES_ENV, "x")
    with pytest.raises(ValueError, match="LUMIERE_JAX_CPU_DEVICES='x'"):
        runtime.cpu_devices_for_sampling(_cpu_config(4), cores=2)
    monkeypatch.delenv(runtime.CPU_DEVICES_ENV)
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    assert runtime.cpu_devices_for_sampling(_cpu_config(4), cores=2) is None


def test_cpu_xla_flags_are_added_unless_xla_flags_sets_them():
    want = "--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"
    assert runtime.cpu_xla_flags("") == want
    assert runtime.cpu_xla_flags(" --xla_backend_optimization_level=0 ") == f"--xla_backend_optimization_level=0 {want}"
    own = "--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_DEFAULT"
    assert runtime.cpu_xla_flags(own) == own  # the user's choice stays


def test_the_cache_directory_is_the_argument_then_lumiere_jax_cache_then_jax_s_own(monkeypatch):
    """`setup`'s cache: its argument, else $LUMIERE_JAX_CACHE, else what JAX is set to already (this
    process's: tests/conftest.py sets it), else the default. An entry point run in a process that set
    its cache keeps it: the directory is part of each program's cache key, so changing it made every
    later compile of the process miss (the tests' worker after tests/test_demo.py did)."""
    own = jax.config.jax_compilation_cache_dir
    assert own
    monkeypatch.delenv("LUMIERE_JAX_CACHE", raising=False)
    assert runtime.cache_directory() == own
    assert runtime.cache_directory("/given") == "/given"
    monkeypatch.setenv("LUMIERE_JAX_CACHE", "/from_env")
    assert runtime.cache_directory() == "/from_env"
    assert runtime.cache_directory("/given") == "/given"
    monkeypatch.delenv("LUMIERE_JAX_CACHE")
    try:
        jax.config.update("jax_compilation_cache_dir", None)
        assert runtime.cache_directory() == os.path.expanduser(runtime.DEFAULT_CACHE)
    finally:
        jax.config.update("jax_compilation_cache_dir", own)


def test_setup_gives_the_pinned_jaxlib_flags_it_knows(tmp_path):
    """XLA aborts on a flag it does not know: `setup`'s CPU_XLA_FLAGS must be the pinned jaxlib's."""
    code = (
        "import os; from lumiere_jax import runtime; runtime.setup(cache_dir=os.environ['CACHE']); import jax; "
        "assert 'CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED' in os.environ['XLA_FLAGS']; "
        "print(int(jax.jit(lambda x: x + 1)(1)))"
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="", CACHE=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "2", out.stderr[-2000:]


def test_long_compiles_return_the_heap_to_the_os(monkeypatch):
    """After `trim_after_compiles`, an XLA compile of TRIM_AFTER_COMPILE_S or more (the event jax
    records for each backend compile) calls `release_free_memory`; shorter compiles and other events
    do not. On glibc (Linux) the trim itself runs."""
    calls = []
    monkeypatch.setattr(runtime, "release_free_memory", lambda: calls.append(1) or True)
    runtime.trim_after_compiles()
    runtime.trim_after_compiles()  # registered once
    record = jax.monitoring.record_event_duration_secs
    record("/jax/core/compile/backend_compile_duration", runtime.TRIM_AFTER_COMPILE_S + 0.5)
    assert calls == [1]
    record("/jax/core/compile/backend_compile_duration", runtime.TRIM_AFTER_COMPILE_S / 10)
    record("/jax/core/compile/jaxpr_trace_duration", runtime.TRIM_AFTER_COMPILE_S * 10)
    assert calls == [1]
    monkeypatch.undo()
    if platform.libc_ver()[0] == "glibc":
        runtime.release_free_memory()  # returns whether pages went back; either is fine
        assert runtime._LIBC, "glibc's malloc_trim not found"
