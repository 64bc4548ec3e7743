"""Sampling API: shapes, per-sample seeds, outputs on disk."""

import json
import os

import numpy as np
import pytest

from lumiere_jax import sampling
from lumiere_jax.diffusion import guidance
from lumiere_jax.sampling import loop


@pytest.fixture(scope="module")
def generator(video_run):
    return sampling.Generator.load(video_run[0])


def test_generate_shapes_and_per_sample_seeds(generator):
    prompts = ["a red square moving left", "a blue circle moving up"]
    r = generator.generate(prompts, num_samples=1, seed=5, progress=False)
    assert r.videos.shape == (2, 4, 8, 8, 3) and r.videos.dtype == np.uint8
    assert r.seeds == [5, 6] and r.prompts == prompts
    alone = generator.generate(prompts[1:], seed=6, progress=False)
    np.testing.assert_array_equal(alone.videos[0], r.videos[1])  # reproducible on its own
    other = generator.generate(prompts[1:], seed=7, progress=False)
    assert not np.array_equal(other.videos[0], r.videos[1])
    with pytest.raises(ValueError, match="unknown sampling setting"):
        generator.generate(prompts, cfg_scale=2.0)


def test_generators_of_one_model_share_their_compiled_steps(generator, video_run, t2i_run):
    """A second Generator of the same model reuses the first one's jitted step (no new trace) and
    still samples with its OWN parameters; another model gets its own step."""
    from tests.helpers import perturbed

    again = sampling.Generator.load(video_run[0])
    other = sampling.Generator(again.model, perturbed(again.params, 3), again.config)
    kind = guidance.guidance_kind(generator.guidance(generator.settings()))
    assert again._step_fn(kind) is generator._step_fn(kind) is other._step_fn(kind)
    assert sampling.Generator.load(t2i_run[0])._step_fn(kind) is not generator._step_fn(kind)
    kw = dict(seed=0, progress=False, num_steps=2, output_type="float")
    ref = generator.generate(["a red square moving left"], **kw).videos
    np.testing.assert_array_equal(again.generate(["a red square moving left"], **kw).videos, ref)
    assert np.abs(other.generate(["a red square moving left"], **kw).videos - ref).max() > 1e-3


def test_one_compiled_step_serves_every_num_steps_and_guidance_scale(generator):
    """A notebook's knobs do not recompile: other numbers of steps (the sampler is padded) and
    other guidance scales (traced arguments) run the step compiled first; they still change the video."""
    prompt = ["a blue circle moving up"]
    kw = dict(seed=3, progress=False, output_type="float")
    step = generator._step_fn("cfg")
    first = generator.generate(prompt, num_steps=2, guidance_scale=3.0, **kw).videos
    compiled = step._cache_size()
    more_steps = generator.generate(prompt, num_steps=5, guidance_scale=3.0, **kw).videos
    other_scale = generator.generate(prompt, num_steps=2, guidance_scale=6.5, **kw).videos
    assert step._cache_size() == compiled
    assert np.abs(more_steps - first).max() > 1e-3 and np.abs(other_scale - first).max() > 1e-3
    np.testing.assert_array_equal(generator.generate(prompt, num_steps=2, guidance_scale=3.0, **kw).videos, first)


@pytest.mark.parametrize("params, on_mesh", [("train_state", False), ("train_state", True), ("export", False)])
def test_a_call_compiles_its_step_once(video_run, params, on_mesh, monkeypatch):
    """Step 0 runs the program of the steps after it (before, it compiled one of its own for its
    noise: uncommitted where the step's outputs are committed, or without the mesh the parameters
    carry in their types). Parameters of a train state (on the run's mesh, as `main.py` samples
    during training) and of an export; on one device and on a mesh (of one device here:
    tests/parallel splits the batch over several)."""
    from lumiere_jax.models.diffusion_model import DiffusionModel
    from lumiere_jax.sampling import engine
    from lumiere_jax.train import trainer, validation
    from tests.helpers import compiles_of

    workdir, config, state = video_run
    monkeypatch.setattr(engine, "_SHARED_STEPS", type(engine._SHARED_STEPS)())  # a step of its own
    mesh = config.mesh if on_mesh else None
    if params == "export":
        gen = sampling.Generator.load(workdir, mesh)
    else:
        model = DiffusionModel(validation.validate(config))
        gen = sampling.Generator(model, state.ema_params, trainer.config_json(config), mesh)
    # DPM-Solver++ carries a state from step to step: on the mesh, where the state is pinned too
    for sampler in ("dpmpp_2m",) if on_mesh else ("ddim",):
        with compiles_of("jit(step)") as compiles:
            gen.generate(["a red square moving left"] * 2, seed=0, progress=False, num_steps=3, sampler=sampler)
        assert len(compiles) == 1, (sampler, compiles)


def test_high_noise_guidance_scale_applies_from_its_timestep(generator):
    """The guidance interval reaches the loop users run: a high-noise scale equal to the base one
    changes nothing, another one changes the video, and one that starts above every sampled
    timestep is never used."""
    kw = dict(seed=0, progress=False, num_steps=3, output_type="float")
    base = generator.generate(["a red square moving left"], **kw).videos
    same = generator.generate(["a red square moving left"], high_noise_guidance_scale=3.0, **kw).videos
    high = generator.generate(["a red square moving left"], high_noise_guidance_scale=8.0, **kw).videos
    never = generator.generate(
        ["a red square moving left"], high_noise_guidance_scale=8.0, high_noise_from=1.0, **kw
    ).videos
    assert generator.settings()["guidance_scale"] == 3.0
    np.testing.assert_array_equal(same, base)
    np.testing.assert_array_equal(never, base)  # trailing DDIM's first timestep is 999 < 1.0 * T
    assert np.abs(high - base).max() > 1e-3


def test_write_outputs(generator, tmp_path):
    r = generator.generate(
        ["a white triangle moving down"], num_samples=2, seed=0, progress=False, sampler="dpmpp_2m", num_steps=2
    )
    manifest = sampling.write_outputs(r, str(tmp_path), fps=4)
    on_disk = json.load(open(tmp_path / "manifest.json"))
    assert manifest == on_disk and len(on_disk) == 2
    assert on_disk[1]["seed"] == 1 and on_disk[1]["sampler"] == "dpmpp_2m" and on_disk[1]["num_steps"] == 2
    for entry in on_disk:
        for key in ("mp4", "gif", "npy"):
            assert os.path.getsize(tmp_path / entry[key]) > 0
    np.testing.assert_array_equal(np.load(tmp_path / "0001.npy"), r.videos[1])
    assert os.path.getsize(tmp_path / "contact_sheet.png") > 0


def test_evaluate_split_is_strict_json(generator, video_run):
    from lumiere_jax.data import moving_shapes
    from lumiere_jax.eval import evaluate

    scores = evaluate.evaluate_split(generator, video_run[1], "held_out", 2, seed=0, num_steps=2)
    assert scores["num_videos"] == 2 and scores["split"] == "held_out"
    assert all(moving_shapes.parse_caption(v["prompt"]) in moving_shapes.HELD_OUT for v in scores["per_video"])
    text = json.dumps(evaluate.json_safe(scores), allow_nan=False)  # raises on NaN
    assert "color_accuracy" in text
    assert evaluate.format_scores(scores).startswith("[held_out, 2 videos]")


@pytest.mark.parametrize("clipped", [True, False])
def test_generator_loop_equals_the_tested_sampler_loop(generator, clipped):
    """The loop users run (Generator: a Python loop over a jitted guided step) computes what
    `loop.sample` (what the sampler tests check) computes from the same x_T, with
    the shipped default DDIM + dynamic thresholding + CFG, for both DDIM direction-term options."""
    import jax
    import jax.numpy as jnp

    from lumiere_jax.diffusion import guidance

    prompts, seeds = ["a red square moving left", "a blue circle moving up"], [3, 4]
    r = generator.generate(
        prompts,
        seed=3,
        progress=False,
        num_steps=4,
        guidance_scale=3.0,
        sampler="ddim",
        thresholding=True,
        use_clipped_model_output=clipped,
    )
    s = generator.settings(
        num_steps=4, guidance_scale=3.0, sampler="ddim", thresholding=True, use_clipped_model_output=clipped
    )
    model, params = generator.model, generator.params
    (emb, mask), (null_emb, null_mask) = generator.prompt_context(prompts)
    model_fn = guidance.cfg_model_fn(
        lambda x, t, c: model.denoise(params, x, t, c[0], c[1]), (emb, mask), (null_emb, null_mask), 3.0
    )
    shape = model.config.sample_shape(1)[1:]
    x_T = jnp.stack([jax.random.normal(jax.random.PRNGKey(k), shape) for k in seeds])
    ref = loop.sample(
        model_fn,
        x_T,
        generator.sched,
        sampler="ddim",
        num_steps=4,
        timestep_spacing=s["timestep_spacing"],
        prediction_type=generator.config["diffusion"]["prediction_type"],
        thresholding=True,
        use_clipped_model_output=clipped,
    )
    from lumiere_jax.data import video_io

    got = r.videos.astype(int)
    want = video_io.to_uint8(np.asarray(ref)).astype(int)
    assert np.abs(got - want).max() <= 1  # float32 rounding at the uint8 boundary
    assert r.settings["use_clipped_model_output"] is clipped
