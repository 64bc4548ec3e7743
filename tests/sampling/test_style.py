"""Stylized generation (spatial-weight interpolation) through the Generator."""

import jax
import numpy as np
import pytest

from lumiere_jax import sampling
from lumiere_jax.models.stunet import SPATIAL, TEMPORAL
from lumiere_jax.train import checkpoint


def test_style_interpolation_through_the_generator(video_run, t2i_run):
    base = sampling.Generator.load(video_run[0])
    styled = base.with_style(t2i_run[0], 1.0)
    style_params, _ = checkpoint.load(t2i_run[0])
    np.testing.assert_array_equal(
        np.asarray(styled.params["denoiser"][SPATIAL]["conv_in"]["kernel"]),
        np.asarray(style_params["denoiser"]["conv_in"]["kernel"]),
    )
    for a, b in zip(
        jax.tree_util.tree_leaves(styled.params["denoiser"][TEMPORAL]),
        jax.tree_util.tree_leaves(base.params["denoiser"][TEMPORAL]),
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert styled.config["style"]["alpha"] == 1.0
    with pytest.raises(ValueError, match="alpha"):
        base.with_style(t2i_run[0], 1.5)
