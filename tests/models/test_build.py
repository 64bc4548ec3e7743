"""models.build: the plain-data config's model sections against the typed model configs."""

import dataclasses

import pytest

from lumiere_jax import config as config_lib
from lumiere_jax.models import build
from lumiere_jax.models.stunet import STUNetConfig
from lumiere_jax.models.t5 import T5_V1_1_XXL
from lumiere_jax.models.unet import UNetConfig


def _fields(obj, exclude=()):
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in exclude}


@pytest.mark.parametrize(
    "section, typed",
    [
        ("unet", UNetConfig()),
        ("temporal", STUNetConfig()),
        ("t5", T5_V1_1_XXL),
    ],
)
def test_config_sections_state_every_field_with_its_default(section, typed):
    """config.py cannot import the models (it is plain data), so its literal sections are checked here:
    every architecture field present, with the dataclass default: the library defaults are no run's model."""
    got = config_lib.default_config().model[section].to_dict()
    for key in ("checkpoint", "tokenizer"):  # t5: where its files are, not architecture
        got.pop(key, None)
    want = _fields(typed, exclude=("unet", "remat"))
    assert got == want


def test_model_config_of_the_defaults_and_a_bad_stage():
    c = config_lib.default_config()
    model = build.model_config(c.to_dict())
    assert model.kind == "video" and model.stunet.num_temporal_downsamples is None
    assert model.stunet.temporal_downsamples == 2  # after each of the default U-Net's two down-samplings
    with pytest.raises(ValueError, match="config.stage must be one of .*'video'.*got 'movie'"):
        build.model_config({**c.to_dict(), "stage": "movie"})
