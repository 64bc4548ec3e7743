"""The device mesh from `config.mesh`: axes (data, fsdp, tensor), per-slice (ICI) and
cross-slice (DCN) sizes, and the logical-axis rules that map `lumiere_jax.axes` names onto it.

  config.mesh.ici_data = -1        # -1: whatever the other sizes leave (at most one -1 per group)
  config.mesh.ici_fsdp = 1         # per slice (fast interconnect: ICI / NVLink)
  config.mesh.ici_tensor = 1
  config.mesh.dcn_data = 1         # across slices (data-centre network), or across processes on a
  config.mesh.dcn_fsdp = 1         # GPU cluster without slices; the product is the number of
  config.mesh.dcn_tensor = 1       # slices (processes)
  config.mesh.logical_axis_rules = axes.DEFAULT_RULES

The mesh is a `jax.sharding.Mesh` with `AxisType.Auto` axes (the compiler propagates shardings;
`jax.make_mesh` now defaults to Explicit axes, which linen convolutions do not support).
`activate(mesh, rules)` enters both the mesh (`jax.set_mesh`) and the rules
(`nn.logical_axis_rules`): `nn.with_logical_constraint` is a no-op unless both are set.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import AxisType, Mesh

from lumiere_jax import axes

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")  # mesh axes the batch dimension is split over
LOGICAL_AXES = frozenset(v for k, v in vars(axes).items() if k.isupper() and isinstance(v, str))


def _check_sizes(sizes: Sequence[int], what: str) -> list[str]:
    """Names of the -1 sizes; ValueError for a size that is not positive or -1, or two -1s."""
    names = [f"{what}_{a}" for a in MESH_AXES]
    bad = [f"{n}={s}" for n, s in zip(names, sizes) if not isinstance(s, int) or s == 0 or s < -1]
    if bad:
        raise ValueError(f"config.mesh: sizes must be positive integers or -1, got {', '.join(bad)}")
    fill = [n for n, s in zip(names, sizes) if s == -1]
    if len(fill) > 1:
        raise ValueError(f"config.mesh: at most one of the {what}_* sizes may be -1, got -1 for {fill}")
    return fill


def check_config(mesh_config: Mapping[str, Any]) -> None:
    """What can be checked without devices: sizes and rules (ValueError naming the problem)."""
    for what in ("ici", "dcn"):
        _check_sizes([mesh_config[f"{what}_{a}"] for a in MESH_AXES], what)
    rules(mesh_config)


def _resolve(sizes: Sequence[int], total: int, what: str) -> tuple[int, ...]:
    """Replace one -1 by total / (product of the others); check the product equals `total`."""
    sizes = list(sizes)
    names = [f"{what}_{a}" for a in MESH_AXES]
    fill = _check_sizes(sizes, what)
    known = math.prod(s for s in sizes if s != -1)
    if fill:
        if total % known:
            raise ValueError(
                f"config.mesh: {total} {'devices per slice' if what == 'ici' else 'slices'} are "
                f"not divisible by the product {known} of the other {what}_* sizes "
                f"({dict(zip(names, sizes))})"
            )
        sizes = [total // known if s == -1 else s for s in sizes]
    if math.prod(sizes) != total:
        raise ValueError(
            f"config.mesh: the {what}_* sizes {dict(zip(names, sizes))} multiply to "
            f"{math.prod(sizes)}, but there are {total} "
            f"{'devices per slice' if what == 'ici' else 'slices (or processes)'}"
        )
    return tuple(sizes)


def num_slices(devices: Sequence[Any]) -> int:
    """TPU slices among `devices` (1 where devices have no slice_index, e.g. CPU/GPU)."""
    return len({getattr(d, "slice_index", 0) for d in devices})


def mesh_shape(
    mesh_config: Mapping[str, Any], num_devices: int, slices: int = 1
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(ici_shape, dcn_shape) over MESH_AXES for `num_devices` devices in `slices` slices.

    Without slices (slices == 1) a DCN product > 1 splits the devices by process (GPU clusters:
    one granule per process/node); the ICI sizes then describe one granule."""
    dcn = [mesh_config[f"dcn_{a}"] for a in MESH_AXES]
    granules = slices
    if slices == 1 and -1 not in dcn and math.prod(dcn) > 1:
        granules = math.prod(dcn)
    if num_devices % granules:
        raise ValueError(f"config.mesh: {num_devices} devices do not split into {granules} equal slices/processes")
    dcn_shape = _resolve(dcn, granules, "dcn")
    ici_shape = _resolve([mesh_config[f"ici_{a}"] for a in MESH_AXES], num_devices // granules, "ici")
    return ici_shape, dcn_shape


def make_mesh(mesh_config: Mapping[str, Any], devices: Sequence[Any] | None = None) -> Mesh:
    """A `Mesh` over `devices` (default: all devices of all processes) with Auto axis types."""
    devices = list(jax.devices() if devices is None else devices)
    slices = num_slices(devices)
    ici, dcn = mesh_shape(mesh_config, len(devices), slices)
    if math.prod(dcn) > 1:
        array = mesh_utils.create_hybrid_device_mesh(
            ici, dcn, devices, process_is_granule=slices == 1, allow_split_physical_axes=True
        )
    elif len(devices) == 1 or devices[0].platform == "cpu":
        array = np.asarray(devices).reshape(ici)
    else:
        array = mesh_utils.create_device_mesh(ici, devices, allow_split_physical_axes=True)
    return Mesh(array, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


def rules(mesh_config: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The config's logical-axis rules as a tuple, checked: logical names from `lumiere_jax.axes`,
    mesh axes from MESH_AXES (a rule maps to None, one mesh axis, or a tuple of them)."""
    out = []
    for rule in mesh_config["logical_axis_rules"]:
        if len(rule) != 2:
            raise ValueError(f"config.mesh.logical_axis_rules: each rule is (logical_axis, mesh_axes), got {rule!r}")
        name, target = rule
        if name not in LOGICAL_AXES:
            raise ValueError(
                f"config.mesh.logical_axis_rules: unknown logical axis {name!r}; known: {sorted(LOGICAL_AXES)}"
            )
        targets = () if target is None else (target,) if isinstance(target, str) else tuple(target)
        unknown = [t for t in targets if t not in MESH_AXES]
        if unknown:
            raise ValueError(
                f"config.mesh.logical_axis_rules: rule for {name!r} names unknown mesh axes "
                f"{unknown}; mesh axes are {MESH_AXES}"
            )
        out.append((name, None if target is None else target if isinstance(target, str) else tuple(target)))
    return tuple(out)


def batch_size_per_shard(mesh: Mesh, global_batch: int) -> int:
    """Examples per batch shard; ValueError unless the batch axes divide `global_batch`."""
    shards = math.prod(mesh.shape[a] for a in BATCH_AXES)
    if global_batch % shards:
        raise ValueError(
            f"config.data.global_batch={global_batch} is not divisible by the batch shards "
            f"data x fsdp = {shards} of the mesh {dict(mesh.shape)}"
        )
    return global_batch // shards


@contextlib.contextmanager
def activate(mesh: Mesh, logical_rules: Sequence[tuple[str, Any]]):
    """Mesh and logical-axis rules in context (trace jitted functions inside it)."""
    with jax.set_mesh(mesh), nn.logical_axis_rules(logical_rules):
        yield mesh
