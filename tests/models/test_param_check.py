"""models.param_check: flax's parameter shape check without tracing each initializer."""

import threading

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.models.param_check import declared_shapes
from lumiere_jax.train import validation
from tests.helpers import load_config, perturbed_params


@pytest.fixture(autouse=True)
def _flax_s_own_check():
    """Outside `DiffusionModel`'s applies, flax's check (tests/models/conftest.py declares shapes)."""
    with declared_shapes(False):
        yield


@pytest.fixture
def eval_shapes(monkeypatch):
    """Counts `jax.eval_shape` calls (flax's check traces each initializer with it)."""
    calls = []
    real = jax.eval_shape

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(jax, "eval_shape", counting)
    return calls


def test_the_model_traces_no_initializer_and_computes_what_flax_s_apply_does(eval_shapes):
    model = DiffusionModel(validation.validate(load_config("tiny", "video", "")))
    params = perturbed_params(model)
    x = jnp.ones(model.config.sample_shape(1))
    t = jnp.array([10])
    ids = jnp.array([[5, 6, 7] + [0] * (model.config.text_length - 3)])
    n_params = len(jax.tree_util.tree_leaves(params["denoiser"]))

    def ours(p):
        return model.denoise(p, x, t, model.encode_text(p, ids, ids > 0), ids > 0)

    def flax_s(p):
        text = model.text_module.apply({"params": p["text_encoder"]}, ids, ids > 0)
        return model.denoiser.apply({"params": p["denoiser"]}, x, t, text, ids > 0)

    eval_shapes.clear()
    got = jax.make_jaxpr(ours)(params)
    assert len(eval_shapes) == 0
    want = jax.make_jaxpr(flax_s)(params)
    assert len(eval_shapes) >= n_params  # flax's own path: one trace per parameter
    assert str(got) == str(want)


def test_a_wrong_shape_still_raises_flax_s_error():
    model = DiffusionModel(validation.validate(load_config("tiny", "video", "")))
    params = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), model.abstract_params())
    conv_in = params["denoiser"]["spatial"]["conv_in"]
    conv_in["kernel"] = jnp.zeros(conv_in["kernel"].shape[:-1] + (conv_in["kernel"].shape[-1] + 1,))
    x = jnp.ones(model.config.sample_shape(1))
    with pytest.raises(flax.errors.ScopeParamShapeError, match="conv_in"):
        jax.eval_shape(lambda p: model.denoise(p, x, jnp.array([1]), *model.null_text(p, 1)), params)


class _Unconventional(nn.Module):
    """Initializers outside the init(key, shape, dtype) convention."""

    @nn.compact
    def __call__(self, x):
        a = self.param("a", lambda key, n: jnp.full((n, 2), 1.0), 3)  # no shape tuple
        b = self.param("b", lambda key, shape: jnp.full(shape + (2,), 2.0), (3,))  # another shape
        return x @ a.T + b.sum()


def test_initializers_outside_the_convention_take_flax_s_path():
    m = _Unconventional()
    x = jnp.ones((1, 2))
    variables = m.init(jax.random.PRNGKey(0), x)
    assert variables["params"]["b"].shape == (3, 2)
    with declared_shapes():
        got = m.apply(variables, x)
    np.testing.assert_array_equal(got, m.apply(variables, x))
    variables["params"]["a"] = jnp.ones((4, 2))
    with declared_shapes(), pytest.raises(flax.errors.ScopeParamShapeError):
        m.apply(variables, x)


def test_the_context_is_this_thread_s_and_ends_with_it(eval_shapes):
    m = nn.Dense(3)
    variables = m.init(jax.random.PRNGKey(0), jnp.ones((1, 2)))
    eval_shapes.clear()
    other = []
    with declared_shapes():
        m.apply(variables, jnp.ones((1, 2)))
        assert len(eval_shapes) == 0
        thread = threading.Thread(target=lambda: other.append(m.apply(variables, jnp.ones((1, 2)))))
        thread.start()
        thread.join()
        assert len(eval_shapes) == 2  # the other thread: flax's check for kernel and bias
    m.apply(variables, jnp.ones((1, 2)))
    assert len(eval_shapes) == 4
