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
