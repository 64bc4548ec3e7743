"""Shardings of the train state and the batch on a mesh, and sharded initialisation.

Parameters carry logical axis names (`nn.with_logical_partitioning` in the model code). The
state's shardings come from `jax.eval_shape` of the state built from *boxed* parameters (the
optimizer moments and the EMA inherit the boxes, since optax maps over the parameter tree), then
`nn.get_partition_spec` + `nn.logical_to_mesh_sharding`; scalars (step, optimizer counts) are
replicated. `init_state` builds the state inside one jit with those `out_shardings`, so the model
is never materialised on one device.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lumiere_jax import runtime
from lumiere_jax.parallel.mesh import BATCH_AXES


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over (data, fsdp); other axes replicated."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def fit_spec(spec: PartitionSpec, shape: Sequence[int], mesh: Mesh) -> PartitionSpec:
    """`spec` with the mesh axes that do not divide their dimension dropped (that dimension is then
    split over fewer axes, or replicated): e.g. a conv kernel's 3 RGB input channels on fsdp=2."""
    out = []
    for dim, entry in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
        names = () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)
        kept, size = [], 1
        for name in names:
            if dim % (size * mesh.shape[name]) == 0:
                kept.append(name)
                size *= mesh.shape[name]
        out.append(None if not kept else kept[0] if len(kept) == 1 else tuple(kept))
    return PartitionSpec(*out)


def logical_shardings(boxed_tree: Any, mesh: Mesh, rules: Sequence[tuple[str, Any]]) -> Any:
    """NamedShardings of an abstract tree whose leaves may be `nn.LogicallyPartitioned` (result in
    the unboxed structure); dimensions a mesh axis does not divide are not split over it."""
    shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(boxed_tree), mesh, rules)
    return jax.tree_util.tree_map(
        lambda s, sh: NamedSharding(mesh, fit_spec(sh.spec, s.shape, mesh)), nn.meta.unbox(boxed_tree), shardings
    )


def _boxed_state(model, tx, create, rng):
    return create(model.init(rng, boxed=True), tx)


def state_shardings(
    model, tx, mesh: Mesh, rules: Sequence[tuple[str, Any]], create: Callable[[Any, Any], Any]
) -> tuple[Any, Any]:
    """(abstract state with shardings, state shardings) of `create(model.init(...), tx)` (the trainer's
    `train.state.create`: the state's type is the caller's, not this module's)."""
    boxed = jax.eval_shape(lambda p: create(p, tx), model.abstract_params(boxed=True))
    shardings = logical_shardings(boxed, mesh, rules)
    abstract = jax.tree_util.tree_map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), nn.meta.unbox(boxed), shardings
    )
    return abstract, shardings


def param_shardings(model, mesh: Mesh, rules: Sequence[tuple[str, Any]]) -> Any:
    return logical_shardings(model.abstract_params(boxed=True), mesh, rules)


def init_state(model, tx, rng: jax.Array, shardings: Any, create: Callable[[Any, Any], Any], params: Any = None) -> Any:
    """The initial train state `create(params, tx)`, created directly in `shardings`: fresh parameters
    from `rng` (one jit, no single-device copy), or the given `params` (e.g. a warm start) placed first."""
    if params is None:
        fresh = lambda r: nn.meta.unbox(_boxed_state(model, tx, create, r))  # noqa: E731
        return runtime.jit_once(fresh, out_shardings=shardings)(rng)
    params = jax.device_put(params, shardings.params)
    return jax.jit(lambda p: create(p, tx), out_shardings=shardings)(params)


def jit_train_step(step_fn, mesh: Mesh, rules: Sequence[tuple[str, Any]], state_shardings: Any):
    """`step_fn(state, batch) -> (state, metrics)` jitted on `mesh`: state in and out in
    `state_shardings` (donated), batch split over (data, fsdp), metrics replicated. Called (and so
    traced) with the mesh and rules active, so the model's logical constraints apply."""
    from lumiere_jax.parallel.mesh import activate

    jitted = jax.jit(
        step_fn,
        in_shardings=(state_shardings, batch_sharding(mesh)),
        out_shardings=(state_shardings, replicated(mesh)),
        donate_argnums=0,
    )

    def call(state, batch):
        with activate(mesh, rules):
            return jitted(state, batch)

    def lower(state, batch):
        """`jax.jit(...).lower` on (abstract) arguments, e.g. for a memory plan without running."""
        with activate(mesh, rules):
            return jitted.lower(state, batch)

    call.lower = lower
    return call
