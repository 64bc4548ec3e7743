"""Rematerialisation policies: same parameters, same loss and gradients, clear errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax import config as config_lib
from lumiere_jax.train import validation
from lumiere_jax.models import STUNet, UNetConfig
from tests.models.conftest import loss_and_grad
from tests.models.test_precision import equations


def with_remat(cfg, policy):
    return dataclasses.replace(cfg, unet=dataclasses.replace(cfg.unet, remat=policy))


def test_remat_keeps_parameter_tree_loss_and_gradients(micro):
    def value_and_grad(policy):
        return loss_and_grad(with_remat(micro.cfg, policy))(micro.params, *micro.inputs)

    # Same parameter paths, shapes and dtypes under every policy: checkpoints load either way.
    abstract = lambda cfg: jax.eval_shape(lambda: STUNet(cfg).init(jax.random.PRNGKey(0), *micro.inputs))
    shapes = lambda tree: jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), tree)
    reference_tree = shapes(abstract(micro.cfg))
    for policy in ("full", "dots_and_convs_saveable"):  # every policy goes through the same wrapper
        assert shapes(abstract(with_remat(micro.cfg, policy))) == reference_tree, policy
    # Every block is rematerialised: 8 ResNet blocks, 4 spatial attention blocks, 3 temporal conv
    # blocks and 5 temporal attention blocks, each one `remat2` (checkpoint) equation in the forward program.
    cfg = with_remat(micro.cfg, "full")
    jaxpr = jax.make_jaxpr(lambda p: STUNet(cfg).apply({"params": p}, *micro.inputs))(micro.params)
    assert [e.primitive.name for e in equations(jaxpr.jaxpr)].count("remat2") == 8 + 4 + 3 + 5
    # Loss and gradients agree to float rounding.
    loss0, grads0 = value_and_grad("none")
    loss1, grads1 = value_and_grad("full")
    np.testing.assert_allclose(loss1, loss0, rtol=1e-6)
    flat0 = jax.tree_util.tree_leaves_with_path(grads0)
    for (path, g0), g1 in zip(flat0, jax.tree_util.tree_leaves(grads1)):
        np.testing.assert_allclose(g1, g0, rtol=1e-5, atol=1e-7, err_msg=jax.tree_util.keystr(path))
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree_util.tree_leaves(grads0["temporal"]))


def test_unknown_remat_policy_fails_clearly():
    with pytest.raises(ValueError, match="unknown remat policy 'dots'.*config.model.remat"):
        UNetConfig(remat="dots")
    config = config_lib.default_config()
    config.model.remat = "bogus"
    with pytest.raises(ValueError, match="unknown remat policy 'bogus'"):
        validation.validate(config)
    config.model.remat = "dots_saveable"
    model = validation.validate(config)
    assert model.stunet.unet.remat == "dots_saveable"
    # The policy is not part of the architecture: a checkpoint trained without remat resumes with it.
    config.model.remat = "none"
    assert validation.validate(config) == model
