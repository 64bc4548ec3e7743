"""Super-resolution training: degraded inputs, the two SSR stages, inflation from the image SSR."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lumiere_jax.diffusion import conditioning, low_res, schedules
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.models.stunet import SPATIAL
from lumiere_jax.train import checkpoint, trainer, validation
from tests.helpers import load_config

SCHED = schedules.get_schedule("squaredcos_cap_v2")


def _model_cfg(arg, **kw):
    config = load_config("tiny", arg, "", **kw)
    return config, validation.validate(config)


def test_ssr_inputs_video_window_and_clean_level():
    config, m = _model_cfg("ssr", **{"ssr.noise_aug_max": 0})
    x0 = jax.random.uniform(jax.random.PRNGKey(0), (3, 4, 8, 8, 3), minval=-1, maxval=1)
    target, cond, aug = conditioning.ssr_inputs(m, SCHED, config.ssr.to_dict(), x0, jax.random.PRNGKey(1))
    assert target.shape == cond.shape == (3, 2, 8, 8, 3) and aug.shape == (3,)
    np.testing.assert_array_equal(aug, 0)
    for b in range(3):  # each target is a window of 2 consecutive frames of its clip
        starts = [s for s in range(3) if np.array_equal(target[b], x0[b, s : s + 2])]
        assert len(starts) == 1
        clean = low_res.upsample(low_res.downsample(target[b], 4), 8)
        # level 0 keeps sqrt(alpha_bar_0) of the signal plus sigma_0 noise: close to the clean input
        np.testing.assert_allclose(cond[b], clean, atol=0.1)
        # the conditioning lost the high frequencies: it is not the target itself
        assert np.abs(np.asarray(cond[b]) - np.asarray(target[b])).mean() > 0.05


def test_ssr_inputs_patch_is_aligned():
    config, m = _model_cfg("ssr_image", **{"ssr.noise_aug_max": 0, "ssr.patch_size": 4})
    x0 = jax.random.uniform(jax.random.PRNGKey(2), (4, 8, 8, 3), minval=-1, maxval=1)
    target, cond, _ = conditioning.ssr_inputs(m, SCHED, config.ssr.to_dict(), x0, jax.random.PRNGKey(3))
    assert target.shape == cond.shape == (4, 4, 4, 3)
    full = low_res.upsample(low_res.downsample(x0, 4), 8)
    for b in range(4):
        ((i, j),) = [
            (i, j) for i in range(5) for j in range(5) if np.array_equal(target[b], x0[b, i : i + 4, j : j + 4])
        ]
        np.testing.assert_allclose(cond[b], full[b, i : i + 4, j : j + 4], atol=0.1)


def test_ssr_augmentation_levels_bounded_and_used():
    config, m = _model_cfg("ssr_image", **{"ssr.noise_aug_max": 300})
    x0 = jnp.zeros((256, 8, 8, 3))
    _, cond, aug = conditioning.ssr_inputs(m, SCHED, config.ssr.to_dict(), x0, jax.random.PRNGKey(4))
    aug = np.asarray(aug)
    assert aug.min() >= 0 and aug.max() <= 300 and aug.max() > 250 and aug.min() < 50
    # a zero image's conditioning is pure augmentation noise, growing with the level
    spread = np.asarray(cond).reshape(256, -1).std(axis=1)
    assert np.corrcoef(aug, spread)[0, 1] > 0.9


def test_ssr_stages_train_and_inflate(ssr_image_run, ssr_run):
    img_dir, _, img_state = ssr_image_run
    _, ssr_config, ssr_state = ssr_run
    assert int(ssr_state.step) == 4
    for leaf in jax.tree_util.tree_leaves(ssr_state.params):
        assert np.isfinite(np.asarray(leaf)).all()
    # spatial layers frozen at the image SSR's parameters; the aug embedding is among them
    img_params, _ = checkpoint.load(img_dir)
    spatial = ssr_state.params["denoiser"][SPATIAL]
    assert "aug_embed_1" in spatial
    jax.tree_util.tree_map(np.testing.assert_array_equal, spatial, img_params["denoiser"])


def test_ssr_stage_rejects_wrong_init_stage(t2i_run, tmp_path):
    config = load_config("tiny", "ssr", t2i_run[1].data.data_dir, **{"train.init_from": t2i_run[0]})
    with pytest.raises(ValueError, match="starts from a 'ssr_image' checkpoint"):
        trainer.train(config, str(tmp_path))


def test_ssr_model_needs_conditioning():
    _, m = _model_cfg("ssr")
    model = DiffusionModel(m)
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    x = jnp.zeros((1, 2, 8, 8, 3))
    text, mask = jnp.zeros((1, m.text_length, m.stunet.unet.text_dim)), jnp.ones((1, m.text_length), bool)
    with pytest.raises(ValueError, match="cond must be given"):
        jax.eval_shape(lambda p: model.denoise(p, x, jnp.zeros((1,), jnp.int32), text, mask), params)
    with pytest.raises(ValueError, match="aug_level"):
        jax.eval_shape(lambda p: model.denoise(p, x, jnp.zeros((1,), jnp.int32), text, mask, cond=x), params)
    import dataclasses

    unet3 = dataclasses.replace(m.stunet.unet, in_channels=3)
    with pytest.raises(ValueError, match="in_channels=3 must be 3 \\+ 3"):
        m.replace(stunet=dataclasses.replace(m.stunet, unet=unet3))
    with pytest.raises(ValueError, match="low_resolution"):
        m.replace(low_resolution=8)
