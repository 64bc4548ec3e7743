"""The one denoising loop (lumiere_jax/sampling/loop.py): what `run` does between steps and the
errors of its entry points. The samplers' numerics through it: tests/diffusion."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.diffusion import samplers, schedules
from lumiere_jax.sampling import loop

SCHED = schedules.get_schedule("squaredcos_cap_v2")
X_T = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4, 4, 3))


def _model(args, x, t):
    return 0.1 * x


def test_after_step_runs_between_steps_with_the_next_index():
    sampler = samplers.get_sampler("ddim", SCHED, 4)
    seen = []

    def after(x, i):
        seen.append(int(i))
        return jnp.zeros_like(x)  # replace everything: the next step starts from zeros

    x, traj = loop.run(loop.make_step(_model), sampler, X_T, after_step=after, record=True)
    assert seen == [1, 2, 3]  # after steps 0, 1, 2; never after the last
    assert len(traj) == 5
    # the recorded states are what the next step starts from, i.e. after the replacement
    np.testing.assert_array_equal(np.asarray(traj[1]), 0.0)
    # the last step's output is the model's own: one DDIM step from zeros stays zero
    np.testing.assert_array_equal(np.asarray(x), 0.0)
    plain, _ = loop.run(loop.make_step(_model), sampler, X_T)
    assert np.abs(np.asarray(plain)).max() > 0.1


def test_keys_must_match_the_batch():
    with pytest.raises(ValueError, match="3 keys for a batch of 2"):
        loop.sample(
            lambda x, t: x, X_T, SCHED, sampler="ddpm", num_steps=2, keys=jax.random.split(jax.random.PRNGKey(0), 3)
        )


def test_noise_drawing_sampler_without_keys_raises():
    with pytest.raises(ValueError, match="draws noise: pass a PRNG key"):
        loop.sample(lambda x, t: x, X_T, SCHED, sampler="ddim", num_steps=2, eta=1.0)
