"""Process-wide JAX settings shared by the entry points (main.py, the demo)."""

from __future__ import annotations

import logging
import os

import jax


def setup(cache_dir: str | None = None, cpu_devices: int | None = None) -> None:
    """Persistent XLA compilation cache (a second run of the same config skips most
    compiles; `cache_directory` says where) and quiet third-party logs:
    our modules log at INFO, orbax et al. log through absl's logger, kept to warnings.

    `cpu_devices` (None: JAX's default, one): the number of host devices the CPU backend is split
    into (`cpu_devices_for_training`); must be set before JAX runs anything. On the CPU it also adds
    CPU_XLA_FLAGS to XLA_FLAGS (likewise read when the backend starts) and returns the C heap's free
    pages to the OS after every long compile (`trim_after_compiles`)."""
    jax.config.update("jax_compilation_cache_dir", cache_directory(cache_dir))
    # programs that compile in 0.1 s or more (at 1 s the text encoder's 0.59 s program was compiled
    # again by every first video: docs/performance.md "Time to first video")
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    logging.getLogger("absl").setLevel(logging.WARNING)
    if cpu_is_the_backend():
        os.environ["XLA_FLAGS"] = cpu_xla_flags(os.environ.get("XLA_FLAGS", ""))
        trim_after_compiles()
    if cpu_devices is not None and cpu_devices > 1:
        try:
            jax.config.update("jax_num_cpu_devices", int(cpu_devices))
        except RuntimeError as e:  # JAX already ran something in this process: keep its devices
            logging.getLogger(__name__).warning("CPU devices left as they are (%s)", e)


DEFAULT_CACHE = "~/.cache/lumiere_jax/xla"


def cache_directory(cache_dir: str | None = None) -> str:
    """Where `setup` puts the compilation cache: `cache_dir`, else $LUMIERE_JAX_CACHE, else the directory
    JAX is already set to (JAX_COMPILATION_CACHE_DIR, or a notebook's or caller's
    `jax.config.update("jax_compilation_cache_dir", ...)`), else DEFAULT_CACHE.

    An entry point run inside a process that set its cache (the tests call `demo.main` so) keeps that
    cache: JAX opens its cache once per process, and the directory is part of every program's cache key
    (the compile options name it), so a directory changed afterwards made every later compile of the
    process a miss, written under keys no process with the first directory looks up."""
    return (
        cache_dir
        or os.environ.get("LUMIERE_JAX_CACHE")
        or jax.config.jax_compilation_cache_dir
        or os.path.expanduser(DEFAULT_CACHE)
    )


# XLA:CPU options of every entry point (`setup`), unless XLA_FLAGS sets them itself. The scheduler
# that orders a program's thunks for memory instead of for concurrency: the peer_cpu STUNet's forward
# + backward (one example on a host device) needs 438 MiB of temporaries instead of 666 MiB and runs
# as fast or faster on the 2-core CPU (two host devices: 1.77 -> 1.67 s a call; peak RSS 3,387 ->
# 2,954 MiB; docs/performance.md). A flag of the pinned jaxlib (requirements.txt): XLA aborts on a
# flag it does not know, so check it when jaxlib moves.
CPU_XLA_FLAGS = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}


def cpu_xla_flags(current: str) -> str:
    """The XLA_FLAGS string `current` with each of CPU_XLA_FLAGS added that it does not set itself."""
    extra = [f"--{name}={value}" for name, value in CPU_XLA_FLAGS.items() if f"--{name}=" not in current]
    return " ".join([current.strip(), *extra]).strip()


def release_free_memory() -> bool:
    """Return the C heap's free pages to the OS (glibc's `malloc_trim`); False where there is no glibc.
    An XLA compile frees its scratch memory (hundreds of MB for a U-Net's train step) into the heap,
    where it stays resident: the peer_cpu STUNet's process holds 700 MB less after its compiles."""
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util

        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.malloc_trim  # noqa: B018  (glibc only)
        except (OSError, AttributeError):
            _LIBC = False
    return bool(_LIBC) and bool(_LIBC.malloc_trim(0))


_LIBC = None
_TRIM_REGISTERED = False
TRIM_AFTER_COMPILE_S = 1.0  # compiles at least this long are followed by `release_free_memory`
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def _trim_listener(event: str, duration: float, **_) -> None:
    if event == _COMPILE_EVENT and duration >= TRIM_AFTER_COMPILE_S:
        release_free_memory()


def trim_after_compiles() -> None:
    """Call `release_free_memory` after every XLA compile of TRIM_AFTER_COMPILE_S or more in this
    process (a jax.monitoring listener, registered once)."""
    global _TRIM_REGISTERED
    if not _TRIM_REGISTERED:
        jax.monitoring.register_event_duration_secs_listener(_trim_listener)
        _TRIM_REGISTERED = True


# XLA:CPU runs one program with 1.4-1.6 of 2 cores busy (the executor's gaps between small thunks,
# docs/performance.md). The batch split over one host device per core keeps both busy: on the 2-core
# CPU a moving_shapes train step is 1.26x (video) and 1.46x (T2I) as fast with 2 devices as with one,
# the same losses to the printed digits (data parallelism; the trainer blocks on each step there).
CPU_DEVICES_ENV = "LUMIERE_JAX_CPU_DEVICES"


ACCELERATOR_DISTRIBUTIONS = ("jax-cuda", "jax_cuda", "jax-rocm", "jax_rocm", "libtpu")


def _platforms() -> str:
    return (jax.config.jax_platforms or "").strip().lower()


def cpu_is_the_backend() -> bool:
    """Whether this process will compute on the CPU, decided before JAX starts a backend:
    JAX_PLATFORMS (its first entry is the default backend), else no accelerator plugin installed."""
    platforms = _platforms()
    if platforms:
        return platforms.split(",")[0] == "cpu"
    from importlib import metadata

    names = (d.metadata["Name"] or "" for d in metadata.distributions())
    return not any(n.lower().startswith(ACCELERATOR_DISTRIBUTIONS) for n in names)


def cpu_devices_for_training(config, cores: int | None = None) -> int | None:
    """Host devices for a CPU training run of `config`: `$LUMIERE_JAX_CPU_DEVICES` when set to a count,
    else ("auto", the default) the largest k <= the usable cores that divides the micro-batch
    (data.global_batch / train.grad_accum_steps). None (JAX's default: one) when XLA_FLAGS already
    fixes the count, when the config lays out its own mesh (only the default, every device on the
    data axis, is split automatically), or when an accelerator computes (`cpu_is_the_backend`).
    Measured on a 2-core CPU only (docs/performance.md)."""
    chosen = _cpu_devices_chosen(config)
    if chosen != "auto":
        return chosen
    micro = max(int(config.data.global_batch) // max(int(config.train.get("grad_accum_steps", 1)), 1), 1)
    return batch_split(micro, _usable_cores() if cores is None else cores)


def cpu_devices_for_sampling(config, cores: int | None = None) -> int | None:
    """Host devices for CPU sampling and evaluation (`--mode=sample|eval`) with `config`: as
    `cpu_devices_for_training`, except that "auto" is one device per usable core. A sampling batch
    (both classifier-free-guidance halves, the MultiDiffusion windows) varies from call to call; an
    uneven split is padded by the partitioner, so no count has to divide it. On the 2-core CPU a
    16-video evaluation of the base took 144 s on two devices against 195 s on one (docs/performance.md)."""
    chosen = _cpu_devices_chosen(config)
    if chosen != "auto":
        return chosen
    return _usable_cores() if cores is None else max(int(cores), 1)


def sampling_mesh(config):
    """`config.mesh` when JAX has several devices (samples are split over the batch axes), else None
    (one device, no mesh): what `main.py --mode=sample|eval` and the demo give `Generator.load`."""
    return config.mesh if jax.device_count() > 1 else None


def _cpu_devices_chosen(config) -> int | None | str:
    """The split the environment and `config` fix (a count, or None: leave JAX's default), else "auto"."""
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "") or not cpu_is_the_backend():
        return None
    value = os.environ.get(CPU_DEVICES_ENV, "auto").strip().lower()
    if value != "auto":
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{CPU_DEVICES_ENV}={value!r}: expected 'auto' or a positive integer")
        return int(value)
    mesh = config.mesh
    if (mesh.ici_data, mesh.ici_fsdp, mesh.ici_tensor) != (-1, 1, 1):
        return None
    return "auto"


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def batch_split(batch: int, cores: int) -> int:
    """The largest device count <= `cores` that divides `batch` (at least 1)."""
    return max(k for k in range(1, max(int(cores), 1) + 1) if batch % k == 0)


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
# XLA's own emitters too: the tests' XLA_FLAGS pick the elemental ones, which compile faster unoptimised
# but slower optimised (tests/test_runtime.py's fully optimised init 7.3 s -> 5.0 s with these).
HEAVY_OPTIONS = {"xla_backend_optimization_level": 3, "xla_cpu_use_fusion_emitters": True}


def jit_heavy(fn):
    """`jax.jit(fn)` for a compute-bound function: on the CPU compiled with HEAVY_OPTIONS (XLA's default
    emitters, full optimisation) whatever XLA_FLAGS says (other backends: as `jax.jit`)."""
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
