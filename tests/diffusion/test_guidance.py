import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lumiere_jax.diffusion import guidance

B, L, D = 6, 5, 4


def _text(batch=B, key=0):
    k1, k2 = jax.random.split(jax.random.key(key))
    emb = jax.random.normal(k1, (batch, L, D))
    mask = jax.random.bernoulli(k2, 0.6, (batch, L)).at[:, 0].set(True)
    return emb, mask


def _dropped_rows(emb, mask, new_emb, new_mask, null):
    is_null = np.all(np.asarray(new_emb) == np.asarray(null)[None], axis=(1, 2)) & np.all(np.asarray(new_mask), axis=1)
    kept = ~is_null
    np.testing.assert_array_equal(np.asarray(new_emb)[kept], np.asarray(emb)[kept])
    np.testing.assert_array_equal(np.asarray(new_mask)[kept], np.asarray(mask)[kept])
    return is_null


def test_drop_text_fraction_and_rows():
    n, prob = 20000, 0.2
    emb, mask = _text(n)
    new_emb, new_mask = guidance.drop_text(jax.random.key(5), emb, mask, None, prob)
    assert new_emb.shape == emb.shape and new_mask.dtype == mask.dtype
    dropped = _dropped_rows(emb, mask, new_emb, new_mask, jnp.zeros((L, D)))
    assert abs(dropped.mean() - prob) < 5 * np.sqrt(prob * (1 - prob) / n)


def test_drop_text_extremes_and_key_dependence():
    emb, mask = _text()
    same = guidance.drop_text(jax.random.key(0), emb, mask, None, 0.0)
    np.testing.assert_array_equal(np.asarray(same[0]), np.asarray(emb))
    allnull = guidance.drop_text(jax.random.key(0), emb, mask, None, 1.0)
    assert not np.asarray(allnull[0]).any() and np.asarray(allnull[1]).all()
    emb, mask = _text(256)
    a = guidance.drop_text(jax.random.key(1), emb, mask, None, 0.5)[1]
    b = guidance.drop_text(jax.random.key(2), emb, mask, None, 0.5)[1]
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_learned_null_embedding_starts_at_zero_and_receives_gradients():
    module = guidance.NullTextEmbedding(length=L, dim=D)
    params = module.init(jax.random.key(0))
    null = module.apply(params)
    assert null.shape == (L, D) and not np.asarray(null).any()
    emb, mask = _text(64)
    trained = jax.tree.map(lambda p: p + 0.5, nn.unbox(params))
    learned = module.apply(trained)
    new_emb, new_mask = guidance.drop_text(jax.random.key(3), emb, mask, learned, 0.5)
    dropped = _dropped_rows(emb, mask, new_emb, new_mask, learned)
    assert 0 < dropped.sum() < 64

    def total(p):
        return guidance.drop_text(jax.random.key(3), emb, mask, module.apply(p), 0.5)[0].sum()

    grad = jax.grad(total)(trained)["params"]["embedding"]
    np.testing.assert_allclose(np.asarray(grad), np.full((L, D), dropped.sum()))


def test_null_emb_broadcasts():
    emb, mask = _text()
    row = jnp.arange(D, dtype=jnp.float32)
    new_emb, _ = guidance.drop_text(jax.random.key(0), emb, mask, row, 1.0)
    np.testing.assert_array_equal(np.asarray(new_emb), np.broadcast_to(np.arange(D), (B, L, D)))


def test_guide_math():
    k1, k2 = jax.random.split(jax.random.key(0))
    cond, uncond = jax.random.normal(k1, (2, 3, 4, 4, 3)), jax.random.normal(k2, (2, 3, 4, 4, 3))
    got = guidance.guide(cond, uncond, 7.5, channels=3)
    np.testing.assert_allclose(
        np.asarray(got), np.asarray(uncond) + 7.5 * (np.asarray(cond) - np.asarray(uncond)), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(np.asarray(guidance.guide(cond, uncond, 1.0, 3)), np.asarray(cond), atol=1e-6)


def test_guide_learned_variance_guides_first_half_only():
    k1, k2 = jax.random.split(jax.random.key(1))
    cond, uncond = jax.random.normal(k1, (2, 3, 4, 4, 6)), jax.random.normal(k2, (2, 3, 4, 4, 6))
    got = np.asarray(guidance.guide(cond, uncond, 4.0, channels=3))
    c, u = np.asarray(cond), np.asarray(uncond)
    np.testing.assert_allclose(got[..., :3], u[..., :3] + 4.0 * (c[..., :3] - u[..., :3]), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got[..., 3:], c[..., 3:])


def test_cfg_model_fn_single_batched_call():
    calls = []

    def model_fn(x, t, ctx):
        emb, mask = ctx
        calls.append(x.shape[0])
        scale = (emb * mask[..., None]).sum(axis=(1, 2)).reshape(-1, 1, 1, 1, 1)
        out = x * scale + t.reshape(-1, 1, 1, 1, 1)
        return jnp.concatenate([out, -out], axis=-1)  # learned-variance style 2C output

    cond = _text(2, key=1)
    uncond = guidance.null_text(2, L, D)
    x = jax.random.normal(jax.random.key(2), (2, 3, 4, 4, 3))
    t = jnp.array([10, 500], jnp.int32)
    fn = guidance.cfg_model_fn(model_fn, cond, uncond, 3.0)
    got = fn(x, t)
    assert calls == [4]
    expected = guidance.guide(model_fn(x, t, cond), model_fn(x, t, uncond), 3.0, 3)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-6)
    assert got.shape == (2, 3, 4, 4, 6)


def test_cfg_model_fn_high_noise_scale_applies_from_its_timestep():
    """A guidance interval: examples at t >= t_from get the high-noise scale, the others the base one."""

    def model_fn(x, t, ctx):
        emb, mask = ctx
        return x * (emb * mask[..., None]).sum(axis=(1, 2)).reshape(-1, 1, 1, 1, 1) + t.reshape(-1, 1, 1, 1, 1)

    cond, uncond = _text(3, key=1), guidance.null_text(3, L, D)
    x = jax.random.normal(jax.random.key(2), (3, 2, 4, 4, 3))
    t = jnp.array([799, 800, 999], jnp.int32)
    got = guidance.cfg_model_fn(model_fn, cond, uncond, 3.0, (8.0, 800))(x, t)
    c, u = model_fn(x, t, cond), model_fn(x, t, uncond)
    for i, scale in enumerate((3.0, 8.0, 8.0)):
        np.testing.assert_allclose(np.asarray(got[i]), np.asarray(u[i] + scale * (c[i] - u[i])), rtol=1e-6)


def test_guided_model_fn_runs_one_branch_only_without_guidance():
    """Scale 1 and no high-noise scale: the model on the prompt alone (batch B, not 2B); with a
    high-noise scale, or another scale, it is cfg_model_fn."""
    calls = []

    def model_fn(x, t, ctx):
        calls.append(x.shape[0])
        emb, mask = ctx
        return x * (emb * mask[..., None]).sum(axis=(1, 2)).reshape(-1, 1, 1, 1, 1) + t.reshape(-1, 1, 1, 1, 1)

    cond, uncond = _text(2, key=1), guidance.null_text(2, L, D)
    x = jax.random.normal(jax.random.key(3), (2, 2, 4, 4, 3))
    t = jnp.array([700, 900], jnp.int32)
    got = guidance.guided_model_fn(model_fn, cond, uncond, (1.0, None))(x, t)
    assert calls == [2]
    np.testing.assert_array_equal(np.asarray(got), np.asarray(model_fn(x, t, cond)))
    for scales in ((1.0, (8.0, 800)), (3.0, None)):
        got = guidance.guided_model_fn(model_fn, cond, uncond, scales)(x, t)
        want = guidance.cfg_model_fn(model_fn, cond, uncond, scales[0], scales[1])(x, t)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
