r"""Side-by-side CPU benchmark: lumiere_jax's STUNet against lucidrains' `lumiere-pytorch` (the one
public Lumiere implementation: `Lumiere` inflating `denoising-diffusion-pytorch`'s `KarrasUnet`).

Both models at matched size on the identical input video [B, T, H, W, C] (the same float32 values,
generated from one seed, channels moved to [B, C, T, H, W] for torch; the two inputs' SHA-1 are
compared), timed on two things:
  * forward without gradients (jax: a jitted apply; torch: `torch.no_grad()`, eval mode);
  * forward + backward of a mean-squared error with only the temporal parameters trained (jax:
    `value_and_grad` w.r.t. params["temporal"], the spatial U-Net passed in but not differentiated;
    torch: the T2I U-Net frozen by `Lumiere` itself, `loss.backward()` in train mode, dropout 0).
No optimizer step on either side.

FLOPs: ours analytic (lumiere_jax/flops.py `denoiser_flops`; forward + backward by the convention of
bench/step_perf.py: 2x forward + 1x the trained (temporal) layers' forward) and, as a cross-check,
the matmul/conv FLOPs of the traced jax program (`flops.program_matmul_flops`: what autodiff
actually emits, like torch's count) and XLA's cost analysis; theirs from
`torch.utils.flop_counter.FlopCounterMode` on one untimed call.

Each side runs in its own long-lived child process (this script with --side=jax under the project's
Python, --side=torch under the peer venv's Python), so torch and jax never share an interpreter:
the children build (jax: init + compile, timed), warm up, then the parent asks them for timed rounds
in turn, alternating which goes first (ABBA), only one computing at a time. Reported: medians (and
min/max) of the per-call wall times over all rounds, CPU time / wall time during the timed loops
(cores used), peak RSS, build and compile times, parameter counts (frozen / trained), the load
average before anything starts and at every round, and the ratios ours / theirs. Appends one JSON
line (name "peer_cpu") to bench/results.jsonl (--results). Run it on an otherwise idle machine: under
load (warned at the start) torch's OpenMP worker threads spin-wait for each other and a tiny model's
forward takes ~100x longer (seen: 1.65 s instead of 0.02 s at --tiny, 2 threads, 2 busy cores);
OMP_WAIT_POLICY=PASSIVE (passed on to both sides, recorded with the other thread settings) avoids it.

The peer venv (once; its pins and why: bench/requirements-peer.txt; `--no-deps` because
denoising-diffusion-pytorch depends on torchvision, which has no CPU wheel for recent torch, and the
file pins the whole dependency closure):

  python3 -m venv bench/.peer-venv
  bench/.peer-venv/bin/pip install --no-deps -r bench/requirements-peer.txt

Run (the project's venv runs the parent and the jax side):

  JAX_PLATFORMS=cpu python bench/peer_cpu.py --tiny                       # smoke check, ~30 s
  JAX_PLATFORMS=cpu python bench/peer_cpu.py                              # 2 x 16 x 32 x 32 x 3
  JAX_PLATFORMS=cpu python bench/peer_cpu.py --match=structural --repeats=7 --peer_python=/path/bin/python

Sizes (--match): "issue" (default) is the pairing measured in the issue: KarrasUnet dim 32 -> 256
(3 spatial down-samplings, 4 blocks per stage, attention at 16^2 and 8^2, dropout 0) inflated by
`Lumiere` with conv inflation after every encoder/decoder block of the three finer levels, attention
inflation at the coarsest level and the two mid blocks, and temporal down/up-sampling after each
down/up-sampling block (x_transformers' default temporal attention: 8 heads of 64): 25.27 M frozen +
10.48 M trained; against our STUNet base 32, channel_mult (1, 2, 4, 8), 4 resnets per level,
attention at factors 2 and 4 (head_dim 64), the mid attention, strided-conv resampling, 3 temporal
down-samplings (temporal head_dim 64): 23.97 M + 11.54 M. "structural" builds the same block layout
on both sides instead: ours with resnet resampling (KarrasUnet resamples in resnet blocks) and no mid
attention (KarrasUnet has none at 4^2), theirs inflating only the non-resampling blocks (our hook
plan): 24.85 M + 11.54 M against 25.27 M + 9.34 M. What stays different: KarrasUnet is
magnitude-preserving (weight-normalised, no biases, pixel norms; 2 attention heads of 64 even at 64
channels, attention also in the resampling blocks at 16^2 and 8^2); our temporal attention has an MLP
after it, theirs none.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
MARK = "@@peer_cpu "  # prefix of the children's protocol lines on stdout; other lines pass through
DEFAULT_PEER_PYTHON = os.path.join(BENCH, ".peer-venv", "bin", "python")
PEER_SETUP = (
    "python3 -m venv bench/.peer-venv && bench/.peer-venv/bin/pip install --no-deps -r bench/requirements-peer.txt"
)
SIDES = ("jax", "torch")
ENV_PREFIXES = (
    "OMP_",
    "KMP_",
    "MKL_",
    "OPENBLAS_",
    "XLA_",
    "JAX_",
    "TORCH_",
    "LUMIERE_",
)  # recorded: they change timings

# Input and model sizes. Ours: STUNet/UNetConfig fields; theirs: KarrasUnet / Lumiere arguments.
SIZES = {
    "full": {
        "batch": 2,
        "frames": 16,
        "size": 32,
        "ours": dict(base_channels=32, channel_mult=(1, 2, 4, 8), num_res_blocks=4, attention_resolutions=(2, 4)),
        "ours_head_dim": 64,
        "ours_norm_groups": 32,
        "ours_temporal_head_dim": 64,
        "theirs": dict(dim=32, dim_max=256, num_downsamples=3, num_blocks_per_stage=4, attn_res=(16, 8)),
        "theirs_attn_inflation": {},  # x_transformers' Attention defaults (8 heads of 64)
    },
    "tiny": {
        "batch": 1,
        "frames": 4,
        "size": 8,
        "ours": dict(base_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2,)),
        "ours_head_dim": 16,
        "ours_norm_groups": 8,
        "ours_temporal_head_dim": 16,
        "theirs": dict(dim=16, dim_max=32, num_downsamples=1, num_blocks_per_stage=1, attn_res=(4,), attn_dim_head=16),
        "theirs_attn_inflation": dict(heads=2, dim_head=16),
    },
}
OUR_TIMESTEP = 500  # our integer diffusion timestep; KarrasUnet embeds a float noise level instead
THEIR_TIME = 0.5


# -- shared by the two sides (stdlib + numpy only) --------------------------------------------------


def emit(event: str, **payload) -> None:
    sys.stdout.write(MARK + json.dumps({"event": event, **payload}) + "\n")
    sys.stdout.flush()


def make_arrays(batch: int, frames: int, size: int, seed: int = 0):
    """The input video and the regression target, [B, T, H, W, 3] float32, identical on both sides
    (numpy's PCG64 stream does not change across numpy versions)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (batch, frames, size, size, 3)
    x = rng.standard_normal(shape, dtype=np.float32)
    target = rng.standard_normal(shape, dtype=np.float32)
    return x, target, hashlib.sha1(x.tobytes() + target.tobytes()).hexdigest()[:12]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def timed_loop(call, n: int) -> dict:
    """n calls of `call` (which blocks until its result is ready): per-call wall times, and the CPU
    time of the whole process (all threads) over the wall time of the loop: the cores used."""
    times = []
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - w0
    return {"times_s": [round(t, 5) for t in times], "cores_used": round((time.process_time() - c0) / wall, 2)}


def serve(forward, fwdbwd, args) -> None:
    """Warm up, report ready, then answer the parent's commands on stdin: `round` (args.iters timed
    forward calls, then args.iters timed forward + backward calls) or `quit`."""
    for _ in range(args.warmup):
        forward()
        fwdbwd()
    emit("warm", peak_rss_mib=round(peak_rss_mib(), 1))
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        if cmd != "round":
            raise SystemExit(f"peer_cpu child: unknown command {cmd!r}")
        load = os.getloadavg()[0]
        emit(
            "round",
            loadavg_1m=round(load, 2),
            forward=timed_loop(forward, args.iters),
            fwdbwd=timed_loop(fwdbwd, args.iters),
            peak_rss_mib=round(peak_rss_mib(), 1),
        )


# -- jax side ---------------------------------------------------------------------------------------


def our_config(spec: dict, match: str):
    from lumiere_jax.models.stunet import STUNetConfig
    from lumiere_jax.models.unet import UNetConfig

    structural = match == "structural"
    unet = UNetConfig(
        in_channels=3,
        out_channels=3,
        text_dim=None,  # KarrasUnet here is unconditional
        head_dim=spec["ours_head_dim"],
        norm_groups=spec["ours_norm_groups"],
        dropout=0.0,
        resample="resnet" if structural else "conv",
        mid_attention=not structural,
        **spec["ours"],
    )
    return STUNetConfig(unet=unet, temporal_head_dim=spec["ours_temporal_head_dim"])


def jax_programs(spec: dict, match: str, batch: int, frames: int):
    """Our side's model on `make_arrays`' input: (STUNet config, {"forward": (fn, args), "fwdbwd":
    (fn, args)}, the fresh params {SPATIAL, TEMPORAL}, the input's digest, init seconds). forward(spatial,
    temporal, x, t); fwdbwd = value_and_grad of the mean-squared error w.r.t. the temporal params only.
    Also what bench/profile_cpu.py profiles."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from lumiere_jax import runtime
    from lumiere_jax.models.stunet import SPATIAL, TEMPORAL, STUNet

    cfg = our_config(spec, match)
    model = STUNet(cfg)
    x_np, target_np, digest = make_arrays(batch, frames, spec["size"])
    x, target = jnp.asarray(x_np), jnp.asarray(target_np)
    t = jnp.full((batch,), OUR_TIMESTEP, jnp.int32)

    t0 = time.perf_counter()
    params = nn.meta.unbox(runtime.jit_once(model.init)(jax.random.PRNGKey(0), x, t)["params"])  # as the trainer
    jax.block_until_ready(params)
    init_s = time.perf_counter() - t0
    spatial, temporal = params[SPATIAL], params[TEMPORAL]

    def forward(spatial, temporal, x, t):
        return model.apply({"params": {SPATIAL: spatial, TEMPORAL: temporal}}, x, t)

    def loss(temporal, spatial, x, t, target):
        return jnp.mean((forward(spatial, temporal, x, t) - target) ** 2)

    fwdbwd = jax.value_and_grad(loss)  # argnums=0: the temporal parameters only
    programs = {"forward": (forward, (spatial, temporal, x, t)), "fwdbwd": (fwdbwd, (temporal, spatial, x, t, target))}
    return cfg, programs, params, digest, init_s


def jax_side(args, spec: dict) -> None:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    t_import = time.perf_counter()
    import flax
    import jax
    import numpy as np

    sys.path.insert(0, REPO)
    sys.path.insert(0, BENCH)
    import step_perf  # its XLA cost-analysis helper

    from lumiere_jax import flops as flops_lib
    from lumiere_jax import runtime
    from lumiere_jax.models.stunet import SPATIAL, TEMPORAL

    b, frames = args.batch or spec["batch"], args.frames or spec["frames"]
    # The batch split over host devices, as a CPU training run splits it (lumiere_jax/runtime.py):
    # auto = the largest count <= --threads dividing the batch.
    devices = args.jax_devices or runtime.batch_split(b, args.threads)
    if b % devices:
        raise SystemExit(f"peer_cpu: --jax_devices={devices} does not divide the batch {b}")
    runtime.setup(cpu_devices=devices)  # as main.py: the devices, CPU_XLA_FLAGS, the heap trimmed after compiles
    if not args.xla_cache:  # no persistent cache: the compile times are real
        jax.config.update("jax_enable_compilation_cache", False)
    import_s = time.perf_counter() - t_import

    cfg, programs, params, digest, init_s = jax_programs(spec, args.match, b, frames)
    count = lambda tree: int(sum(np.prod(a.shape) for a in jax.tree_util.tree_leaves(tree)))
    num_params = {"frozen": count(params[SPATIAL]), "trained": count(params[TEMPORAL])}
    del params  # the programs' arguments hold the parameters (one copy per device), as in a run
    if devices > 1:  # parameters replicated, the batch (x, t, target) split over the devices
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

        mesh = Mesh(np.array(jax.devices()[:devices]), ("data",))
        split, whole = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
        placed = {}  # by id: the two programs share one placed copy of each array, as a run's state is one

        def place(a):
            if id(a) not in placed:
                placed[id(a)] = jax.device_put(a, split if a.ndim and a.shape[0] == b else whole)
            return placed[id(a)]

        programs = {name: (fn, jax.tree_util.tree_map(place, fn_args)) for name, (fn, fn_args) in programs.items()}
        del placed
    (forward, fwd_args), (fwdbwd, bwd_args) = programs["forward"], programs["fwdbwd"]
    # the traced programs' FLOPs first: the heap trim after the compiles below (runtime.setup) then
    # also returns what this bookkeeping freed, as it would in a run that never traces them twice
    jaxpr = {
        "forward": flops_lib.program_matmul_flops(jax.make_jaxpr(forward)(*fwd_args)),
        "fwdbwd": flops_lib.program_matmul_flops(jax.make_jaxpr(fwdbwd)(*bwd_args)),
    }
    compiled, compile_s, xla = {}, {}, {}
    for name, (fn, fn_args) in programs.items():
        t0 = time.perf_counter()
        compiled[name] = jax.jit(fn).lower(*fn_args).compile()
        compile_s[name] = round(time.perf_counter() - t0, 2)
        xla[name] = step_perf._cost(compiled[name]).get("flops")

    by_kind = flops_lib.denoiser_flops(cfg, batch=b, frames=frames, size=spec["size"], text_len=0, by_kind=True)
    fwd_flops = sum(by_kind.values())
    trained_flops = sum(v for k, v in by_kind.items() if k.startswith("temporal"))
    emit(
        "ready",
        side="jax",
        input_sha1=digest,
        input_shape=list(fwd_args[2].shape),
        versions={"jax": jax.__version__, "flax": flax.__version__, "numpy": np.__version__},
        backend=jax.default_backend(),
        config={"stunet": repr(cfg)},
        params=num_params,
        flops={
            "forward": fwd_flops,
            "fwdbwd": 2 * fwd_flops + trained_flops,
            "forward_by_kind": by_kind,
            "method": "analytic (lumiere_jax/flops.py); fwdbwd = 2 x forward + temporal forward",
        },
        flops_jaxpr=jaxpr,
        flops_xla=xla,
        import_s=round(import_s, 2),
        build_s=round(init_s, 2),
        compile_s=compile_s,
        threads=f"XLA default ({len(os.sched_getaffinity(0))} CPUs available), {devices} host device(s)",
        devices=devices,
        peak_rss_mib=round(peak_rss_mib(), 1),
    )
    run_fwd = lambda: jax.block_until_ready(compiled["forward"](*fwd_args))
    run_bwd = lambda: jax.block_until_ready(compiled["fwdbwd"](*bwd_args))
    serve(run_fwd, run_bwd, args)


# -- torch side -------------------------------------------------------------------------------------


def load_karras_unet():
    """denoising_diffusion_pytorch's `karras_unet` module without running the package's __init__,
    which imports torchvision (no CPU wheel for recent torch): an empty stand-in package module with
    the real package's path goes into sys.modules, so `karras_unet`'s own absolute import of
    `denoising_diffusion_pytorch.attend` resolves to the real file; `karras_unet` itself is loaded
    from its file."""
    import importlib.util
    import types

    name = "denoising_diffusion_pytorch"
    spec = importlib.util.find_spec(name)  # a top-level find_spec does not execute the package
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{name} is not installed in {sys.executable}")
    where = list(spec.submodule_search_locations)
    if name not in sys.modules:
        stub = types.ModuleType(name, "stand-in: the real __init__ imports torchvision (bench/peer_cpu.py)")
        stub.__path__ = where
        sys.modules[name] = stub
    module_spec = importlib.util.spec_from_file_location(
        f"{name}.karras_unet", os.path.join(where[0], "karras_unet.py")
    )
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    return module


def karras_hook_names(unet, temporal_downsamples: int, inflate_resamplers: bool) -> dict:
    """`Lumiere`'s module-name lists for a KarrasUnet, laid out as our STUNet's hook plan: conv
    inflation after the blocks of every level but the coarsest, attention inflation after those of
    the coarsest level and the mid blocks, temporal down/up-sampling after the first
    `temporal_downsamples` down-sampling encoders and the matching up-sampling decoders. With
    `inflate_resamplers` the resampling blocks also get the inflation block of the level of their
    output (`Lumiere` runs it before the temporal resampling hooked on the same block)."""
    names = {"conv": [], "attn": [], "down": [], "up": []}
    last, level = unet.num_downsamples, 0
    for i, block in enumerate(unet.downs):
        if block.downsample:
            if level < temporal_downsamples:
                names["down"].append(f"downs.{i}")
            level += 1
            if not inflate_resamplers:
                continue
        names["attn" if level == last else "conv"].append(f"downs.{i}")
    names["attn"] += [f"mids.{i}" for i in range(len(unet.mids))]
    for i, block in enumerate(unet.ups):
        if block.upsample:
            level -= 1
            if level < temporal_downsamples:
                names["up"].append(f"ups.{i}")
            if not inflate_resamplers:
                continue
        names["attn" if level == last else "conv"].append(f"ups.{i}")
    return names


def torch_side(args, spec: dict) -> None:
    import importlib.metadata

    t_import = time.perf_counter()
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        karras_unet = load_karras_unet()
        from lumiere_pytorch import Lumiere
    except ImportError as e:
        raise SystemExit(f"peer_cpu: the torch side cannot import its packages ({e}); create the venv: {PEER_SETUP}")
    import_s = time.perf_counter() - t_import
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before any parallel work
        pass
    torch.manual_seed(0)

    b, frames, size = args.batch or spec["batch"], args.frames or spec["frames"], spec["size"]
    t0 = time.perf_counter()
    unet = karras_unet.KarrasUnet(image_size=size, channels=3, dropout=0.0, **spec["theirs"])
    temporal_downsamples = unet.num_downsamples  # as ours: after every spatial down-sampling
    names = karras_hook_names(unet, temporal_downsamples, inflate_resamplers=args.match == "issue")
    model = Lumiere(
        unet,
        image_size=size,
        unet_time_kwarg="time",
        conv_module_names=names["conv"],
        attn_module_names=names["attn"],
        downsample_module_names=names["down"],
        upsample_module_names=names["up"],
        attn_inflation_kwargs=spec["theirs_attn_inflation"],
    )
    build_s = time.perf_counter() - t0
    every = list(torch.nn.Module.parameters(model))  # Lumiere.parameters() lists the temporal ones only
    trained = [p for p in every if p.requires_grad]
    n_trained = sum(p.numel() for p in trained)

    x_np, target_np, digest = make_arrays(b, frames, size)
    x = torch.from_numpy(x_np).permute(0, 4, 1, 2, 3).contiguous()  # [B, C, T, H, W]
    target = torch.from_numpy(target_np).permute(0, 4, 1, 2, 3).contiguous()
    time_in = torch.full((b,), THEIR_TIME)

    def forward():
        model.eval()
        with torch.no_grad():
            return model(x, time=time_in)

    def fwdbwd():
        model.train()  # KarrasUnet re-normalises its weights in train mode, as in a training step
        for p in trained:
            p.grad = None
        loss = torch.mean((model(x, time=time_in) - target) ** 2)
        loss.backward()
        return loss

    flops = {}
    for name, fn in (("forward", forward), ("fwdbwd", fwdbwd)):
        with FlopCounterMode(display=False) as counter:
            fn()
        flops[name] = int(counter.get_total_flops())
    flops["method"] = "torch.utils.flop_counter.FlopCounterMode, one call"

    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    emit(
        "ready",
        side="torch",
        input_shape=list(x.shape),
        input_sha1=digest,
        versions={
            d: version(d)
            for d in ("torch", "lumiere-pytorch", "denoising-diffusion-pytorch", "x-transformers", "einops", "numpy")
        },
        config={"karras_unet": {"image_size": size, **spec["theirs"]}, "hook_names": names},
        params={"frozen": sum(p.numel() for p in every) - n_trained, "trained": n_trained},
        flops=flops,
        import_s=round(import_s, 2),
        build_s=round(build_s, 2),
        compile_s=None,
        threads=f"torch intra-op {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()}",
        peak_rss_mib=round(peak_rss_mib(), 1),
    )
    serve(forward, fwdbwd, args)


def child_main(args) -> None:
    if args.cpus:
        os.sched_setaffinity(0, set(args.cpus))
    spec = SIZES["tiny" if args.tiny else "full"]
    (jax_side if args.side == "jax" else torch_side)(args, spec)


# -- parent -----------------------------------------------------------------------------------------


class Child:
    """One side's process: its protocol messages come on stdout (MARK lines), its stderr is ours."""

    def __init__(self, side: str, python: str, argv: list[str], env: dict):
        self.side = side
        cmd = [python, os.path.abspath(__file__), f"--side={side}", *argv]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)

    def read(self, want: str) -> dict:
        for line in self.proc.stdout:
            if line.startswith(MARK):
                msg = json.loads(line[len(MARK) :])
                if msg["event"] != want:
                    raise RuntimeError(f"{self.side} side sent {msg['event']!r}, expected {want!r}")
                return msg
            sys.stderr.write(f"[{self.side}] {line}")
        code = self.proc.wait()
        raise SystemExit(f"peer_cpu: the {self.side} side exited (code {code}) before sending {want!r}; see above")

    def send(self, cmd: str) -> None:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=60)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()


def summarise(times: list[float]) -> dict:
    return {
        "median_s": round(statistics.median(times), 5),
        "min_s": round(min(times), 5),
        "max_s": round(max(times), 5),
        "n": len(times),
    }


def git_commit() -> str:
    run = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return run("rev-parse", "--short", "HEAD") + (
        "+dirty" if run("status", "--porcelain", "--untracked-files=no") else ""
    )


def parent_main(args, argv: list[str]) -> dict:
    start = time.time()
    load_start = [round(v, 2) for v in os.getloadavg()]
    peer_python = args.peer_python or DEFAULT_PEER_PYTHON
    if not (os.path.isfile(peer_python) and os.access(peer_python, os.X_OK)):
        raise SystemExit(
            f"peer_cpu: no Python for the torch side at {peer_python}. Create the peer venv from the repository "
            f"root:\n  {PEER_SETUP}\nor pass --peer_python=/path/to/venv/bin/python (a venv with "
            "bench/requirements-peer.txt installed)."
        )
    if args.tiny:
        args.repeats, args.iters, args.warmup = 1, 1, 1
    busy = load_start[0] > 0.25 * os.cpu_count()
    if busy:
        print(
            f"peer_cpu: load average {load_start[0]} on {os.cpu_count()} CPUs before starting: something else is "
            "running, the timings will not be representative (torch's OpenMP threads spin-wait, and collapse when "
            "they share cores: OMP_WAIT_POLICY=PASSIVE avoids that, recorded in the JSON)",
            file=sys.stderr,
            flush=True,
        )
    available = sorted(os.sched_getaffinity(0))
    cpus = available[: args.threads] if args.threads < len(available) else []
    child_argv = [
        f"--match={args.match}",
        f"--threads={args.threads}",
        f"--iters={args.iters}",
        f"--warmup={args.warmup}",
        f"--batch={args.batch}",
        f"--frames={args.frames}",
        f"--jax_devices={args.jax_devices}",
        *(["--tiny"] if args.tiny else []),
        *(["--xla_cache"] if args.xla_cache else []),
        *([f"--cpus={','.join(map(str, cpus))}"] if cpus else []),
    ]
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    pythons = {"jax": args.jax_python or sys.executable, "torch": peer_python}
    children, ready = {}, {}
    try:
        for side in SIDES:  # one after the other: neither builds or compiles while the other does
            children[side] = Child(side, pythons[side], child_argv, env)
            ready[side] = children[side].read("ready")
            ready[side]["warm_peak_rss_mib"] = children[side].read("warm")["peak_rss_mib"]
            print(f"{side} side ready ({pythons[side]})", flush=True)
        if ready["jax"]["input_sha1"] != ready["torch"]["input_sha1"]:
            raise SystemExit("peer_cpu: the two sides did not get the same input")
        rounds = {side: [] for side in SIDES}
        for r in range(args.repeats):
            order = SIDES if r % 2 == 0 else SIDES[::-1]
            for side in order:
                children[side].send("round")
                msg = children[side].read("round")
                rounds[side].append(msg)
                print(
                    f"round {r + 1}/{args.repeats} {side}: forward {msg['forward']['times_s']} s, "
                    f"fwd+bwd {msg['fwdbwd']['times_s']} s, load {msg['loadavg_1m']}",
                    flush=True,
                )
    finally:
        for child in children.values():
            child.close()

    sides = {}
    for side in SIDES:
        info, rs = ready[side], rounds[side]
        sides[side] = {
            **{k: v for k, v in info.items() if k not in ("event", "side", "input_sha1", "peak_rss_mib")},
            "peak_rss_mib_after_build": info["peak_rss_mib"],
            "peak_rss_mib": max(m["peak_rss_mib"] for m in rs),
            "python": pythons[side],
        }
        for kind in ("forward", "fwdbwd"):
            times = [t for m in rs for t in m[kind]["times_s"]]
            sides[side][kind] = {
                **summarise(times),
                "cores_used_median": statistics.median(m[kind]["cores_used"] for m in rs),
                "gflop_per_s": round(info["flops"][kind] / statistics.median(times) / 1e9, 2),
                "times_s": times,
            }
    ours, theirs = sides["jax"], sides["torch"]
    ratio = lambda a, b: round(a / b, 4) if b else None
    ratios = {
        "forward_time": ratio(ours["forward"]["median_s"], theirs["forward"]["median_s"]),
        "fwdbwd_time": ratio(ours["fwdbwd"]["median_s"], theirs["fwdbwd"]["median_s"]),
        "forward_flops": ratio(ours["flops"]["forward"], theirs["flops"]["forward"]),
        "fwdbwd_flops": ratio(ours["flops"]["fwdbwd"], theirs["flops"]["fwdbwd"]),
        "fwdbwd_flops_jaxpr": ratio(ours["flops_jaxpr"]["fwdbwd"], theirs["flops"]["fwdbwd"]),
        "forward_gflop_per_s": ratio(ours["forward"]["gflop_per_s"], theirs["forward"]["gflop_per_s"]),
        "fwdbwd_gflop_per_s": ratio(ours["fwdbwd"]["gflop_per_s"], theirs["fwdbwd"]["gflop_per_s"]),
        "params_frozen": ratio(ours["params"]["frozen"], theirs["params"]["frozen"]),
        "params_trained": ratio(ours["params"]["trained"], theirs["params"]["trained"]),
    }
    print_table(ours, theirs, ratios)
    load_rounds = {side: [m["loadavg_1m"] for m in rounds[side]] for side in SIDES}
    record = {
        "name": "peer_cpu",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": "python bench/peer_cpu.py " + " ".join(shlex.quote(a) for a in argv),
        "commit": git_commit(),
        "note": args.note,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "cpus_pinned": cpus or None,
            "loadavg_at_start": load_start,  # 1, 5, 15 min, before either side started
            "loadavg_1m_at_rounds": load_rounds,
            "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
            "busy_at_start": busy,
        },
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)},
        "match": args.match,
        "size": "tiny" if args.tiny else "full",
        "input_shape_bthwc": ready["jax"]["input_shape"],
        "input_sha1": ready["jax"]["input_sha1"],
        "timestep": {"ours": OUR_TIMESTEP, "theirs": THEIR_TIME},
        "threads": args.threads,
        "repeats": args.repeats,
        "iters_per_round": args.iters,
        "warmup": args.warmup,
        "ours": ours,
        "theirs": theirs,
        "ratios_ours_over_theirs": ratios,
        "wall_time_s": round(time.time() - start, 1),
    }
    with open(args.results, "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def print_table(ours: dict, theirs: dict, ratios: dict) -> None:
    m = lambda n: f"{n / 1e6:.2f} M"
    g = lambda n: f"{n / 1e9:.2f} G"
    rows = [
        ("params frozen", m(ours["params"]["frozen"]), m(theirs["params"]["frozen"]), ratios["params_frozen"]),
        ("params trained", m(ours["params"]["trained"]), m(theirs["params"]["trained"]), ratios["params_trained"]),
        ("forward FLOPs", g(ours["flops"]["forward"]), g(theirs["flops"]["forward"]), ratios["forward_flops"]),
        ("fwd+bwd FLOPs", g(ours["flops"]["fwdbwd"]), g(theirs["flops"]["fwdbwd"]), ratios["fwdbwd_flops"]),
        (
            "fwd+bwd FLOPs (jaxpr)",
            g(ours["flops_jaxpr"]["fwdbwd"]),
            g(theirs["flops"]["fwdbwd"]),
            ratios["fwdbwd_flops_jaxpr"],
        ),
    ]
    for kind, label in (("forward", "forward"), ("fwdbwd", "fwd+bwd")):
        a, b = ours[kind], theirs[kind]
        rows += [
            (f"{label} median", f"{a['median_s']:.4f} s", f"{b['median_s']:.4f} s", ratios[f"{kind}_time"]),
            (f"{label} min..max", f"{a['min_s']:.4f}..{a['max_s']:.4f}", f"{b['min_s']:.4f}..{b['max_s']:.4f}", ""),
            (f"{label} GFLOP/s", a["gflop_per_s"], b["gflop_per_s"], ratios[f"{kind}_gflop_per_s"]),
            (f"{label} cores used", a["cores_used_median"], b["cores_used_median"], ""),
        ]
    compile_s = ours["compile_s"]
    rows += [
        ("build s", ours["build_s"], theirs["build_s"], ""),
        ("compile s (fwd, fwd+bwd)", f"{compile_s['forward']}, {compile_s['fwdbwd']}", "-", ""),
        ("peak RSS MiB", ours["peak_rss_mib"], theirs["peak_rss_mib"], ""),
    ]
    print(f"\n{'':26} {'lumiere_jax':>22} {'lumiere-pytorch':>22} {'ours/theirs':>12}")
    for name, a, b, r in rows:
        print(f"{name:26} {str(a):>22} {str(b):>22} {str(r):>12}")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", choices=SIDES, help="internal: run one side as a child of the parent")
    p.add_argument("--peer_python", default=None, help=f"the torch side's Python (default {DEFAULT_PEER_PYTHON})")
    p.add_argument("--jax_python", default=None, help="the jax side's Python (default: this one)")
    p.add_argument("--match", choices=("issue", "structural"), default="issue", help="size pairing (docstring)")
    p.add_argument("--tiny", action="store_true", help="both models very small, 1 repeat: a smoke check")
    p.add_argument("--repeats", type=int, default=5, help="rounds per side, interleaved")
    p.add_argument("--iters", type=int, default=2, help="timed calls of each kind per round")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls of each kind after the build")
    p.add_argument("--batch", type=int, default=0, help="override the batch (0: the size's)")
    p.add_argument("--frames", type=int, default=0, help="override the frame count (0: the size's)")
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch intra-op threads; below the CPUs available, both sides are also pinned to that many CPUs",
    )
    p.add_argument(
        "--jax_devices",
        type=int,
        default=0,
        help="host devices the jax side splits the batch over (0: as a CPU training run, the largest count "
        "<= --threads dividing the batch; 1: one device, the measurements before session 15)",
    )
    p.add_argument("--cpus", type=lambda s: [int(c) for c in s.split(",")], default=None, help="internal")
    p.add_argument("--xla_cache", action="store_true", help="use the persistent XLA cache (compile_s then is not real)")
    p.add_argument("--results", default=os.path.join(BENCH, "results.jsonl"))
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    if args.side:
        return child_main(args)
    return parent_main(args, argv)


if __name__ == "__main__":
    main()
