"""bench/ssr_fig14.py's data and metric parts (the benchmark broke once on a renamed data API unseen)."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import ssr_fig14  # noqa: E402


def test_load_test_clips_and_seams(tmp_path):
    videos, captions, records = ssr_fig14.load_test_clips(str(tmp_path), size=8, num_frames=6, num_videos=2)
    assert videos.shape == (2, 6, 8, 8, 3) and videos.dtype == np.uint8
    assert len(captions) == len(records) == 2 and all(" moving " in c for c in captions)
    assert ssr_fig14.downsample_uint8(videos, 4).shape == (2, 6, 4, 4, 3)
    assert ssr_fig14.boundary_transitions(32, 8) == [7, 15, 23]  # seams of windows starting at 0, 8, 16, 24
