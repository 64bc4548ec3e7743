"""STUNet inflation: App. B initialisation property, placement of temporal modules,
freezing, verbatim inflation, and input validation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lumiere_jax.models import STUNet, STUNetConfig, UNetConfig, inflate_params, param_labels
from lumiere_jax.models import temporal as tmp
from lumiere_jax.models.stunet import dummy_inputs, hook_plan
from tests.models.conftest import FRAMES, SIZE, loss_and_grad, random_inputs


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_every_nth_frame_equals_t2i_at_init(models, seed):
    """App. B: with fresh temporal params, frames 0, N, 2N... equal the T2I U-Net on
    those frames alone; other frames do not (they mix neighbouring frames)."""
    x, t, text, mask = random_inputs(seed, models.cfg)
    out = np.asarray(models.apply(models.params, x, t, text, mask))
    n = models.cfg.temporal_factor
    for f in range(FRAMES):
        ref = np.asarray(models.t2i_apply(models.t2i_params, x[:, f], t, text, mask))
        err = np.max(np.abs(out[:, f] - ref)) / np.max(np.abs(ref))
        if f % n == 0:
            assert err < 1e-5, f"frame {f}: relative error {err:.2e} vs T2I"
        else:
            assert err > 1e-3, f"frame {f} unexpectedly equals the T2I output (err {err:.2e})"


def test_inflation_blocks_are_identity_at_init():
    # jitted (one program per block and call signature): eagerly, every primitive compiles on its own
    jitted = {}
    jit = lambda method: jitted.setdefault((id(method.__self__), method.__func__), jax.jit(method))  # noqa: E731
    h = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 4, 4, 16))
    for block in (
        tmp.ConvInflationBlock(norm_groups=4),
        tmp.TemporalAttentionStack(depth=2, head_dim=8),
        tmp.TemporalAttentionStack(head_dim=8, position_encoding="learned", max_frames=8),
    ):
        params = jit(block.init)(jax.random.PRNGKey(1), h)
        np.testing.assert_array_equal(jit(block.apply)(params, h), h)
        # ...and only because of the zero-initialised output projections:
        bumped = jax.tree_util.tree_map_with_path(
            lambda p, a: a + 0.1 if "proj_out" in jax.tree_util.keystr(p) else a, nn.meta.unbox(params)
        )
        assert np.max(np.abs(jit(block.apply)(bumped, h) - h)) > 1e-3
    # With text cross-attention: still the identity, for any text; bumping its output projection
    # makes the block depend on the text (the pathway that carries motion words).
    block = tmp.TemporalAttentionStack(head_dim=8, text_cross_attention=True)
    text = jax.random.normal(jax.random.PRNGKey(4), (2, 5, 12))
    mask = jnp.arange(5)[None] < jnp.array([[2], [5]])
    params = nn.meta.unbox(jit(block.init)(jax.random.PRNGKey(1), h, text, mask))
    np.testing.assert_array_equal(jit(block.apply)(params, h, text, mask), h)
    bumped = jax.tree_util.tree_map_with_path(
        lambda p, a: a + 0.1 if "text_proj_out" in jax.tree_util.keystr(p) else a, params
    )
    other = text.at[:, :2].multiply(-1.0)
    diff = jit(block.apply)(bumped, h, text, mask) - jit(block.apply)(bumped, h, other, mask)
    assert np.max(np.abs(diff)) > 1e-3
    # masked-out tokens are not attended
    np.testing.assert_allclose(
        jit(block.apply)(bumped, h, text, mask)[0],
        jit(block.apply)(bumped, h, text.at[0, 2:].set(9.0), mask)[0],
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="needs the text"):
        jit(block.apply)(params, h)
    # Text FiLM in the conv inflation block: the identity at init for any text; once its output layer
    # is trained the block depends on the (pooled, unmasked) prompt.
    block = tmp.ConvInflationBlock(norm_groups=4, text_film=True)
    params = nn.meta.unbox(jit(block.init)(jax.random.PRNGKey(1), h, text, mask))
    bumped = jax.tree_util.tree_map_with_path(
        lambda p, a: a + 0.1 if "proj_out" in jax.tree_util.keystr(p) else a, params
    )
    np.testing.assert_allclose(
        jit(block.apply)(bumped, h, text, mask), jit(block.apply)(bumped, h, other, mask), atol=0
    )
    np.testing.assert_array_equal(jit(block.apply)(params, h, text, mask), h)
    bumped = jax.tree_util.tree_map_with_path(
        lambda p, a: a + 0.1 if "proj_out" in (k := jax.tree_util.keystr(p)) or "text_film']['out" in k else a, params
    )
    assert np.max(np.abs(jit(block.apply)(bumped, h, text, mask) - jit(block.apply)(bumped, h, other, mask))) > 1e-3
    np.testing.assert_allclose(
        jit(block.apply)(bumped, h, text, mask)[0],
        jit(block.apply)(bumped, h, text.at[0, 2:].set(9.0), mask)[0],
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="needs the text"):
        jit(block.apply)(params, h)
    # ...and, given the timestep's embedding, on the noise level too (identity at init again).
    time = lambda t: tmp.layers.sinusoidal_embedding(jnp.full((2,), t), 64)
    params = nn.meta.unbox(jit(block.init)(jax.random.PRNGKey(1), h, text, mask, time(10)))
    np.testing.assert_array_equal(jit(block.apply)(params, h, text, mask, time(900)), h)
    bumped = jax.tree_util.tree_map_with_path(
        lambda p, a: a + 0.1 if "proj_out" in (k := jax.tree_util.keystr(p)) or "text_film']['out" in k else a, params
    )
    assert (
        np.max(
            np.abs(
                jit(block.apply)(bumped, h, text, mask, time(10)) - jit(block.apply)(bumped, h, text, mask, time(900))
            )
        )
        > 1e-3
    )
    down, up = tmp.TemporalDownsample(), tmp.TemporalUpsample()
    np.testing.assert_array_equal(jit(down.apply)(jit(down.init)(jax.random.PRNGKey(2), h), h), h[:, ::2])
    np.testing.assert_array_equal(jit(up.apply)(jit(up.init)(jax.random.PRNGKey(3), h), h), jnp.repeat(h, 2, axis=1))


def test_temporal_attention_only_at_coarsest_level(models):
    cfg = models.cfg
    x, t, text, mask = random_inputs(0, cfg)
    _, state = jax.eval_shape(  # the blocks' input shapes only: nothing to compile
        lambda p, *a: STUNet(cfg).apply(
            {"params": p},
            *a,
            capture_intermediates=lambda m, _: isinstance(m, (tmp.TemporalAttentionBlock, tmp.ConvInflationBlock)),
        ),
        models.params,
        x,
        t,
        text,
        mask,
    )
    blocks = state["intermediates"]["temporal"]
    last = cfg.unet.num_levels - 1
    n_attn = n_conv = 0
    for name, sub in blocks.items():
        hook = name.removeprefix("blocks_")
        if "layer_0" in sub:  # an attention stack
            for layer in sub.values():
                frames = layer["__call__"][0].shape[1]
                assert frames == FRAMES // cfg.temporal_factor, (hook, frames)
                n_attn += 1
            assert hook.startswith(("mid_", f"down_{last}_", f"up_{last}_")), hook
        elif "__call__" in sub:  # a conv inflation block
            level = int(hook.split("_")[1])
            assert level < last, hook
            expected = FRAMES // 2 ** min(level, cfg.temporal_downsamples)
            assert sub["__call__"][0].shape[1] == expected, (hook, sub["__call__"][0].shape)
            n_conv += 1
    u = cfg.unet
    assert n_attn == cfg.temporal_attention_depth * (2 * u.num_res_blocks + 1 + 2)
    assert n_conv == (u.num_levels - 1) * (2 * u.num_res_blocks + 1)


def test_training_only_temporal_leaves_spatial_bit_identical(micro):
    """On the micro STUNet (every kind of block; its gradient is compiled once for the tests) with
    random parameters, so every temporal leaf receives gradient."""
    params = micro.params
    tx = optax.multi_transform({"spatial": optax.set_to_zero(), "temporal": optax.adam(1e-2)}, param_labels(params))
    _, grads = loss_and_grad(micro.cfg)(params, *micro.inputs)
    new = jax.jit(lambda g, p: optax.apply_updates(p, tx.update(g, tx.init(p), p)[0]))(grads, params)
    # The spatial gradient is non-zero: freezing is the optimiser's doing.
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree_util.tree_leaves(grads["spatial"])) > 0
    for a, b in zip(jax.tree_util.tree_leaves(params["spatial"]), jax.tree_util.tree_leaves(new["spatial"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Temporal leaves move exactly where they receive gradient.
    moved = {}
    for (path, a), b, g in zip(
        jax.tree_util.tree_leaves_with_path(params["temporal"]),
        jax.tree_util.tree_leaves(new["temporal"]),
        jax.tree_util.tree_leaves(grads["temporal"]),
    ):
        name = jax.tree_util.keystr(path)
        moved[name] = not np.array_equal(a, b)
        assert moved[name] == bool(np.any(g != 0)), name
    for name, did in moved.items():
        if "proj_out']['kernel" in name or "mlp_out']['kernel" in name or "tdown" in name or "tup" in name:
            assert did, f"{name} did not train"


def test_inflate_copies_spatial_subtree_verbatim(imagen_models):
    m = imagen_models
    assert set(m.params) == {"spatial", "temporal"}
    for a, b in zip(jax.tree_util.tree_leaves(m.t2i_params), jax.tree_util.tree_leaves(m.params["spatial"])):
        assert a is b
    other = STUNetConfig(
        unet=UNetConfig(
            base_channels=8, channel_mult=(1, 2, 2), num_res_blocks=1, norm_groups=4, head_dim=8, text_dim=12
        ),
        temporal_head_dim=8,
    )
    with pytest.raises(ValueError, match="do not match"):
        inflate_params(other, m.t2i_params, jax.random.PRNGKey(0), num_frames=FRAMES, size=SIZE)


def test_hook_plan_covers_every_block():
    cfg = STUNetConfig(unet=UNetConfig(channel_mult=(1, 2, 3, 4), num_res_blocks=2), num_temporal_downsamples=2)
    plan = hook_plan(cfg)
    assert [k for k, v in plan.items() if v == "down"] == ["tdown_0", "tdown_1"]
    assert [k for k, v in plan.items() if v == "up"] == ["tup_0", "tup_1"]
    assert sum(v == "conv" for v in plan.values()) == 3 * (2 + 3)
    assert sum(v == "attention" for v in plan.values()) == (2 + 3) + 2
    assert cfg.temporal_factor == 4


def _shape_check(cfg, frames, size):
    x, t, text, mask = dummy_inputs(cfg, 8, 16)
    x = jnp.zeros((1, frames, size, size, 3))
    jax.eval_shape(STUNet(cfg).init, jax.random.PRNGKey(0), x, t, text, mask)


def test_bad_frame_count_raises(imagen_models):
    cfg = imagen_models.cfg  # N = 4
    with pytest.raises(ValueError, match=r"num_frames=6 .*divisible by .*=4.*multiple of 4, e.g. 4 or 8"):
        _shape_check(cfg, 6, SIZE)
    with pytest.raises(ValueError, match=r"num_frames=2 .*e.g. 4"):
        _shape_check(cfg, 2, SIZE)


def test_bad_image_size_raises(imagen_models):
    with pytest.raises(ValueError, match=r"height=18 is not divisible by .*=4.*multiple of 4, e.g. 16 or 20"):
        _shape_check(imagen_models.cfg, FRAMES, 18)


def test_text_query_positions_let_frames_read_the_prompt_differently():
    """A video whose frames are all alike, trained text pathway only (self-attention and MLP outputs
    zero): with content-only queries every frame gets the same text signal, so no prompt can say which
    frame holds what (a direction word is lost); frame-aware queries give each frame its own. Both are
    the identity at init (App. B)."""
    frame = jax.random.normal(jax.random.PRNGKey(0), (2, 1, 4, 4, 16))
    h = jnp.repeat(frame, 8, axis=1)
    text = jax.random.normal(jax.random.PRNGKey(4), (2, 5, 12))
    mask = jnp.ones((2, 5), bool)
    spread = {}
    for positions in ("none", "frame", "space_time"):
        block = tmp.TemporalAttentionStack(head_dim=8, text_cross_attention=True, text_query_positions=positions)
        params = nn.meta.unbox(jax.jit(block.init)(jax.random.PRNGKey(1), h, text, mask))
        apply = jax.jit(block.apply)  # one program per block (eagerly: one per primitive and shape)
        np.testing.assert_array_equal(apply(params, h, text, mask), h)
        bumped = jax.tree_util.tree_map_with_path(
            lambda p, a: a + 0.1 if "text_proj_out" in jax.tree_util.keystr(p) else a, params
        )
        out = np.asarray(apply(bumped, h, text, mask))
        spread[positions] = float(np.max(np.abs(out - out[:, :1])))
    assert spread["none"] < 1e-5, spread
    assert spread["frame"] > 1e-2 and spread["space_time"] > 1e-2, spread
    # "space_time": places of one frame read the prompt differently too (all pixels alike here)
    flat = jnp.broadcast_to(jnp.ones((2, 1, 1, 1, 16)), h.shape)
    block = tmp.TemporalAttentionStack(head_dim=8, text_cross_attention=True, text_query_positions="space_time")
    params = nn.meta.unbox(jax.jit(block.init)(jax.random.PRNGKey(1), flat, text, mask))
    bumped = jax.tree_util.tree_map_with_path(
        lambda p, a: a + 0.1 if "text_proj_out" in jax.tree_util.keystr(p) else a, params
    )
    out = np.asarray(jax.jit(block.apply)(bumped, flat, text, mask))
    assert np.max(np.abs(out - out[:, :, :1, :1])) > 1e-2


def test_bad_config_raises_temporal_text():
    with pytest.raises(ValueError, match="temporal_text must be one of"):
        STUNetConfig(unet=UNetConfig(text_dim=8), temporal_text="film")
    with pytest.raises(ValueError, match="temporal_text_query_positions='frame' needs temporal_text"):
        STUNetConfig(unet=UNetConfig(text_dim=8), temporal_text_query_positions="frame")
    with pytest.raises(ValueError, match="temporal_text_query_positions must be one of"):
        STUNetConfig(unet=UNetConfig(text_dim=8), temporal_text="cross_attention", temporal_text_query_positions=True)
    with pytest.raises(ValueError, match="temporal_time_film=True needs temporal_text_film=True"):
        STUNetConfig(unet=UNetConfig(text_dim=8), temporal_time_film=True)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="num_temporal_downsamples=3 must be in \\[0, 2\\]"):
        STUNetConfig(unet=UNetConfig(channel_mult=(1, 2, 2)), num_temporal_downsamples=3)
    with pytest.raises(ValueError, match="unknown STUNetConfig keys \\['temporal_heads'\\]"):
        STUNetConfig.from_dict({"temporal_heads": 4})
    with pytest.raises(ValueError, match="unknown UNetConfig keys \\['channels_mult'\\]"):
        STUNetConfig.from_dict({"unet": {"channels_mult": [1, 2]}})
    with pytest.raises(ValueError, match="temporal_position_encoding"):
        STUNetConfig(temporal_position_encoding="alibi")
