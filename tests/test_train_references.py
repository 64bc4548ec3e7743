"""tools/train_references.sh: the stages' commands and how each phase starts from the one before
(run with PY=echo, so nothing trains)."""

import os
import re
import subprocess

from tests.helpers import ROOT


def _commands(out, *stages):
    env = dict(os.environ, PY="echo")
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "tools", "train_references.sh"), str(out), *stages],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line.split() for line in proc.stdout.splitlines() if line.startswith("main.py")]


def _flag(cmd, name):
    return next((a.split("=", 1)[1] for a in cmd if a.startswith(f"--{name}=")), None)


VIDEO_PHASES = ["video"] + ["video_high_noise"] * 4 + ["video_mixture", "video_mixture_settle"]


def test_t2i_stage_trains_twice_the_second_from_the_first(tmp_path):
    cmds = _commands(tmp_path, "t2i")
    train = [c for c in cmds if _flag(c, "mode") is None]
    assert [_flag(c, "config").split(":")[1] for c in train] == ["t2i", "t2i"]
    assert _flag(train[0], "config.train.init_from") is None
    assert _flag(train[1], "config.train.init_from") == _flag(train[0], "workdir")
    exports = [(_flag(c, "workdir"), _flag(c, "export_dir")) for c in cmds if _flag(c, "mode") == "export"]
    assert exports == [(_flag(train[1], "workdir"), f"{tmp_path}/exports/moving_shapes_t2i")]


def test_video_stage_chains_the_seven_phases_from_the_t2i_export(tmp_path):
    cmds = _commands(tmp_path, "video", "conditional")
    train = [c for c in cmds if _flag(c, "mode") is None]
    configs = [_flag(c, "config").split(":")[1] for c in train]
    assert configs == VIDEO_PHASES + ["conditional"]
    starts = [_flag(c, "config.train.init_from") for c in train]
    assert starts[0] == f"{tmp_path}/exports/moving_shapes_t2i"
    for prev, start in zip(train[:-2], starts[1:-1]):  # each video phase from the previous one's workdir
        assert start == _flag(prev, "workdir")
    assert starts[-1] == f"{tmp_path}/exports/moving_shapes_base"  # the conditional from the base export
    exports = [(_flag(c, "workdir"), _flag(c, "export_dir")) for c in cmds if _flag(c, "mode") == "export"]
    assert exports == [
        (f"{tmp_path}/video", f"{tmp_path}/exports/moving_shapes_base"),
        (f"{tmp_path}/conditional", f"{tmp_path}/exports/moving_shapes_conditional"),
    ]


def test_the_configs_docstring_lists_the_same_video_phases():
    """configs/moving_shapes.py's docstring (the commands users copy) trains the phases the script runs."""
    doc = open(os.path.join(ROOT, "configs", "moving_shapes.py")).read().split('"""')[1]
    loop = re.search(r"for p in ([\d ]+); do\s+python main.py --config=configs/moving_shapes.py:(\w+)", doc)
    singles = re.findall(  # the training commands: those that start from another run
        r"python main.py --config=configs/moving_shapes.py:(video\w*) --workdir=\S+ \\\n\s+--config.train.init_from",
        doc.replace(loop.group(0), "") if loop else doc,  # the loop's body counted above
    )
    assert loop and singles[0] == "video"
    phases = ["video"] + [loop.group(2)] * len(loop.group(1).split()) + singles[1:]
    assert phases == VIDEO_PHASES
