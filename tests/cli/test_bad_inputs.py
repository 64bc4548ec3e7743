"""Bad inputs are refused before anything is built, compiled or sampled, with a message naming
the value; output folders never end up inconsistent (issue: nothing silently wrong, nothing lost)."""

import json
import os

import numpy as np
import pytest

from lumiere_jax import cli, sampling
from lumiere_jax.sampling import outputs
from lumiere_jax.train import validation
from tests.helpers import load_config

PROMPT = "a red square moving left"


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("train.keep_checkpoints", 0, r"config.train.keep_checkpoints must be >= 1, got 0"),
        ("train.checkpoint_every", 0, r"config.train.checkpoint_every must be >= 1, got 0"),
        ("train.log_every", 0, r"config.train.log_every must be >= 1, got 0"),
        ("train.num_steps", 0, r"config.train.num_steps must be >= 1, got 0"),
        ("train.num_steps", -3, r"config.train.num_steps must be >= 1, got -3"),
        ("train.ema_decay", 1.0, r"config.train.ema_decay must be >= 0.0 and < 1.0, got 1.0"),
        ("train.seed", 2**40, r"config.train.seed must be >= 0 and <= 2147483647"),
        ("optim.lr", float("nan"), r"config.optim.lr must be finite, got nan"),
        ("optim.lr", 0.0, r"config.optim.lr must be > 0.0, got 0.0"),
        ("sample.fps", 0, r"config.sample.fps must be >= 1, got 0"),
        ("sample.num_samples", 0, r"config.sample.num_samples must be >= 1, got 0"),
        ("data.global_batch", 0, r"config.data.global_batch must be >= 1, got 0"),
    ],
)
def test_config_values_are_range_checked(key, value, match):
    config = load_config("tiny", "t2i", "/nonexistent")
    section, name = key.split(".")
    config[section][name] = value
    with pytest.raises(ValueError, match=match):
        validation.validate(config)


@pytest.fixture(scope="module")
def gen(video_run):
    return sampling.Generator.load(video_run[0])


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(guidance_scale=float("nan")), "guidance_scale must be finite, got nan"),
        (dict(guidance_scale=-1.0), "guidance_scale must be >= 0.0, got -1.0"),
        (dict(high_noise_guidance_scale=-2.0), "high_noise_guidance_scale must be >= 0.0, got -2.0"),
        (dict(high_noise_guidance_scale=8.0, high_noise_from=0.0), r"high_noise_from must be > 0.0 and <= 1.0"),
        (dict(num_steps=0), "num_steps must be >= 1, got 0"),
        (dict(num_steps=2.5), "num_steps must be an integer, got 2.5"),
        (dict(eta=float("inf")), "eta must be finite"),
        (dict(sampler="euler"), r"sampler must be one of \('ddim', 'dpmpp_2m', 'ddpm'\), got 'euler'"),
        (dict(timestep_spacing="even"), "timestep_spacing must be one of"),
        (dict(num_samples=0), "num_samples must be an integer >= 1, got 0"),
        (dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
        (dict(seed=-1), "seed must be an integer .* got -1"),
        (dict(seed=2**31 - 1, num_samples=2), r"seed must be an integer with seed \.\. seed \+ 1"),
    ],
)
def test_sampling_arguments_are_checked_before_sampling(gen, kw, match):
    with pytest.raises(ValueError, match=match):
        gen.generate([PROMPT], progress=False, **kw)


def test_sdedit_strength_range(gen):
    clip = np.zeros((4, 8, 8, 3), np.uint8)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="strength must be in"):
            gen.sdedit(clip, PROMPT, strength=bad, progress=False)


def test_output_folder_is_checked_first(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "0000.mp4").write_bytes(b"x")
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"is not empty \(0000.mp4, notes.txt\).*--output_exists=append"):
        outputs.prepare_output_dir(str(tmp_path / "full"))
    assert outputs.prepare_output_dir(str(tmp_path / "full"), "overwrite") == []
    assert sorted(os.listdir(tmp_path / "full")) == ["notes.txt"]  # only earlier samples are removed
    (tmp_path / "file").write_text("")
    with pytest.raises(PermissionError, match="cannot write to the output folder"):
        outputs.prepare_output_dir(str(tmp_path / "file" / "out"))
    with pytest.raises(ValueError, match="output_exists must be one of"):
        outputs.prepare_output_dir(str(tmp_path / "new"), "merge")


def test_prompts_files(tmp_path):
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ValueError, match=f"--prompts_file {tmp_path / 'bin'} is not UTF-8"):
        cli.read_prompts([], str(tmp_path / "bin"))
    (tmp_path / "empty").write_text("\n  \n")
    with pytest.raises(ValueError, match="holds no prompts"):
        cli.read_prompts([], str(tmp_path / "empty"))
    (tmp_path / "bom").write_bytes("\ufeffa red square moving left\n".encode("utf-8"))
    assert cli.read_prompts([], str(tmp_path / "bom")) == [PROMPT]


def test_sampling_to_a_folder_writes_per_batch_and_a_rerun_finishes_the_work(gen, tmp_path):
    out = str(tmp_path / "out")
    prompts = [PROMPT, "a blue circle moving up", "a green square moving down"]
    kw = dict(fps=8, batch_size=2)
    gen.config = {**gen.config, "sample": {**gen.config["sample"], "num_steps": 2}}
    r = cli.sample_to_folder(gen, prompts[:2], 1, 5, out, **kw)
    assert r.seeds == [5, 6]
    with pytest.raises(FileExistsError, match="not empty"):
        cli.sample_to_folder(gen, prompts, 1, 5, out, **kw)
    again = cli.sample_to_folder(gen, prompts, 1, 5, out, exists="append", **kw)  # only the third is new
    assert again.seeds == [7] and again.prompts == prompts[2:]
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert [(e["prompt"], e["seed"]) for e in manifest] == list(zip(prompts, [5, 6, 7]))
    listed = {e[k] for e in manifest for k in ("mp4", "gif", "npy")} | {"manifest.json", "contact_sheet.png"}
    assert set(os.listdir(out)) == listed
    alone = gen.generate(prompts[2:], seed=7, progress=False)
    np.testing.assert_array_equal(np.load(os.path.join(out, "0002.npy")), alone.videos[0])
    none = cli.sample_to_folder(gen, prompts, 1, 5, out, exists="append", **kw)
    assert none.seeds == []
    cli.sample_to_folder(gen, prompts[:1], 1, 9, out, exists="overwrite", **kw)
    assert [e["seed"] for e in json.load(open(os.path.join(out, "manifest.json")))] == [9]
    assert sorted(os.listdir(out)) == ["0000.gif", "0000.mp4", "0000.npy", "contact_sheet.png", "manifest.json"]


def test_a_prompt_longer_than_the_tokenizer_warns(gen):
    long = PROMPT + " " * 40 + "and then it turns blue"
    with pytest.warns(UserWarning, match=r"longer than the text encoder's \d+ tokens .*max_length"):
        gen.prompt_context([long])


def test_array_inputs_must_be_uint8_or_float_in_model_range(conditional_run):
    from lumiere_jax.sampling import engine, tasks

    clip = np.zeros((4, 8, 8, 3), np.uint8)
    for bad, match in (
        (clip.astype(np.float32) + 255.0, r"must be in \[-1, 1\] .*got values in \[255, 255\]"),
        (clip.astype(np.int64), "must be uint8 .* got dtype int64"),
        (np.full(clip.shape, np.nan, np.float32), "non-finite"),
    ):
        with pytest.raises(ValueError, match=match):
            engine.to_model_range(bad, "known content")
    np.testing.assert_array_equal(engine.to_model_range(np.array([0, 255], np.uint8), "x"), [-1.0, 1.0])
    cond = sampling.Generator.load(conditional_run[0])
    mask = np.zeros((4, 8, 8), bool)
    mask[0] = True
    with pytest.raises(ValueError, match=r"float known content must be in \[-1, 1\]"):
        cond.conditional(clip.astype(np.float32) + 255.0, mask, PROMPT, progress=False)
    with pytest.raises(ValueError, match="inpainting mask covers the whole video"):
        tasks.inpaint(clip, np.ones((8, 8), bool), 4)


def test_a_checkpoint_of_another_stage_is_announced(t2i_run, video_run, tmp_path, capsys):
    r = cli.run(
        video_run[1],
        cli.RunArgs(
            mode="sample",
            checkpoint=t2i_run[0],
            prompt=[PROMPT],
            num_samples=1,
            num_steps=1,
            output_dir=str(tmp_path / "img"),
        ),
    )
    out = capsys.readouterr().out
    assert "holds a 't2i' model, the config file is for stage 'video'" in out
    assert "it makes images (written as 1-frame videos)" in out and r.videos.ndim == 4
