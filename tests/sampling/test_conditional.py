"""The conditional model's front-ends (i2v, inpaint, outpaint, cinemagraph, known content + mask)
on the tiny shared runs."""

import numpy as np
import pytest

from lumiere_jax import sampling

PROMPT = "a red square moving left"


@pytest.fixture(scope="module")
def gen(conditional_run):
    return sampling.Generator.load(conditional_run[0])


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
    np.testing.assert_array_equal(run(num_steps=1, known_replacement=True), run(num_steps=1, known_replacement=False))
    replaced, raw = run(num_steps=3, known_replacement=True), run(num_steps=3, known_replacement=False)
    assert not np.array_equal(replaced, raw)
    assert gen.settings()["known_replacement"] is True  # the library default
    with pytest.raises(ValueError, match="known_replacment"):
        gen.conditional(known, mask, PROMPT, progress=False, known_replacment=True)


def test_tasks_build_the_right_masks(gen, clip):
    r = gen.i2v(clip[0], PROMPT, progress=False, num_steps=2, num_samples=2)
    assert r.videos.shape == (2, 4, 8, 8, 3) and r.mask[:, 0].all() and not r.mask[:, 1:].any()
    region = np.zeros((8, 8), np.uint8)
    region[2:6, 2:6] = 255  # white = generate
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
    assert gen.i2v(big, PROMPT, progress=False, num_steps=1).videos.shape == (1, 4, 8, 8, 3)  # resized
    with pytest.raises(ValueError, match="empty"):
        gen.inpaint(clip, np.zeros((8, 8), bool), PROMPT, progress=False)
    with pytest.raises(ValueError, match="leaves no known area"):
        gen.outpaint(clip, PROMPT, padding=4, progress=False)
    with pytest.raises(ValueError, match="bool of shape"):
        gen.conditional(clip, np.ones((4, 8, 8)), PROMPT, progress=False)


def test_unconditional_generation_and_wrong_models(gen, video_run, clip):
    assert gen.generate([PROMPT], num_steps=1, progress=False).videos.shape == (1, 4, 8, 8, 3)
    base = sampling.Generator.load(video_run[0])
    with pytest.raises(ValueError, match="needs a conditional model"):
        base.i2v(clip[0], PROMPT, progress=False)
