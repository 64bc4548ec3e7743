r"""Where XLA:CPU spends a compiled program's time, op by op (issue 19 item 4).

Builds the STUNet of `bench/peer_cpu.py` (the size paired with lumiere-pytorch; `--size=tiny` for a
smoke check), compiles its forward or its forward + backward (temporal parameters trained, as there),
runs it `--iters` times under `jax.profiler.trace` with XLA:CPU's per-op trace events on
(`--xla_cpu_enable_xprof_traceme=true`, set here before jax is imported), and reads the trace back
with `jax.profiler.ProfileData`. Every thunk XLA:CPU runs (a YNNPACK/oneDNN fusion, a loop fusion, a
copy/transpose, a convolution, a sort ...) appears as events on the executor thread and on the intra-op
pool's worker threads; per op name this sums

  * wall: the union of the op's intervals over all threads (the time the program spends in it),
  * cpu: the sum of its event durations (kept in the JSON; the work items a library kernel hands to
    the pool's threads are not traced under the op's name, so cpu / wall is not the op's cores),

and maps the name to its HLO: the opcode and, for a fusion, the operations inside with the output
shape (from the optimised HLO text), so a row reads "ynn_fusion.1320 21.2 ms 0.8 %
fusion/kCustom(conv[3x3 b01f_01io->b01f]) -> f32[32,32,32,32]". Totals by category follow; the part of
the wall no op covers is the executor between thunks. Optional `--dump=FILE` writes the rows as JSON.

  JAX_PLATFORMS=cpu python bench/profile_cpu.py --what=fwdbwd --iters=3
  JAX_PLATFORMS=cpu python bench/profile_cpu.py --size=tiny --what=forward --iters=2   # smoke, ~20 s

Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import shutil
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")


def _enable_traceme() -> None:
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_enable_xprof_traceme" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_enable_xprof_traceme=true").strip()


_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*?)\s([a-z][\w\-]*)\((.*)$")
_SHAPE = re.compile(r"[a-z]+\d*\[[\d,]*\]")
_CALLS = re.compile(r"calls=%?([\w.\-]+)")
_COMP = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")


def hlo_ops(hlo_text: str) -> dict[str, str]:
    """Instruction name -> a short description: its opcode, and for a fusion (or a call) the notable
    opcodes of the computation it calls (convolution with its dim labels, dot, reduce, transpose...)."""
    comps: dict[str, list[tuple[str, str, str]]] = {}
    shapes: dict[str, str] = {}
    current = None
    for line in hlo_text.splitlines():
        m = _COMP.match(line)
        if m and "=" not in line.split("{")[0]:
            current = m.group(1)
            comps[current] = []
            continue
        m = _INSTR.match(line)
        if m and current is not None:
            comps[current].append((m.group(1), m.group(3), line))
            shapes[m.group(1)] = " ".join(_SHAPE.findall(m.group(2))[:2])

    def conv_desc(line: str) -> str:
        dims = re.search(r"dim_labels=([\w>\-]+)", line)
        win = re.search(r"window=\{size=([\dx]+)", line)
        return f"conv[{win.group(1) if win else ''} {dims.group(1) if dims else ''}]"

    def inner(comp: str, depth: int = 0) -> list[str]:
        out = []
        for _, op, line in comps.get(comp, []):
            if op == "convolution":
                out.append(conv_desc(line))
            elif op in ("dot", "reduce", "transpose", "reduce-window", "select-and-scatter", "scatter", "gather"):
                out.append(op)
            elif op in ("fusion", "call") and depth < 3:
                c = _CALLS.search(line)
                if c:
                    out += inner(c.group(1), depth + 1)
        return out

    desc = {}
    for comp, instrs in comps.items():
        for name, op, line in instrs:
            if op in ("fusion", "call", "custom-call"):
                c = _CALLS.search(line)
                kind = re.search(r"kind=(\w+)", line)
                parts = collections.Counter(inner(c.group(1))) if c else collections.Counter()
                body = ", ".join(f"{k}x{v}" if v > 1 else k for k, v in parts.most_common(4))
                desc[name] = f"{op}{'/' + kind.group(1) if kind else ''}({body})"
            elif op == "convolution":
                desc[name] = conv_desc(line)
            else:
                desc[name] = op
            desc[name] += " -> " + shapes.get(name, "")
    return desc


def category(desc: str) -> str:
    if "conv[" in desc:
        m = re.search(r"conv\[([\dx]+) ([\w>\-]+)\]", desc)
        return f"conv {m.group(1)} {m.group(2)}" if m else "conv"
    for key in ("dot", "reduce", "transpose", "copy", "scatter", "gather"):
        if key in desc:
            return key
    return desc.split("(")[0].split(" ")[0]


def union_ns(intervals: list[tuple[int, int]]) -> int:
    total, end = 0, None
    for s, e in sorted(intervals):
        if end is None or s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


def read_trace(trace_dir: str, names: set[str]) -> dict:
    """Per op name: wall (union of intervals over threads), cpu (sum of durations), event count."""
    import jax

    files = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
    if not files:
        raise SystemExit(f"profile_cpu: no .xplane.pb written under {trace_dir}")
    data = jax.profiler.ProfileData.from_file(files[0])
    spans: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    cpu: collections.Counter = collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            for ev in line.events:
                name = ev.name
                if name not in names:
                    continue
                s = int(ev.start_ns)
                spans[name].append((s, s + int(ev.duration_ns)))
                cpu[name] += int(ev.duration_ns)
    rows = {n: {"wall_ns": union_ns(v), "cpu_ns": cpu[n], "events": len(v)} for n, v in spans.items()}
    return rows


def build(args):
    """The compiled program and its arguments: bench/peer_cpu.py's jax side ("issue" pairing)."""
    sys.path.insert(0, BENCH)
    import jax
    import peer_cpu

    spec = peer_cpu.SIZES[args.size]
    _, programs, _, _, _ = peer_cpu.jax_programs(spec, "issue", spec["batch"], spec["frames"])
    fn, fn_args = programs[args.what]
    return jax.jit(fn).lower(*fn_args).compile(), fn_args


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--what", choices=("forward", "fwdbwd"), default="fwdbwd")
    p.add_argument("--size", choices=("full", "tiny"), default="full", help="bench/peer_cpu.py's SIZES")
    p.add_argument("--iters", type=int, default=3, help="profiled calls (after one warm-up call)")
    p.add_argument("--top", type=int, default=25, help="rows of the per-op table")
    p.add_argument("--dump", default="", help="write the per-op rows as JSON here")
    args = p.parse_args(argv)
    _enable_traceme()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    sys.path.insert(0, REPO)
    import jax

    compiled, fn_args = build(args)
    desc = hlo_ops(compiled.as_text())
    jax.block_until_ready(compiled(*fn_args))
    trace_dir = tempfile.mkdtemp(prefix="profile_cpu_")
    c0, w0 = time.process_time(), time.perf_counter()
    with jax.profiler.trace(trace_dir):
        for _ in range(args.iters):
            jax.block_until_ready(compiled(*fn_args))
    wall_s, cores = time.perf_counter() - w0, (time.process_time() - c0) / (time.perf_counter() - w0)
    rows = read_trace(trace_dir, set(desc))
    shutil.rmtree(trace_dir, ignore_errors=True)
    run_ns = wall_s * 1e9
    total_wall = sum(r["wall_ns"] for r in rows.values())
    per_call = wall_s / args.iters
    print(
        f"{args.what} ({args.size}): {args.iters} calls, {per_call:.3f} s a call with the profiler on; "
        f"{cores:.2f} cores over the profiled loop; {len(rows)} ops traced, their walls sum to "
        f"{total_wall / run_ns:.0%} of the wall (the rest: the executor between thunks)"
    )
    order = sorted(rows, key=lambda n: -rows[n]["wall_ns"])
    print(f"{'op':<28} {'wall ms/call':>12} {'share':>6}  hlo")
    for n in order[: args.top]:
        r = rows[n]
        print(f"{n:<28} {r['wall_ns'] / args.iters / 1e6:12.1f} {r['wall_ns'] / run_ns:6.1%}  {desc.get(n, '?')[:120]}")
    cats: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])  # wall ns, ops
    for n, r in rows.items():
        c = cats[category(desc.get(n, "?"))]
        c[0] += r["wall_ns"]
        c[1] += 1
    print(f"\n{'category':<44} {'wall ms/call':>12} {'share':>6} {'ops':>5}")
    for k, (w, cnt) in sorted(cats.items(), key=lambda kv: -kv[1][0]):
        print(f"{k:<44} {w / args.iters / 1e6:12.1f} {w / run_ns:6.1%} {cnt:5d}")
    out = {
        "what": args.what,
        "size": args.size,
        "iters": args.iters,
        "per_call_s": per_call,
        "cores": cores,
        "rows": {n: dict(rows[n], hlo=desc.get(n, "?")) for n in order},
    }
    if args.dump:
        with open(args.dump, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
