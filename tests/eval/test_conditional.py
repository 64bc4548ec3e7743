"""`--mode=eval` of the conditional tasks (lumiere_jax/eval/conditional.py)."""

import json

import numpy as np
import pytest

from lumiere_jax import cli
from lumiere_jax.eval import conditional as cond_eval
from tests.eval.test_fvd import _ColourMotion
from tests.helpers import load_config, task_run_args


def test_eval_of_the_tasks(conditional_run, tmp_path, monkeypatch):
    """Every task scored, with its FVD against the split's real clips (a cheap stand-in for the I3D:
    tests/eval/test_fvd.py)."""
    workdir, config, _ = conditional_run
    config = load_config("tiny", "conditional", config.data.data_dir, **{"eval.fvd_num_real": 4})
    monkeypatch.setitem(cli._FEATURES, "i3d", _ColourMotion())
    args = task_run_args(mode="eval", checkpoint=workdir, output_dir=str(tmp_path), eval_num_prompts=2)
    scores = cli.run(config, args)["held_out"]
    assert scores["num_videos"] == 2 and set(cond_eval.TASKS) <= set(scores)
    assert set(scores["sdedit"]) == {f"{s:g}" for s in cond_eval.SDEDIT_STRENGTHS}
    for row in scores["sdedit"].values():  # an edit to another caption, and the same clip with its own
        assert row["psnr_to_input"]["mean"] > 0 and row["psnr_to_input_same_caption"]["mean"] > 0  # inf: no step
    fvds = [scores[t]["fvd"] for t in cond_eval.TASKS if t != "sdedit"] + [r["fvd"] for r in scores["sdedit"].values()]
    assert all(f["num_generated"] == 2 and f["num_real"] == 4 and f["fvd"] >= 0 for f in fvds)
    on_disk = json.load(open(tmp_path / "eval_tasks_held_out.json"))
    assert on_disk["i2v"]["first_frame_psnr"]["mean"] == pytest.approx(scores["i2v"]["first_frame_psnr"]["mean"])
    assert on_disk["settings"]["num_steps"] == 2  # the effective settings (--num_steps=2)


def test_eval_tasks_selects_the_tasks_scored(conditional_run, tmp_path):
    """--eval_tasks scores only the tasks named; an unknown one is refused, naming it, before loading."""
    workdir, config, _ = conditional_run
    config = load_config("tiny", "conditional", config.data.data_dir, **{"eval.fvd_num_real": 0})
    args = task_run_args(
        mode="eval", checkpoint=workdir, output_dir=str(tmp_path), eval_num_prompts=2, eval_tasks="outpaint,i2v_pil"
    )
    scores = cli.run(config, args)["held_out"]
    assert {"outpaint", "i2v_pil"} <= set(scores)
    assert not (set(cond_eval.TASKS) - {"outpaint", "i2v_pil"}) & set(scores)
    bad = task_run_args(mode="eval", checkpoint=str(tmp_path / "absent"), eval_tasks="i2v,warp")
    with pytest.raises(ValueError, match=r"--eval_tasks 'i2v,warp': unknown \['warp'\]; choose from"):
        cli.run(config, bad)


def test_sdedit_edit_scores_read_the_edit_against_both_captions():
    """Videos that kept their input score 1 against the input's caption and 0 against another one
    (colour and direction both changed), with infinite PSNR to the input; a mirrored copy is not infinitely close."""
    from lumiere_jax.data import moving_shapes as ms

    rng = np.random.default_rng(0)
    specs = [ms.sample_spec(rng, 32, 16) for _ in range(4)]
    clips = np.stack([ms.render_clip(s, 16, 32) for s in specs])
    captions = [ms.caption(s) for s in specs]
    new = [cond_eval.other_caption(c, i) for i, c in enumerate(captions)]
    kept = cond_eval.sdedit_edit_scores(clips, clips, captions, new)
    assert kept["input_caption"] == {"color_accuracy": 1.0, "direction_accuracy": 1.0}
    assert kept["new_prompt"] == {"color_accuracy": 0.0, "direction_accuracy": 0.0}
    assert kept["psnr_to_input"]["frac_inf"] == 1.0
    swapped = cond_eval.sdedit_edit_scores(clips[:, :, :, ::-1], clips, captions, new)  # mirrored: left <-> right
    assert swapped["psnr_to_input"]["frac_inf"] < 1.0
