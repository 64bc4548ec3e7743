"""Conditional applications (i2v, inpaint, outpaint, cinemagraph), SDEdit, stylized generation:
Python API, CLI and the evaluation of the checks, on the tiny shared runs."""
import json

import jax
import numpy as np
import pytest

from lumiere_jax import cli, pipeline
from lumiere_jax.data import video_io
from lumiere_jax.diffusion import samplers, schedules
from lumiere_jax.eval import conditional as cond_eval
from lumiere_jax.models.stunet import SPATIAL, TEMPORAL

PROMPT = "a red square moving left"


@pytest.fixture(scope="module")
def gen(conditional_run):
    return pipeline.Generator.load(conditional_run[0])


@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)


def test_paste_known_keeps_known_pixels_and_mask_reaches_model(gen, clip):
    known, mask = np.broadcast_to(clip, (4, 8, 8, 3)), np.zeros((4, 8, 8), bool)
    mask[0] = True
    raw = gen.conditional(known, mask, PROMPT, seed=1, progress=False, num_steps=2)
    pasted = gen.conditional(known, mask, PROMPT, seed=1, progress=False, num_steps=2, paste_known=True)
    np.testing.assert_array_equal(pasted.videos[0, 0], clip[0])
    np.testing.assert_array_equal(pasted.videos[0, 1:], raw.videos[0, 1:])
    assert raw.known.shape == (1, 4, 8, 8, 3) and raw.mask[0, 0].all() and not raw.mask[0, 1:].any()
    # The conditioning reaches the model: another known frame changes the output.
    other = gen.conditional(255 - known, mask, PROMPT, seed=1, progress=False, num_steps=2)
    assert not np.array_equal(other.videos, raw.videos)


def test_known_replacement_steers_every_step_but_the_last(gen, clip):
    """The replacement method changes the sampling path (the known pixels are re-noised from the known
    content after every step) but never the last step, whose output stays the model's own."""
    known, mask = np.broadcast_to(clip, (4, 8, 8, 3)), np.zeros((4, 8, 8), bool)
    mask[0] = True
    run = lambda **kw: gen.conditional(known, mask, PROMPT, seed=3, progress=False, **kw).videos
    np.testing.assert_array_equal(run(num_steps=1, known_replacement=True),
                                  run(num_steps=1, known_replacement=False))
    replaced, raw = run(num_steps=3, known_replacement=True), run(num_steps=3, known_replacement=False)
    assert not np.array_equal(replaced, raw)
    assert gen.settings()["known_replacement"] is True       # the library default
    with pytest.raises(ValueError, match="known_replacment"):
        gen.conditional(known, mask, PROMPT, progress=False, known_replacment=True)


def test_tasks_build_the_right_masks(gen, clip):
    r = gen.i2v(clip[0], PROMPT, progress=False, num_steps=2, num_samples=2)
    assert r.videos.shape == (2, 4, 8, 8, 3) and r.mask[:, 0].all() and not r.mask[:, 1:].any()
    region = np.zeros((8, 8), np.uint8)
    region[2:6, 2:6] = 255                                  # white = generate
    r = gen.inpaint(clip, region, PROMPT, progress=False, num_steps=2)
    assert (r.mask[0] == (region < 128)[None]).all()
    np.testing.assert_array_equal(r.known[0][r.mask[0]], clip[r.mask[0]])
    r = gen.outpaint(clip, PROMPT, padding=2, progress=False, num_steps=2)
    assert r.mask[0, :, 2:6, 2:6].all() and not r.mask[0, :, :2].any() and not r.mask[0, :, :, 6:].any()
    r = gen.cinemagraph(clip[0], region, PROMPT, progress=False, num_steps=2)
    assert r.mask[0, 0].all() and (r.mask[0, 1:] == (region < 128)[None]).all()
    # A float mask is binarised at the config's threshold (0.5): 0.4 = keep, 0.6 = generate.
    soft = np.full((8, 8), 0.4)
    soft[:4] = 0.6
    r = gen.inpaint(clip, soft, PROMPT, progress=False, num_steps=2)
    assert not r.mask[0, :, :4].any() and r.mask[0, :, 4:].all()


def test_task_input_validation(gen, clip):
    with pytest.raises(ValueError, match="the model generates exactly 4"):
        gen.inpaint(clip[:3], np.ones((8, 8), bool), PROMPT, progress=False)
    big = np.zeros((16, 12, 3), np.uint8)
    with pytest.raises(ValueError, match="16x12"):
        gen.i2v(big, PROMPT, resize=False, progress=False)
    assert gen.i2v(big, PROMPT, progress=False, num_steps=1).videos.shape == (1, 4, 8, 8, 3)   # resized
    with pytest.raises(ValueError, match="empty"):
        gen.inpaint(clip, np.zeros((8, 8), bool), PROMPT, progress=False)
    with pytest.raises(ValueError, match="leaves no known area"):
        gen.outpaint(clip, PROMPT, padding=4, progress=False)
    with pytest.raises(ValueError, match="bool of shape"):
        gen.conditional(clip, np.ones((4, 8, 8)), PROMPT, progress=False)


def test_unconditional_generation_and_wrong_models(gen, video_run, clip):
    assert gen.generate([PROMPT], num_steps=1, progress=False).videos.shape == (1, 4, 8, 8, 3)
    base = pipeline.Generator.load(video_run[0])
    with pytest.raises(ValueError, match="needs a conditional model"):
        base.i2v(clip[0], PROMPT, progress=False)


def test_tail_sampler_continues_the_full_run_exactly():
    sched = schedules.get_schedule("squaredcos_cap_v2")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3)).astype(np.float32)
    model = lambda x, t: 0.5 * x + 1e-3 * t[:, None]
    for name in ("ddim", "dpmpp_2m"):
        s = samplers.get_sampler(name, sched, 6, timestep_spacing="trailing", prediction_type="epsilon")
        full, state = x, s.init_state(x)
        for i in range(6):
            full, state = s.step(state, i, full, model(full, np.full((1,), s.timesteps[i])), None)
        part, state = x, s.init_state(x)
        for i in range(2):
            part, state = s.step(state, i, part, model(part, np.full((1,), s.timesteps[i])), None)
        tail = samplers.tail(s, 2)
        assert tail.num_steps == 4 and int(tail.timesteps[0]) == int(s.timesteps[2])
        if name == "ddim":      # stateless: the tail continues the run exactly
            for i in range(4):
                part, _ = tail.step((), i, part, model(part, np.full((1,), tail.timesteps[i])), None)
            np.testing.assert_allclose(np.asarray(part), np.asarray(full), rtol=1e-6)
        else:                   # no previous prediction: the tail's first step is first order
            assert float(tail.coefs["d1_coef"][0]) == 0.0 and float(s.coefs["d1_coef"][2]) != 0.0
    s = samplers.get_sampler("ddim", sched, 4, timestep_spacing="trailing")
    assert [samplers.start_index(s, v, 1000) for v in (1.0, 0.75, 0.5, 0.2)] == [0, 1, 2, 4]
    with pytest.raises(ValueError, match="strength"):
        samplers.start_index(s, 1.5, 1000)


def test_sdedit(video_run, clip):
    base = pipeline.Generator.load(video_run[0])
    r = base.sdedit(clip, PROMPT, strength=0.5, num_steps=4, progress=False, seed=3)
    assert r.videos.shape == (1, 4, 8, 8, 3) and r.settings["start_step"] == 2
    np.testing.assert_array_equal(r.low_res[0], clip)
    again = base.sdedit(clip, PROMPT, strength=0.5, num_steps=4, progress=False, seed=3)
    np.testing.assert_array_equal(r.videos, again.videos)
    with pytest.warns(UserWarning, match="unchanged"):
        same = base.sdedit(clip, PROMPT, strength=0.0, num_steps=4, progress=False)
    np.testing.assert_array_equal(same.videos[0], clip)
    with pytest.raises(ValueError, match="exactly 4"):
        base.sdedit(clip[:2], PROMPT, strength=0.5, progress=False)


def test_style_interpolation_through_the_generator(video_run, t2i_run):
    base = pipeline.Generator.load(video_run[0])
    styled = base.with_style(t2i_run[0], 1.0)
    style_params, _ = pipeline.checkpoint.load(t2i_run[0])
    np.testing.assert_array_equal(np.asarray(styled.params["denoiser"][SPATIAL]["conv_in"]["kernel"]),
                                  np.asarray(style_params["denoiser"]["conv_in"]["kernel"]))
    for a, b in zip(jax.tree_util.tree_leaves(styled.params["denoiser"][TEMPORAL]),
                    jax.tree_util.tree_leaves(base.params["denoiser"][TEMPORAL])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert styled.config["style"]["alpha"] == 1.0
    with pytest.raises(ValueError, match="alpha"):
        base.with_style(t2i_run[0], 1.5)


def _flags(**kw):
    base = dict(mode="sample", workdir=None, checkpoint=None, num_steps=2, guidance_scale=None, sampler=None,
                seed=0, prompt=[PROMPT], prompts_file=None, output_dir=None, num_samples=None, input_video=[],
                multidiffusion=True, task=None, image=None, mask=None, outpaint_padding=None,
                outpaint_direction=None, outpaint_amount=0.25, strength=0.6, resize_inputs=True, paste_known=False,
                style_checkpoint=None, style_alpha=0.8, eval_split="held_out", eval_num_prompts=1)
    return cli.RunArgs(**{**base, **kw})


def test_cli_tasks_from_files(conditional_run, video_run, clip, tmp_path):
    workdir, config, _ = conditional_run
    image = video_io.save_png(str(tmp_path / "image.png"), clip[0])
    region = np.zeros((8, 8, 3), np.uint8)
    region[:, 4:] = 255
    mask = video_io.save_png(str(tmp_path / "mask.png"), region)
    video = video_io.write_npy(str(tmp_path / "clip.npy"), clip)
    out = tmp_path / "i2v"
    r = cli.run(config, _flags(checkpoint=workdir, task="i2v", image=image, output_dir=str(out)))
    manifest = json.load(open(out / "manifest.json"))
    np.testing.assert_array_equal(np.load(out / manifest[0]["known_npy"])[0], clip[0])
    assert np.load(out / manifest[0]["mask_npy"])[0].all() and r.videos.shape == (1, 4, 8, 8, 3)
    r = cli.run(config, _flags(checkpoint=workdir, task="cinemagraph", image=image, mask=mask,
                               output_dir=str(tmp_path / "cine")))
    assert r.mask[0, 1:, :, :4].all() and not r.mask[0, 1:, :, 4:].any()
    r = cli.run(config, _flags(checkpoint=workdir, task="inpaint", input_video=[video], mask=mask,
                               output_dir=str(tmp_path / "inp"), paste_known=True))
    np.testing.assert_array_equal(r.videos[0][..., :4, :], clip[..., :4, :])
    r = cli.run(config, _flags(checkpoint=workdir, task="outpaint", input_video=[video], outpaint_direction="left",
                               outpaint_amount=0.5, output_dir=str(tmp_path / "out")))
    assert not r.mask[0, :, :, :4].any() and r.mask[0, :, :, 4:].all()
    with pytest.raises(ValueError, match="needs --image"):
        cli.run(config, _flags(checkpoint=workdir, task="i2v"))
    with pytest.raises(ValueError, match="exactly one of --outpaint_padding"):
        cli.run(config, _flags(checkpoint=workdir, task="outpaint", input_video=[video]))
    with pytest.raises(FileNotFoundError, match="nope.png"):
        cli.run(config, _flags(checkpoint=workdir, task="i2v", image=str(tmp_path / "nope.png")))
    with pytest.raises(ValueError, match="needs a conditional model"):
        cli.run(video_run[1], _flags(checkpoint=video_run[0], task="i2v", image=image))
    r = cli.run(video_run[1], _flags(checkpoint=video_run[0], task="sdedit", input_video=[video], strength=0.5,
                                     output_dir=str(tmp_path / "sd")))
    assert r.settings["strength"] == 0.5


def test_eval_of_the_tasks(conditional_run, tmp_path):
    workdir, config, _ = conditional_run
    scores = cli.run(config, _flags(mode="eval", checkpoint=workdir, output_dir=str(tmp_path)))["held_out"]
    assert scores["num_videos"] == 1 and set(cond_eval.TASKS) <= set(scores)
    assert set(scores["sdedit"]) == {f"{s:g}" for s in cond_eval.SDEDIT_STRENGTHS}
    on_disk = json.load(open(tmp_path / "eval_tasks_held_out.json"))
    assert on_disk["i2v"]["first_frame_psnr"]["mean"] == pytest.approx(scores["i2v"]["first_frame_psnr"]["mean"])
    assert on_disk["settings"]["num_steps"] == 2          # the effective settings (--num_steps=2)
