"""The conditioning registry: channels, unconditional inputs and training inputs per kind."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.diffusion import conditioning, schedules
from lumiere_jax.models import diffusion_model

SCHED = schedules.get_schedule("squaredcos_cap_v2")
X0 = jax.random.uniform(jax.random.PRNGKey(0), (2, 3, 8, 8, 3), minval=-1, maxval=1)


def test_registry_declares_the_models_extra_channels():
    assert {n: c.channels for n, c in conditioning.CONDITIONINGS.items()} == {"none": 0, "low_res": 3, "masked": 4}
    assert diffusion_model.CONDITIONINGS == {"none": 0, "low_res": 3, "masked": 4}
    with pytest.raises(ValueError, match=r"conditioning must be one of \['low_res', 'masked', 'none'\], got 'mask'"):
        conditioning.get("mask")


def test_unconditional_inputs():
    assert conditioning.get("none").unconditional((2, 3, 8, 8, 3)) is None
    zeros = conditioning.get("masked").unconditional((2, 3, 8, 8, 3))
    assert zeros.shape == (2, 3, 8, 8, 4) and not np.asarray(zeros).any()  # nothing known
    with pytest.raises(ValueError, match="low-resolution input"):
        conditioning.get("low_res").unconditional((2, 3, 8, 8, 3))


def test_training_inputs_of_none_and_masked():
    x0, extra, w = conditioning.get("none").training_inputs(None, SCHED, X0, jax.random.PRNGKey(1))
    assert x0 is X0 and extra == {} and w is None
    with pytest.raises(ValueError, match="known_loss_weight is for the conditional"):
        conditioning.get("none").training_inputs(None, SCHED, X0, jax.random.PRNGKey(1), known_loss_weight=1.0)
    x0, extra, w = conditioning.get("masked").training_inputs(
        None, SCHED, X0, jax.random.PRNGKey(1), mixture={"i2v": 1.0}, known_loss_weight=2.0
    )
    cond = np.asarray(extra["cond"])
    assert cond.shape == (2, 3, 8, 8, 4)
    assert (cond[:, 0, ..., 3] == 1).all() and (cond[:, 1:, ..., 3] == 0).all()  # i2v: frame 0 known
    np.testing.assert_array_equal(cond[..., :3], np.asarray(X0) * cond[..., 3:])
    np.testing.assert_array_equal(np.asarray(w), 1.0 + 2.0 * cond[..., 3:])
    np.testing.assert_array_equal(np.asarray(conditioning.Masked.sampling_inputs(X0, jnp.asarray(cond[..., 3:]))), cond)
