"""What reverse-mode autodiff keeps between the forward and the backward pass.

`saved_activations(f, *args)` traces `jax.vjp(f, *args)` on abstract arguments
(`jax.ShapeDtypeStruct`s are enough; nothing is computed) and returns the residuals: the arrays the
backward pass reads, excluding the arguments themselves (parameters and the batch are counted
elsewhere). Their total is the activation memory held across a train step under the model's remat
policy (`config.model.remat`), independent of any backend's scheduling: a compiler that runs each
rematerialised block's recomputation just before its backward needs this much plus the working set
of one block. `tools/memory_plan.py` reports it next to XLA's buffer assignment.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class Residual:
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    source: str  # primitive and the model line that produced it


@dataclasses.dataclass(frozen=True)
class SavedActivations:
    residuals: tuple[Residual, ...]

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.residuals)

    def largest(self, k: int = 10) -> list[tuple[str, int, int]]:
        """(source, count, bytes) of the `k` sources holding the most bytes."""
        total, count = collections.Counter(), collections.Counter()
        for r in self.residuals:
            total[r.source] += r.nbytes
            count[r.source] += 1
        return [(s, count[s], b) for s, b in total.most_common(k)]


def _source(eqn) -> str:
    frames = getattr(eqn.source_info, "traceback", None)
    where = ""
    if frames is not None:
        for frame in frames.frames:
            if "lumiere_jax" in frame.file_name:
                where = f" at {frame.file_name.rsplit('lumiere_jax/', 1)[-1]}:{frame.line_num} ({frame.function_name})"
                break
    return eqn.primitive.name + where


def saved_activations(f: Callable[..., Any], *args: Any, argnums: tuple[int, ...] | None = None) -> SavedActivations:
    """The residuals of the vjp of `f` with respect to `args[i]` for i in `argnums` (default: all),
    each counted once, arguments excluded. Arguments outside `argnums` are inputs only (no
    gradient), e.g. a frozen part of the parameters: what only their gradient would need is not
    saved."""
    import jax

    argnums = tuple(range(len(args))) if argnums is None else tuple(argnums)

    def vjp(*a):
        def g(*diff):
            full = list(a)
            for i, d in zip(argnums, diff):
                full[i] = d
            return f(*full)

        return jax.vjp(g, *(a[i] for i in argnums))

    closed, shapes = jax.make_jaxpr(vjp, return_shape=True)(*args)
    jaxpr = closed.jaxpr
    num_res = len(jax.tree_util.tree_leaves(shapes[1]))
    outvars = jaxpr.outvars[len(jaxpr.outvars) - num_res :]
    excluded = set(jaxpr.invars) | set(jaxpr.constvars)
    producer = {v: eqn for eqn in jaxpr.eqns for v in eqn.outvars}
    seen, residuals = set(), []
    for v in outvars:
        if not hasattr(v, "aval") or type(v).__name__ == "Literal" or v in excluded or v in seen:
            continue
        seen.add(v)
        aval = v.aval
        eqn = producer.get(v)
        residuals.append(
            Residual(
                tuple(aval.shape),
                str(aval.dtype),
                math.prod(aval.shape) * aval.dtype.itemsize,
                _source(eqn) if eqn is not None else "?",
            )
        )
    return SavedActivations(tuple(residuals))
