"""Settings precedence (lumiere_jax/settings.py) on the tiny video run: the CLI config's `sample`
section (the file with --config.* applied) beats the checkpoint's stored one, an explicit flag beats
both, in sample and eval mode; an explicit override of an architecture key that differs from the
checkpoint's is refused; the Python API takes the same sample settings."""

import copy
import json
import os
import subprocess
import sys
import types

import pytest

from lumiere_jax import cli, sampling
from lumiere_jax.diffusion import samplers
from lumiere_jax.sampling import settings
from tests.helpers import ROOT

PROMPT = "a red square moving left"


def _flags(**kw):
    base = dict(
        mode="sample",
        workdir=None,
        checkpoint=None,
        num_steps=None,
        guidance_scale=None,
        sampler=None,
        seed=0,
        prompt=[PROMPT],
        prompts_file=None,
        output_dir=None,
        num_samples=None,
        input_video=[],
        multidiffusion=True,
        task=None,
        style_checkpoint=None,
        eval_split="held_out",
        eval_num_prompts=1,
    )
    return cli.RunArgs(**{**base, **kw})


def _cli_config(stored_config, **sample):
    """The run's config with `sample` written over its sample section (what
    --config.sample.<key>=<value> gives cli.run)."""
    config = copy.deepcopy(stored_config)
    for k, v in sample.items():
        config.sample[k] = v
    return config


@pytest.fixture
def sampler_calls(monkeypatch):
    """The arguments of every `samplers.get_sampler` call (what the sampler is built with)."""
    calls, real = [], samplers.get_sampler

    def spy(name, sched, num_steps, **kw):
        calls.append({"sampler": name, "num_steps": num_steps, **kw})
        return real(name, sched, num_steps, **kw)

    monkeypatch.setattr(samplers, "get_sampler", spy)
    return calls


def test_sample_mode_cli_config_beats_stored_and_flags_beat_config(video_run, sampler_calls, tmp_path, capsys):
    workdir, stored_config, _ = video_run
    assert stored_config.sample.num_steps == 3 and stored_config.sample.thresholding  # what the checkpoint holds
    config = _cli_config(stored_config, num_steps=2, thresholding=False)
    config.model.remat = "full"  # the config file's model section is not compared, only explicit overrides
    r = cli.run(
        config,
        _flags(checkpoint=workdir, output_dir=str(tmp_path / "a")),
        config_overrides={"sample.num_steps": 2, "sample.thresholding": False},
    )
    assert sampler_calls[-1]["num_steps"] == 2 and sampler_calls[-1]["thresholding"] is False
    entry = json.load(open(tmp_path / "a" / "manifest.json"))[0]
    assert (
        entry["num_steps"] == 2
        and entry["thresholding"] is False
        and r.settings == {k: entry[k] for k in sampling.settings.SAMPLE_KEYS}
    )
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("sampling settings:")]
    assert len(printed) == 1 and "num_steps=2" in printed[0] and "thresholding=False" in printed[0]
    # An explicit flag beats the config's value.
    cli.run(config, _flags(checkpoint=workdir, num_steps=1, output_dir=str(tmp_path / "b")))
    assert sampler_calls[-1]["num_steps"] == 1 and sampler_calls[-1]["thresholding"] is False
    entry = json.load(open(tmp_path / "b" / "manifest.json"))[0]
    assert entry["num_steps"] == 1 and entry["thresholding"] is False


def test_eval_mode_uses_the_cli_settings(video_run, sampler_calls, tmp_path):
    workdir, stored_config, _ = video_run
    config = _cli_config(stored_config, num_steps=2, thresholding=False)
    cli.run(config, _flags(mode="eval", checkpoint=workdir, output_dir=str(tmp_path / "a")))
    on_disk = json.load(open(tmp_path / "a" / "eval_held_out.json"))
    assert on_disk["settings"]["num_steps"] == 2 and on_disk["settings"]["thresholding"] is False
    assert sampler_calls[-1]["num_steps"] == 2 and sampler_calls[-1]["thresholding"] is False
    scores = cli.run(config, _flags(mode="eval", checkpoint=workdir, num_steps=1, output_dir=str(tmp_path / "b")))[
        "held_out"
    ]
    on_disk = json.load(open(tmp_path / "b" / "eval_held_out.json"))
    assert on_disk["settings"]["num_steps"] == scores["settings"]["num_steps"] == 1
    assert sampler_calls[-1]["num_steps"] == 1


def test_export_carries_the_cli_sampling_settings(video_run, tmp_path):
    """--mode=export writes the config file's sample settings (and the flags') over the stored ones,
    so the export's Generator.load samples as the CLI did from the workdir; the params are the run's."""
    workdir, stored_config, _ = video_run
    out = str(tmp_path / "export")
    config = _cli_config(stored_config, guidance_scale=7.5, eta=0.25)
    assert cli.run(config, _flags(mode="export", workdir=workdir, export_dir=out, num_steps=3)) == out
    got = sampling.Generator.load(out)
    assert {k: got.settings()[k] for k in ("guidance_scale", "eta", "num_steps")} == {
        "guidance_scale": 7.5,
        "eta": 0.25,
        "num_steps": 3,
    }
    run = sampling.Generator.load(workdir)
    assert run.settings()["guidance_scale"] == stored_config.sample.guidance_scale != 7.5  # the workdir is untouched
    rest = lambda c: {k: v for k, v in c.items() if k not in ("sample", "export_dtype")}  # noqa: E731
    assert rest(got.config) == rest(run.config)


def test_architecture_override_that_differs_is_refused(video_run, sampler_calls):
    workdir, stored_config, _ = video_run
    config = copy.deepcopy(stored_config)
    config.model.resolution = 16
    with pytest.raises(
        ValueError,
        match=r"--config\.model\.resolution=16 differs from the checkpoint's "
        r"model\.resolution=8",
    ):
        cli.run(config, _flags(checkpoint=workdir), config_overrides={"model.resolution": 16})
    with pytest.raises(ValueError, match=r"model\.unet\.channel_mult=\[1, 4\] differs .*\[1, 2\]"):
        cli.run(stored_config, _flags(checkpoint=workdir), config_overrides={"model.unet.channel_mult": (1, 4)})
    assert not sampler_calls  # refused before anything was sampled
    stored = sampling.Generator.load(workdir).config
    settings.check_fixed(
        stored,
        {
            "model.unet.channel_mult": (1, 2),
            "model.resolution": 8,  # the stored values
            "model.t5.checkpoint": "/elsewhere",  # a location: not refused
            "sample.num_steps": 9,
            "train.num_steps": 1,
        },
        workdir,
    )
    with pytest.raises(ValueError, match=r"--config\.stage='t2i' differs from the checkpoint's stage='video'"):
        settings.check_fixed(stored, {"stage": "t2i"}, workdir)


def test_main_refuses_an_architecture_override(video_run):
    """main.py hands the explicit --config overrides to cli.run (refused before any compile)."""
    workdir, stored_config, _ = video_run
    r = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "main.py"),
            "--config",
            os.path.join(ROOT, "configs/tiny.py:video"),
            "--mode=sample",
            f"--checkpoint={workdir}",
            f"--config.data.data_dir={stored_config.data.data_dir}",
            "--config.model.num_frames=8",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    assert (
        r.returncode != 0 and "--config.model.num_frames=8 differs from the checkpoint's model.num_frames=4" in r.stderr
    ), r.stderr[-3000:]


def test_python_api_sample_settings(video_run, sampler_calls):
    gen = sampling.Generator.load(video_run[0], sample={"num_steps": 2, "thresholding": False, "eta": None})
    r = gen.generate([PROMPT], progress=False)
    assert r.settings["num_steps"] == 2 and r.settings["thresholding"] is False
    assert r.settings["eta"] == video_run[1].sample.eta  # None keeps the stored value
    assert sampler_calls[-1]["num_steps"] == 2 and sampler_calls[-1]["thresholding"] is False
    assert gen.settings(num_steps=1)["num_steps"] == 1  # a call's own override beats load's
    with pytest.raises(ValueError, match="unknown sample setting 'steps'"):
        sampling.Generator.load(video_run[0], sample={"steps": 2})
    config = sampling.settings.with_settings(gen.config, ssr={"overlap": 0}, t5={"checkpoint": "/t5"})
    assert config["ssr"]["overlap"] == 0 and config["model"]["t5"]["checkpoint"] == "/t5"
    assert config["sample"] == gen.config["sample"] and gen.config["model"]["t5"]["checkpoint"] == ""
    with pytest.raises(ValueError, match="unknown t5 setting 'd_model'"):
        sampling.settings.with_settings(gen.config, t5={"d_model": 8})


def test_run_args_from_flags_and_a_bad_mode():
    """main.py hands cli.run a typed RunArgs built from its flags; unknown modes are refused before any work."""
    from lumiere_jax import config as config_lib

    config = config_lib.load_config_file(os.path.join(ROOT, "configs", "tiny.py"), "video")
    args = cli.RunArgs.of(types.SimpleNamespace(mode="eval", seed=3, unrelated="x"))
    assert (args.mode, args.seed, args.eval_split, args.multidiffusion) == ("eval", 3, None, None)
    assert cli.RunArgs.of(args) is args
    resolved = args.resolve(config)  # what was not given comes from the config
    assert (resolved.eval_split, resolved.multidiffusion, resolved.task, resolved.strength) == (
        "held_out",
        True,
        None,
        0.6,
    )
    with pytest.raises(ValueError, match="unknown --mode 'predict'; choose one of .*'sample'"):
        cli.run(config, cli.RunArgs(mode="predict"))


def test_task_presets_and_flags_over_them():
    """configs/moving_shapes.py:sdedit and :i2v set config.task; --config.task.* edits it; a flag given wins."""
    from lumiere_jax import config as config_lib

    sdedit = config_lib.load_config_file(os.path.join(ROOT, "configs", "moving_shapes.py"), "sdedit")
    assert (sdedit.stage, sdedit.task.name) == ("video", "sdedit")
    i2v = config_lib.load_config_file(os.path.join(ROOT, "configs", "moving_shapes.py"), "i2v")
    assert (i2v.stage, i2v.task.name, i2v.model.unet.in_channels) == ("conditional", "i2v", 7)
    sdedit.task.strength = 0.3
    sdedit.task.outpaint_padding = (4,)
    assert cli.RunArgs(mode="sample").resolve(sdedit).strength == 0.3
    assert cli.RunArgs(mode="sample").resolve(sdedit).outpaint_padding == ["4"]
    given = cli.RunArgs(mode="sample", task="i2v", strength=0.9, multidiffusion=False).resolve(sdedit)
    assert (given.task, given.strength, given.multidiffusion) == ("i2v", 0.9, False)
    stored_before_sections = config_lib.default_config()  # a run config that predates the task section
    with stored_before_sections.unlocked():
        del stored_before_sections["task"]
    assert cli.RunArgs(mode="sample").resolve(stored_before_sections).strength == 0.6
