"""ImageView: frames of a video source as a T2I image source."""

import numpy as np
import pytest

from lumiere_jax.data import moving_shapes as ms
from lumiere_jax.data.views import ImageView, Source


class CountingSource:
    """Video v, frame f is filled with 10 * v + f; counts reads; bytes captions."""

    def __init__(self, n, frames=4, size=3):
        self.n, self.frames, self.size, self.reads = n, frames, size, 0

    def __len__(self):
        return self.n

    def __getitem__(self, v):
        if not 0 <= v < self.n:
            raise IndexError(v)
        self.reads += 1
        video = (10 * v + np.arange(self.frames, dtype=np.uint8))[:, None, None, None]
        return {
            "video": np.broadcast_to(video, (self.frames, self.size, self.size, 3)).copy(),
            "caption": f"video {v}".encode(),
        }


def test_length_and_index_mapping():
    src = CountingSource(5, frames=4)
    view = ImageView(src)
    assert isinstance(src, Source) and isinstance(view, Source)
    assert view.frames_per_video == 4 and len(view) == 20
    for i in range(len(view)):
        v, f = divmod(i, 4)
        assert view.locate(i) == (v, f)
        rec = view[i]
        assert rec["image"].shape == (3, 3, 3) and rec["image"].dtype == np.uint8
        assert (rec["image"] == 10 * v + f).all()
        assert rec["caption"] == f"video {v}" and isinstance(rec["caption"], str)
    assert (view[-1]["image"] == 43).all() and view.locate(-20) == (0, 0)
    for bad in (20, -21):
        with pytest.raises(IndexError):
            view[bad]


def test_fewer_frames_per_video_and_indices():
    view = ImageView(CountingSource(3, frames=4), frames_per_video=2, with_indices=True)
    assert len(view) == 6
    rec = view[5]
    assert (rec["image"] == 21).all() and (rec["video_index"], rec["frame_index"]) == (2, 1)
    with pytest.raises(ValueError):
        ImageView(CountingSource(2), frames_per_video=0)
    with pytest.raises(ValueError):
        ImageView(CountingSource(2, frames=2), frames_per_video=3)[0]


def test_getitems_matches_getitem_and_reads_each_video_once():
    src = CountingSource(6, frames=4)
    view = ImageView(src)
    src.reads = 0
    idx = [0, 1, 2, 3, 23, 9, 8, -1]
    batch = view.__getitems__(idx)
    assert src.reads == 3  # videos 0, 5, 2
    for i, rec in zip(idx, batch):
        single = view[i]
        np.testing.assert_array_equal(rec["image"], single["image"])
        assert rec["caption"] == single["caption"]


def test_image_view_over_moving_shapes(tmp_path):
    videos = ms.load_source(str(tmp_path), "32px_16f", "held_out", num_train=1, num_test=1, num_held_out=3)
    view = ImageView(videos)
    assert len(view) == 3 * 16
    for i in (0, 17, 47):
        v, f = divmod(i, 16)
        rec, video = view[i], videos[v]
        np.testing.assert_array_equal(rec["image"], video["video"][f])
        assert rec["caption"] == video["caption"] and ms.parse_caption(rec["caption"])
    batch = view.__getitems__([47, 0])
    np.testing.assert_array_equal(batch[0]["image"], videos[2]["video"][15])
