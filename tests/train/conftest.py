"""Tiny runs shared by the training tests (one T2I run, one video run per session)."""
import os

import pytest

from lumiere_jax import config as config_lib, pipeline
from lumiere_jax.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_config(name: str, arg: str, data_dir: str, **overrides):
    config = config_lib.load_config_file(os.path.join(ROOT, "configs", f"{name}.py"), arg)
    config.data.data_dir = data_dir
    for key, value in overrides.items():
        section, field = key.split(".")
        config[section][field] = value
    return config


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def t2i_run(tmp_path_factory, data_dir):
    workdir = str(tmp_path_factory.mktemp("t2i"))
    config = load_config("tiny", "t2i", data_dir, **{"train.num_steps": 4})
    state = trainer.train(config, workdir)
    return workdir, config, state


@pytest.fixture(scope="session")
def video_run(tmp_path_factory, data_dir, t2i_run):
    workdir = str(tmp_path_factory.mktemp("video"))
    config = load_config("tiny", "video", data_dir, **{"train.num_steps": 4, "train.init_from": t2i_run[0],
                                                        "train.sample_every": 4})
    state = trainer.train(config, workdir, pipeline.write_training_samples)
    return workdir, config, state


@pytest.fixture(scope="session")
def ssr_image_run(tmp_path_factory, data_dir):
    workdir = str(tmp_path_factory.mktemp("ssr_image"))
    config = load_config("tiny", "ssr_image", data_dir, **{"train.num_steps": 4, "ssr.patch_size": 4})
    state = trainer.train(config, workdir)
    return workdir, config, state


@pytest.fixture(scope="session")
def ssr_run(tmp_path_factory, data_dir, ssr_image_run):
    workdir = str(tmp_path_factory.mktemp("ssr"))
    config = load_config("tiny", "ssr", data_dir, **{"train.num_steps": 4, "train.init_from": ssr_image_run[0]})
    state = trainer.train(config, workdir)
    return workdir, config, state


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory, data_dir, video_run):
    workdir = str(tmp_path_factory.mktemp("conditional"))
    config = load_config("tiny", "conditional", data_dir, **{"train.num_steps": 2, "train.init_from": video_run[0]})
    state = trainer.train(config, workdir)
    return workdir, config, state
