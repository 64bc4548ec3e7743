"""Text-to-video's diffusers-style arguments on the tiny video run: negative prompts and
precomputed embeddings, latents, a step callback that stops early, output types, seed lists, and
one progress bar that counts finished steps."""

import jax
import numpy as np
import pytest

from lumiere_jax import sampling
from lumiere_jax.diffusion import samplers, schedules
from lumiere_jax.sampling import loop

PROMPTS = ["a red square moving left", "a blue circle moving up"]
KW = dict(progress=False, num_steps=3, seed=4)


@pytest.fixture(scope="module")
def gen(video_run):
    return sampling.Generator.load(video_run[0])


@pytest.fixture(scope="module")
def base(gen):
    return gen.generate(PROMPTS, output_type="float", **KW).videos


def test_negative_prompt_is_the_unconditional_branch(gen, base):
    neg = gen.generate(PROMPTS, negative_prompt="a green triangle moving down", output_type="float", **KW).videos
    assert np.abs(neg - base).max() > 1e-3  # it changes the samples
    (emb, mask), _ = gen.prompt_context(["a green triangle moving down"] * 2)
    same = gen.generate(
        PROMPTS, negative_prompt_embeds=(np.asarray(emb), np.asarray(mask)), output_type="float", **KW
    ).videos
    np.testing.assert_allclose(same, neg, atol=1e-5)
    _, (null, null_mask) = gen.prompt_context(PROMPTS)  # the learned null, given explicitly
    explicit = gen.generate(
        PROMPTS, negative_prompt_embeds=(np.asarray(null), np.asarray(null_mask)), output_type="float", **KW
    ).videos
    np.testing.assert_allclose(explicit, base, atol=1e-5)
    (text, text_mask), _ = gen.prompt_context(PROMPTS)
    embeds = gen.generate(
        ["", ""], prompt_embeds=(np.asarray(text), np.asarray(text_mask)), output_type="float", **KW
    ).videos
    np.testing.assert_allclose(embeds, base, atol=1e-5)
    with pytest.raises(ValueError, match="3 negative prompts for 2 prompts"):
        gen.generate(PROMPTS, negative_prompt=["a", "b", "c"], **KW)
    with pytest.raises(ValueError, match=r"prompt_embeds must be \[2, length, width\]"):
        gen.generate(PROMPTS, prompt_embeds=np.zeros((3, 4, 8)), **KW)


def test_latents_reproduce_the_seeded_run(gen, base):
    shape = gen.model.config.sample_shape(1)[1:]
    latents = np.stack([np.asarray(jax.random.normal(jax.random.PRNGKey(s), shape)) for s in (4, 5)])
    again = gen.generate(PROMPTS, latents=latents, output_type="float", **KW).videos
    np.testing.assert_array_equal(again, base)
    other = gen.generate(PROMPTS, latents=latents[::-1], output_type="float", **KW).videos
    assert np.abs(other - base).max() > 1e-3
    with pytest.raises(ValueError, match="latents must be"):
        gen.generate(PROMPTS, latents=latents[:1], **KW)


def test_callback_sees_x0_and_stops_after_k_steps(gen):
    calls = []

    def stop_after_two(step, timestep, state):
        calls.append((step, timestep, state["x0"].shape, state["batch"]))
        return step == 1

    r = gen.generate(
        PROMPTS, num_samples=2, batch_size=2, callback_on_step_end=stop_after_two, output_type="float", **KW
    )
    assert [c[0] for c in calls] == [0, 1]  # two steps, then stopped
    assert calls[0][2] == (2, *gen.model.config.sample_shape(1)[1:]) and calls[0][3] == 0
    assert r.settings["stopped_at"] == {"batch": 0, "step": 1}
    assert r.videos.shape[0] == 2 and r.seeds == [4, 5]  # the later batch was not sampled


def test_output_types_and_seed_lists(gen, base):
    u8 = gen.generate(PROMPTS, **KW).videos
    assert u8.dtype == np.uint8
    pil = gen.generate(PROMPTS, output_type="pil", **KW).videos
    assert len(pil) == 2 and len(pil[0]) == u8.shape[1] and np.array_equal(np.asarray(pil[1][2]), u8[1, 2])
    swapped = gen.generate(PROMPTS[::-1], seeds=[5, 4], output_type="float", progress=False, num_steps=3).videos
    # Each sample follows its own seed wherever it sits in the batch. Not bit for bit: XLA:CPU may
    # round a row differently by its batch position (seen on an AVX2-only host, 2e-6); a seed mix-up
    # differs by O(1).
    np.testing.assert_allclose(swapped[::-1], base, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="output_type must be one of"):
        gen.generate(PROMPTS, output_type="np", **KW)
    with pytest.raises(ValueError, match="1 seeds for 2 samples"):
        gen.generate(PROMPTS, seeds=[1], **KW)


def test_progress_counts_finished_steps():
    sched = schedules.get_schedule("squaredcos_cap_v2")
    sampler = samplers.get_sampler("ddim", sched, 5)
    x = jax.numpy.ones((1, 2, 4, 4, 3))

    class Bar:
        count = 0

        def update(self, n=1):
            self.count += n

    bar = Bar()
    loop.run(loop.make_step(lambda args, x, t: 0.1 * x), sampler, x, progress=bar)
    assert bar.count == 5
