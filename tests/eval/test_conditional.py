"""`--mode=eval` of the conditional tasks (lumiere_jax/eval/conditional.py)."""

import json

import pytest

from lumiere_jax import cli
from lumiere_jax.eval import conditional as cond_eval
from tests.helpers import task_run_args


def test_eval_of_the_tasks(conditional_run, tmp_path):
    workdir, config, _ = conditional_run
    scores = cli.run(config, task_run_args(mode="eval", checkpoint=workdir, output_dir=str(tmp_path)))["held_out"]
    assert scores["num_videos"] == 1 and set(cond_eval.TASKS) <= set(scores)
    assert set(scores["sdedit"]) == {f"{s:g}" for s in cond_eval.SDEDIT_STRENGTHS}
    on_disk = json.load(open(tmp_path / "eval_tasks_held_out.json"))
    assert on_disk["i2v"]["first_frame_psnr"]["mean"] == pytest.approx(scores["i2v"]["first_frame_psnr"]["mean"])
    assert on_disk["settings"]["num_steps"] == 2  # the effective settings (--num_steps=2)
