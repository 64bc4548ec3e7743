"""`--mode=eval` of the conditional tasks (lumiere_jax/eval/conditional.py)."""
import json

import pytest

from lumiere_jax import cli
from lumiere_jax.eval import conditional as cond_eval

PROMPT = "a red square moving left"


def _flags(**kw):
    base = dict(mode="sample", workdir=None, checkpoint=None, num_steps=2, guidance_scale=None, sampler=None,
                seed=0, prompt=[PROMPT], prompts_file=None, output_dir=None, num_samples=None, input_video=[],
                multidiffusion=True, task=None, image=None, mask=None, outpaint_padding=None,
                outpaint_direction=None, outpaint_amount=0.25, strength=0.6, resize_inputs=True, paste_known=False,
                style_checkpoint=None, style_alpha=0.8, eval_split="held_out", eval_num_prompts=1)
    return cli.RunArgs(**{**base, **kw})


def test_eval_of_the_tasks(conditional_run, tmp_path):
    workdir, config, _ = conditional_run
    scores = cli.run(config, _flags(mode="eval", checkpoint=workdir, output_dir=str(tmp_path)))["held_out"]
    assert scores["num_videos"] == 1 and set(cond_eval.TASKS) <= set(scores)
    assert set(scores["sdedit"]) == {f"{s:g}" for s in cond_eval.SDEDIT_STRENGTHS}
    on_disk = json.load(open(tmp_path / "eval_tasks_held_out.json"))
    assert on_disk["i2v"]["first_frame_psnr"]["mean"] == pytest.approx(scores["i2v"]["first_frame_psnr"]["mean"])
    assert on_disk["settings"]["num_steps"] == 2          # the effective settings (--num_steps=2)
