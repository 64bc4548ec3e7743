"""Optimiser: per-parameter learning-rate multipliers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lumiere_jax.train import optim

OPTIM = dict(lr=1e-2, warmup_steps=0, end_lr_factor=1.0, b1=0.9, b2=0.99, eps=1e-8, weight_decay=0.0, grad_clip=1e9)


def _params():
    return {
        "denoiser": {
            "spatial": {"conv_in": {"kernel": jnp.ones((3,))}, "out": {"kernel": jnp.ones((3,))}},
            "temporal": {"a": jnp.ones((2,))},
        }
    }


def test_multipliers_scale_the_update_of_matching_leaves():
    params = _params()
    labels = jax.tree_util.tree_map(lambda _: "train", params)
    labels["denoiser"]["spatial"]["out"]["kernel"] = "frozen"
    mults = optim.multiplier_tree(params, ("denoiser/spatial/conv_in/=10", "denoiser/temporal/=0"))
    tx, _ = optim.make_optimizer(OPTIM, 10, labels, mults)
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 0.3), params)
    updates, _ = tx.update(grads, tx.init(params), params)
    base_tx, _ = optim.make_optimizer(OPTIM, 10, labels)
    base, _ = base_tx.update(grads, base_tx.init(params), params)
    np.testing.assert_allclose(
        updates["denoiser"]["spatial"]["conv_in"]["kernel"],
        10 * base["denoiser"]["spatial"]["conv_in"]["kernel"],
        rtol=1e-6,
    )
    assert np.abs(base["denoiser"]["spatial"]["conv_in"]["kernel"]).min() > 0
    np.testing.assert_array_equal(updates["denoiser"]["temporal"]["a"], 0.0)
    np.testing.assert_array_equal(updates["denoiser"]["spatial"]["out"]["kernel"], 0.0)  # frozen stays frozen


@pytest.mark.parametrize(
    "specs, match",
    [(("conv_in",), "regex=multiplier"), (("x=-1",), "multiplier >= 0"), (("nothing/=2",), "match no parameter")],
)
def test_bad_multipliers_raise(specs, match):
    with pytest.raises(ValueError, match=match):
        optim.multiplier_tree(_params(), specs)


def test_no_multipliers_is_plain_adamw():
    assert optim.multiplier_tree(_params(), ()) is None
    assert isinstance(
        optim.make_optimizer(OPTIM, 10, jax.tree_util.tree_map(lambda _: "train", _params()))[0],
        optax.GradientTransformation,
    )
