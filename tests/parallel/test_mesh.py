"""Mesh sizes, rules and launch arguments: validation in this (single-device) process."""

import jax
import numpy as np
import pytest
from jax.sharding import AxisType, PartitionSpec as P

from lumiere_jax import axes, config as config_lib
from lumiere_jax.train import validation
from lumiere_jax.parallel import distributed, mesh as mesh_lib, sharding


def mesh_config(**sizes):
    c = dict(
        ici_data=-1,
        ici_fsdp=1,
        ici_tensor=1,
        dcn_data=-1,
        dcn_fsdp=1,
        dcn_tensor=1,
        logical_axis_rules=axes.DEFAULT_RULES,
    )
    c.update(sizes)
    return c


def test_default_config_mesh_is_all_devices_on_data():
    config = config_lib.default_config()
    mesh = mesh_lib.make_mesh(config.mesh)
    assert dict(mesh.shape) == {"data": jax.device_count(), "fsdp": 1, "tensor": 1}
    assert mesh.axis_types == (AxisType.Auto,) * 3
    assert mesh_lib.rules(config.mesh) == axes.DEFAULT_RULES


@pytest.mark.parametrize(
    "sizes,devices,slices,ici,dcn",
    [
        ({}, 8, 1, (8, 1, 1), (1, 1, 1)),
        (dict(ici_data=2, ici_fsdp=-1, ici_tensor=2), 8, 1, (2, 2, 2), (1, 1, 1)),
        (dict(ici_data=1, ici_fsdp=4), 16, 4, (1, 4, 1), (4, 1, 1)),  # 4 slices of 4 chips
        (dict(ici_data=1, ici_fsdp=-1, dcn_data=2), 16, 1, (1, 8, 1), (2, 1, 1)),  # 2 GPU nodes of 8
    ],
)
def test_mesh_shape_resolves_minus_one(sizes, devices, slices, ici, dcn):
    assert mesh_lib.mesh_shape(mesh_config(**sizes), devices, slices) == (ici, dcn)


@pytest.mark.parametrize(
    "sizes,devices,slices,match",
    [
        (dict(ici_data=2, ici_fsdp=2, ici_tensor=2), 4, 1, "multiply to 8, but there are 4"),
        (dict(ici_data=-1, ici_fsdp=-1), 8, 1, "at most one of the ici_\\* sizes may be -1"),
        (dict(dcn_data=-1, dcn_tensor=-1), 8, 1, "at most one of the dcn_\\* sizes may be -1"),
        (dict(ici_fsdp=3), 8, 1, "not divisible by the product 3"),
        (dict(ici_tensor=0), 8, 1, "positive integers or -1"),
        (dict(dcn_data=2), 16, 4, "multiply to 2, but there are 4"),
    ],
)
def test_mesh_shape_errors(sizes, devices, slices, match):
    with pytest.raises(ValueError, match=match):
        mesh_lib.mesh_shape(mesh_config(**sizes), devices, slices)


def test_make_mesh_product_must_equal_device_count():
    with pytest.raises(ValueError, match=f"multiply to 2, but there are {jax.device_count()}"):
        mesh_lib.make_mesh(mesh_config(ici_data=1, ici_tensor=2), jax.devices()[:1])


@pytest.mark.parametrize(
    "rules,match",
    [
        (((axes.BATCH, ("data", "model")),), "unknown mesh axes \\['model'\\]"),
        ((("activation_batchh", "data"),), "unknown logical axis 'activation_batchh'"),
        (((axes.BATCH,),), "each rule is \\(logical_axis, mesh_axes\\)"),
    ],
)
def test_rule_errors(rules, match):
    with pytest.raises(ValueError, match=match):
        mesh_lib.rules(mesh_config(logical_axis_rules=rules))


def test_validate_checks_the_mesh_section():
    config = config_lib.default_config()
    config.mesh.ici_fsdp = -1
    with pytest.raises(ValueError, match="at most one of the ici_"):
        validation.validate(config)
    config = config_lib.default_config()
    config.mesh.logical_axis_rules = ((axes.HEADS, "heads"),)
    with pytest.raises(ValueError, match="unknown mesh axes"):
        validation.validate(config)


def test_batch_must_split_over_data_and_fsdp():
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1, 1), mesh_lib.MESH_AXES)
    assert mesh_lib.batch_size_per_shard(mesh, 3) == 3
    fake = type("M", (), {"shape": {"data": 2, "fsdp": 2, "tensor": 1}})()
    with pytest.raises(ValueError, match="global_batch=6 is not divisible by the batch shards data x fsdp = 4"):
        mesh_lib.batch_size_per_shard(fake, 6)


def test_fit_spec_drops_axes_that_do_not_divide():
    mesh = type("M", (), {"shape": {"data": 2, "fsdp": 2, "tensor": 4}})()
    assert sharding.fit_spec(P(None, None, "fsdp", "tensor"), (3, 3, 3, 8), mesh) == P(None, None, None, "tensor")
    assert sharding.fit_spec(P(("data", "fsdp")), (6, 5), mesh) == P("data", None)
    assert sharding.fit_spec(P("tensor"), (2,), mesh) == P(None)


def test_distributed_arguments():
    assert distributed.initialize(mode="off") is False
    with pytest.raises(ValueError, match="give all of --coordinator_address"):
        distributed.initialize("localhost:1234", None, 0)
    with pytest.raises(ValueError, match="--process_id=2 must be in \\[0, --num_processes=2\\)"):
        distributed.initialize("localhost:1234", 2, 2)
    with pytest.raises(ValueError, match="contradicts"):
        distributed.initialize("localhost:1234", 2, 0, mode="off")
    assert distributed.detect_cluster({"SLURM_JOB_ID": "1", "SLURM_NTASKS": "4"}) == "slurm"
    assert distributed.detect_cluster({"SLURM_JOB_ID": "1", "SLURM_NTASKS": "1"}) is None
    assert distributed.detect_cluster({"TPU_WORKER_HOSTNAMES": "a,b"}) == "tpu"
