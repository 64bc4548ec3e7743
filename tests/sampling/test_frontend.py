"""The front-end registry: each application registered once, its model kind checked when built."""

from types import SimpleNamespace

import pytest

from lumiere_jax.sampling import generator
from lumiere_jax.sampling.frontend import FRONTENDS, Frontend, register


def _engine(kind="video", conditioning="none"):
    return SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(kind=kind, conditioning=conditioning)))


def test_every_application_is_registered_and_reachable_from_the_generator():
    assert set(FRONTENDS) == {
        "generate",
        "upsample",
        "conditional",
        "i2v",
        "inpaint",
        "outpaint",
        "cinemagraph",
        "sdedit",
    }
    for name in FRONTENDS:
        assert callable(getattr(generator.Generator, name)), name


@pytest.mark.parametrize(
    "name, kind, conditioning, ok",
    [
        ("generate", "video", "none", True),
        ("generate", "video", "masked", True),
        ("generate", "video", "low_res", False),
        ("upsample", "video", "low_res", True),
        ("upsample", "video", "none", False),
        ("i2v", "video", "masked", True),
        ("i2v", "video", "none", False),
        ("sdedit", "video", "none", True),
        ("sdedit", "video", "masked", True),
        ("sdedit", "image", "none", False),
        ("sdedit", "video", "low_res", False),
    ],
)
def test_model_kind_is_checked_when_built(name, kind, conditioning, ok):
    if ok:
        assert FRONTENDS[name](_engine(kind, conditioning)).engine.model.config.kind == kind
    else:
        with pytest.raises(ValueError, match="needs|super-resolution model"):
            FRONTENDS[name](_engine(kind, conditioning))


def test_a_name_is_registered_once():
    class Again(Frontend):
        name = "sdedit"

    with pytest.raises(ValueError, match="already registered"):
        register(Again)


def test_generator_builds_each_front_end_once_and_names_unknown_ones():
    gen = generator.Generator.__new__(generator.Generator)
    gen._steps, gen.model = {}, _engine().model
    assert gen.frontend("generate") is gen.frontend("generate")
    with pytest.raises(ValueError, match="unknown front-end 'nope'"):
        gen.frontend("nope")
    with pytest.raises(ValueError, match="needs a super-resolution model"):
        gen.upsample(None, "a red square moving left")
