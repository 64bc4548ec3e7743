"""Helpers shared by the tests."""
import os

from lumiere_jax import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name: str, arg: str, data_dir: str, **overrides):
    """`configs/<name>.py:<arg>` with its data directory and `section.field=value` overrides."""
    config = config_lib.load_config_file(os.path.join(ROOT, "configs", f"{name}.py"), arg)
    config.data.data_dir = data_dir
    for key, value in overrides.items():
        section, field = key.split(".")
        config[section][field] = value
    return config
