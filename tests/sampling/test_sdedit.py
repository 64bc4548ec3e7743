"""SDEdit through the Generator on the tiny video run."""

import numpy as np
import pytest

from lumiere_jax import sampling

PROMPT = "a red square moving left"


@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)


def test_sdedit(video_run, clip):
    base = sampling.Generator.load(video_run[0])
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
