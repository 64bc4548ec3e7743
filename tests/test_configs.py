"""Every config builds and validates; the paper-scale ones abstractly (no memory)."""

import glob
import json
import os
import subprocess
import sys

import jax
import pytest

from lumiere_jax import config as config_lib
from lumiere_jax.train import validation
from lumiere_jax.models.diffusion_model import DiffusionModel
from tests.helpers import ROOT, load_config

ARGS = {
    "tiny.py": ("t2i", "video", "ssr_image", "ssr", "conditional"),
    "moving_shapes.py": (
        "t2i",
        "video",
        "video_high_noise",
        "video_settle",
        "video_mixture",
        "video_mixture_settle",
        "ssr_image",
        "ssr",
        "cascade",
        "conditional",
        "style",
        "i2v",
        "sdedit",
    ),
    "ssr.py": ("ssr_image", "ssr", "cascade"),
    "bench_gpu.py": ("h100", "cpu"),
}
CONFIGS = [
    (os.path.basename(p)[:-3], arg)
    for p in sorted(glob.glob(os.path.join(ROOT, "configs", "[!_]*.py")))
    for arg in ARGS.get(os.path.basename(p), ("",))
]


def abstract_params(name: str, arg: str = ""):
    """The config's abstract parameters: `DiffusionModel.abstract_params`, traced once per distinct
    model (the configs of one task family share theirs: 28 configs, 19 models); a copy, tests edit it."""
    return DiffusionModel(validation.validate(load_config(name, arg, "/nonexistent"))).abstract_params()


@pytest.mark.parametrize("name,arg", CONFIGS)
def test_config_builds_and_validates(name, arg):
    params = abstract_params(name, arg)
    assert sum(a.size for a in jax.tree_util.tree_leaves(params)) > 0


def test_paper_scale_base():
    config = load_config("base", "", "/nonexistent")
    m = validation.validate(config)
    assert (m.num_frames, m.resolution, m.stunet.temporal_factor) == (80, 128, 16)
    params = abstract_params("base")
    n = lambda tree: sum(a.size for a in jax.tree_util.tree_leaves(tree))
    assert n(params["denoiser"]["spatial"]) == 826_538_755  # the t2i_base U-Net, verbatim
    config.model.num_frames = 81
    with pytest.raises(ValueError, match=r"num_frames=81 .*multiple of 16, e.g. 80 or 96"):
        validation.validate(config)


def test_paper_scale_ssr():
    from lumiere_jax.diffusion import multidiffusion

    config = load_config("ssr", "ssr", "/nonexistent")
    m = validation.validate(config)
    assert (m.resolution, m.low_resolution, m.num_frames, m.conditioning) == (1024, 128, 16, "low_res")
    assert m.stunet.temporal_factor == 1 and m.stunet.unet.in_channels == 6
    layout = multidiffusion.window_layout(config.data.num_frames, m.num_frames, config.ssr.overlap)
    assert layout.starts == (0, 14, 28, 42, 56, 64)
    p_img, p_vid = abstract_params("ssr", "ssr_image"), abstract_params("ssr", "ssr")
    shapes = lambda t: jax.tree_util.tree_map(lambda a: a.shape, t)
    assert shapes(p_vid["denoiser"]["spatial"]) == shapes(p_img["denoiser"])  # inflatable


def test_ssr_values_raise():
    config = load_config("tiny", "ssr", "/nonexistent")
    config.model.low_resolution = 8
    with pytest.raises(ValueError, match="0 < low_resolution < resolution"):
        validation.validate(config)
    config = load_config("tiny", "ssr", "/nonexistent")
    config.ssr.noise_aug_max = 1000
    with pytest.raises(ValueError, match="noise_aug_max=1000"):
        validation.validate(config)
    config = load_config("tiny", "ssr", "/nonexistent")
    config.model.unet.aug_embedding = False
    with pytest.raises(ValueError, match="aug_embedding=True"):
        validation.validate(config)
    config = load_config("tiny", "video", "/nonexistent")
    config.model.low_resolution = 4
    with pytest.raises(ValueError, match="low_resolution is for the super-resolution stages"):
        validation.validate(config)


def test_bad_values_raise():
    config = load_config("tiny", "video", "/nonexistent")
    config.diffusion.prediction_type = "score"
    with pytest.raises(ValueError, match="prediction"):
        validation.validate(config)
    config = load_config("tiny", "video", "/nonexistent")
    config.model.resolution = 9
    with pytest.raises(ValueError, match="height=9 is not divisible"):
        validation.validate(config)


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("name", "i2video", r"config.task.name must be '' \(text-to-video\) or one of \('i2v'"),
        ("strength", 1.5, r"config.task.strength must be >= 0.0 and <= 1.0, got 1.5"),
        ("outpaint_direction", "sideways", r"config.task.outpaint_direction must be '' or one of \('left'"),
        ("outpaint_padding", (1, 2), r"config.task.outpaint_padding takes 1 or 4 integers, got \(1, 2\)"),
    ],
)
def test_bad_task_settings_raise(key, value, message):
    """The task section (the presets' and --config.task.* values) is checked before anything is built."""
    config = load_config("moving_shapes", "sdedit", "/nonexistent")
    config.task[key] = value
    with pytest.raises(ValueError, match=message):
        validation.validate(config)


def test_cli_rejects_unknown_config_keys():
    r = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "main.py"),
            "--config",
            os.path.join(ROOT, "configs/tiny.py"),
            "--config.train.num_stepz=3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "num_stepz" in r.stderr
    r = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "main.py"),
            "--config",
            os.path.join(ROOT, "configs/tiny.py"),
            "--mode=train",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "needs --workdir" in r.stderr


def test_paper_scale_conditional():
    config = load_config("conditional", "", "/nonexistent")
    m = validation.validate(config)
    assert m.conditioning == "masked" and m.stunet.unet.in_channels == 7
    p_base, p_cond = abstract_params("base"), abstract_params("conditional")
    shapes = lambda t: jax.tree_util.tree_map(lambda a: a.shape, t)
    conv = p_cond["denoiser"]["spatial"]["conv_in"]["kernel"].shape
    assert conv[:2] + conv[3:] == p_base["denoiser"]["spatial"]["conv_in"]["kernel"].shape[:2] + conv[3:]
    assert (conv[2], p_base["denoiser"]["spatial"]["conv_in"]["kernel"].shape[2]) == (7, 3)
    p_cond["denoiser"]["spatial"]["conv_in"] = p_base["denoiser"]["spatial"]["conv_in"]
    assert shapes(p_cond) == shapes(p_base)  # only the input convolution differs


def test_timestep_sampling_values_raise():
    config = load_config("tiny", "video", "/nonexistent")
    config.diffusion.timestep_sampling = "cosine"
    with pytest.raises(ValueError, match=r"timestep_sampling must be one of .*'cosine'"):
        validation.validate(config)
    config = load_config("tiny", "video", "/nonexistent")
    config.diffusion.timestep_sampling = "logit_normal"
    config.diffusion.timestep_logit_std = -1.0
    with pytest.raises(ValueError, match="timestep_logit_std must be > 0, got -1.0"):
        validation.validate(config)


@pytest.mark.parametrize(
    "export, arg",
    [
        ("moving_shapes_t2i", "t2i"),
        ("moving_shapes_base", "video_mixture_settle"),
        ("moving_shapes_ssr", "ssr"),
        ("moving_shapes_conditional", "conditional"),
        ("moving_shapes_style_outline", "style"),
    ],
)
def test_moving_shapes_config_states_the_shipped_architecture(export, arg):
    """The config that trains a shipped export builds its architecture (whatever the library defaults)."""
    with open(os.path.join(ROOT, "assets", export, "config.json")) as f:
        stored = json.load(f)
    config = config_lib.load_config_file(os.path.join(ROOT, "configs", "moving_shapes.py"), arg).to_dict()
    config = json.loads(json.dumps(config))  # tuples as the stored lists
    image_stage = config["stage"] in ("t2i", "ssr_image")  # no temporal layers
    for section in ("unet", "text_encoder") + (() if image_stage else ("temporal",)):  # the keys it stored
        stored_section = stored["model"][section]
        assert {k: config["model"][section][k] for k in stored_section} == stored_section, section
    for key in ("resolution", "num_frames", "low_resolution"):
        assert config["model"][key] == stored["model"].get(key, 0), key  # low_resolution: 0 before it existed
