"""The conditional (7-channel) stage: conversion from a video checkpoint, training, trainable sets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.diffusion import conditioning
from lumiere_jax.models import build
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.models.stunet import SPATIAL, TEMPORAL
from lumiere_jax.train import checkpoint, trainer, validation
from tests.helpers import load_config, perturbed_params


def _inputs(model_cfg, seed=0):
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    x = jax.random.normal(k[0], model_cfg.sample_shape(2))
    t = jnp.array([10, 700])
    text = jax.random.normal(k[1], (2, model_cfg.text_length, model_cfg.stunet.unet.text_dim))
    mask = jnp.ones((2, model_cfg.text_length), bool)
    cond = jnp.concatenate(
        [jax.random.normal(k[2], x.shape), (jax.random.uniform(k[3], x.shape[:-1] + (1,)) > 0.5).astype(jnp.float32)],
        -1,
    )
    return x, t, text, mask, cond


def test_converted_checkpoint_computes_the_video_model_at_step_zero(video_run, data_dir):
    """initial_params of the conditional stage from a video checkpoint: whatever <C, M> is, the
    7-channel model's output equals the video model's (zero weights on the new channels)."""
    video_params, video_stored = checkpoint.load(video_run[0])
    video = DiffusionModel(build.model_config(video_stored))
    config = load_config("tiny", "conditional", data_dir, **{"train.init_from": video_run[0]})
    cond_model = DiffusionModel(validation.validate(config))
    params = trainer.initial_params(config, cond_model)
    x, t, text, mask, cond = _inputs(cond_model.config)
    # jitted: run eagerly, each primitive would compile on its own (280 compiles, 11 s)
    want = jax.jit(video.denoise)(video_params, x, t, text, mask)
    got = jax.jit(lambda p, x, t, text, mask, cond: cond_model.denoise(p, x, t, text, mask, cond=cond))(
        params, x, t, text, mask, cond
    )
    # Equal up to float32 rounding: the 7-channel input convolution sums its zero-weighted channels
    # in an order XLA:CPU picks by host (bit-equal on earlier hosts, 9e-7 apart on an AVX2-only one);
    # a conditioning channel that leaked in would differ by far more.
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    assert params["denoiser"][SPATIAL]["conv_in"]["kernel"].shape[-2] == 7


def test_conversion_rejects_another_architecture(video_run, data_dir):
    config = load_config("tiny", "conditional", data_dir, **{"train.init_from": video_run[0]})
    config.model.unet.base_channels = 16
    with pytest.raises(ValueError, match="more than the input channels"):
        trainer.initial_params(config, DiffusionModel(validation.validate(config)))


def test_conditional_training_default_trains_temporal_and_input_conv(conditional_run, video_run):
    workdir, config, state = conditional_run
    assert int(state.step) == 2
    before, _ = checkpoint.load(video_run[0])
    after = state.params["denoiser"]
    assert not np.array_equal(after[SPATIAL]["conv_in"]["kernel"][..., 3:, :], 0)  # the new channels learn
    flat_before = jax.tree_util.tree_leaves_with_path(before["denoiser"][SPATIAL])
    spatial_after = after[SPATIAL]
    for path, leaf in flat_before:
        keys = [p.key for p in path]
        if keys[0] == "conv_in":
            continue
        got = spatial_after
        for k in keys:
            got = got[k]
        np.testing.assert_array_equal(np.asarray(got), np.asarray(leaf), err_msg="/".join(keys))
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(
            jax.tree_util.tree_leaves(after[TEMPORAL]), jax.tree_util.tree_leaves(before["denoiser"][TEMPORAL])
        )
    )


def test_trainable_patterns(data_dir):
    config = load_config("tiny", "conditional", data_dir)
    model = DiffusionModel(validation.validate(config))
    abstract = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    labels = model.trainable_labels(abstract, False, ("denoiser/spatial/conv_in/", "null_text"))
    flat = {"/".join(str(p.key) for p in path): v for path, v in jax.tree_util.tree_leaves_with_path(labels)}
    trained = sorted(k for k, v in flat.items() if v == "train")
    assert trained == ["denoiser/spatial/conv_in/bias", "denoiser/spatial/conv_in/kernel", "null_text"]
    with pytest.raises(ValueError, match=r"\['denoiser/nope'\] match no parameter"):
        model.trainable_labels(abstract, False, ("denoiser/nope",))


@pytest.mark.parametrize("arg, conv_in_trains", [("conditional", True), ("ssr", False), ("video", False)])
def test_default_labels_train_conv_in_only_for_the_masked_model(data_dir, arg, conv_in_trains):
    """Stage defaults: the temporal subtree trains; the input convolution too only where new,
    zero-initialised conditioning channels enter it (masked). The SSR's was trained at its image stage."""
    model = DiffusionModel(validation.validate(load_config("tiny", arg, data_dir)))
    labels = model.trainable_labels(jax.eval_shape(model.init, jax.random.PRNGKey(0)), False)
    flat = {"/".join(str(p.key) for p in path): v for path, v in jax.tree_util.tree_leaves_with_path(labels)}
    spatial_trained = sorted(k for k, v in flat.items() if v == "train" and k.startswith(f"denoiser/{SPATIAL}/"))
    assert spatial_trained == (
        ["denoiser/spatial/conv_in/bias", "denoiser/spatial/conv_in/kernel"] if conv_in_trains else []
    )
    assert all(v == "train" for k, v in flat.items() if k.startswith(f"denoiser/{TEMPORAL}/"))


def test_masked_conditioning_is_known_times_mask():
    x = jnp.linspace(-1, 1, 2 * 3 * 4 * 4 * 3).reshape(2, 3, 4, 4, 3)
    cond = conditioning.masked_inputs(x, jax.random.PRNGKey(3), {"i2v": 1.0})
    np.testing.assert_array_equal(
        np.asarray(cond[..., 3]), np.broadcast_to(np.arange(3)[None, :, None, None] == 0, (2, 3, 4, 4))
    )
    np.testing.assert_allclose(np.asarray(cond[..., :3]), np.asarray(x * cond[..., 3:]))


def test_conditional_config_validation(data_dir):
    config = load_config("tiny", "conditional", data_dir)
    config.conditional.mixture.i2v = -1.0
    with pytest.raises(ValueError, match="mixture weights"):
        validation.validate(config)
    config = load_config("tiny", "conditional", data_dir)
    config.model.unet.in_channels = 3
    with pytest.raises(ValueError, match="in_channels=3 must be 3 \\+ 4"):
        validation.validate(config)
    config = load_config("tiny", "conditional", data_dir)
    config.conditional.mask_threshold = 0.0
    with pytest.raises(ValueError, match="mask_threshold"):
        validation.validate(config)
    with pytest.raises(AttributeError):
        config.conditional.mixture.boxes = 0.5  # locked: unknown mask kinds fail


def test_known_loss_weight_weights_the_known_pixels(data_dir):
    """loss(w) per example = (S_all + w S_known) / (N + w N_known): with i2v masks (first frame known,
    the same count in every example) loss(0) and loss(1) determine loss(3)."""
    from lumiere_jax.diffusion import schedules
    from lumiere_jax.train import step

    config = load_config("tiny", "conditional", data_dir)
    # a one-level U-Net: the weighting is the loss's, whatever the network (a cheaper program)
    config.model.unet.channel_mult, config.model.unet.attention_resolutions = (1,), (1,)
    config.model.temporal.num_temporal_downsamples = 0
    model = DiffusionModel(validation.validate(config))
    # A non-trivial model: the zero-initialised projections would make the output independent of x.
    params = perturbed_params(model)
    shape = model.config.sample_shape(2)
    ids = jnp.ones((2, model.config.text_length), jnp.int32)
    batch = {
        "video": jax.random.uniform(jax.random.PRNGKey(2), shape, minval=-1, maxval=1),
        "text_ids": ids,
        "text_mask": ids > 0,
    }
    sched = schedules.get_schedule(config.diffusion.schedule)

    def loss(w):
        return step.loss_fn(
            model, sched, config.diffusion.to_dict(), params, batch, jax.random.PRNGKey(3), None, {"i2v": 1.0}, w
        )

    n = np.prod(shape[1:])
    nk = n // shape[1]  # one frame of T known
    l0, l1, l3 = (float(v) for v in jax.jit(lambda: [loss(w) for w in (0.0, 1.0, 3.0)])())  # one compile
    s_all = l0 * n
    s_known = l1 * (n + nk) - s_all
    np.testing.assert_allclose(l3, (s_all + 3 * s_known) / (n + 3 * nk), rtol=1e-4)
    assert abs(l3 - l0) > 1e-4 * l0  # the weighting changed the loss
    video = load_config("tiny", "video", data_dir)
    video.conditional.known_loss_weight = 1.0
    with pytest.raises(ValueError, match="known_loss_weight=1.0 .* only used by the conditional stage"):
        validation.validate(video)
