import numpy as np
import pytest

from lumiere_jax.data import catalog


def test_class_name_captions():
    cap = catalog.class_caption()
    assert cap("ApplyEyeMakeup") == "a video of apply eye makeup"
    assert cap("YoYo") == "a video of yo yo"
    assert cap("PlayingDaf") == "a video of playing daf"
    assert cap("playing_guitar") == "a video of playing guitar"
    assert catalog.class_caption("{}!")("JumpingJack") == "jumping jack!"


def test_adapter_with_injected_source():
    rng = np.random.default_rng(0)
    recs = [
        {"video": rng.integers(0, 255, (t, 12, 16, 3), dtype=np.uint8), "label": lbl} for t, lbl in [(10, 1), (3, 0)]
    ]
    src = catalog.CatalogSource(
        "ucf101", source=recs, label_names=["ApplyLipstick", "TaiChi"], num_frames=4, frame_stride=2, resolution=8
    )
    assert len(src) == 2
    r = src[0]
    assert r["video"].shape == (4, 8, 8, 3) and r["video"].dtype == np.uint8
    assert r["caption"] == "a video of tai chi" and r["label"] == 1 and r["index"] == 0
    # centre clip of a 10-frame video with stride 2: span 7 -> start 1 -> frames 1,3,5,7
    raw = catalog.CatalogSource("ucf101", source=recs, label_names=["a", "b"], num_frames=4, frame_stride=2)
    np.testing.assert_array_equal(raw[0]["video"], recs[0]["video"][[1, 3, 5, 7]])
    # a short video is padded with its last frame
    np.testing.assert_array_equal(raw[1]["video"], recs[1]["video"][[0, 2, 2, 2]])


def test_grayscale_constant_caption():
    recs = [{"image_sequence": np.zeros((20, 8, 8, 1), np.uint8)}]
    r = catalog.CatalogSource("moving_mnist", source=recs)[0]
    assert r["video"].shape == (20, 8, 8, 3) and r["caption"] == "moving handwritten digits"
    assert r["label"] == -1


def test_unknown_and_tf_requirement():
    with pytest.raises(KeyError, match="known"):
        catalog.CatalogSource("kinetics9000", source=[])
    if not catalog.has_tensorflow():
        with pytest.raises(ImportError, match=r"lumiere_jax\[tf\]"):
            catalog.CatalogSource("ucf101")


def test_ucf101_through_tfds_mock_data():
    if not catalog.has_tensorflow():
        pytest.skip("TensorFlow not installed (optional [tf] extra); tfds catalog datasets need it")
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        src = catalog.load("ucf101", "train", num_frames=2, resolution=16)
        assert len(src) == 3
        for i in range(3):
            r = src[i]
            assert r["video"].shape == (2, 16, 16, 3) and r["video"].dtype == np.uint8
            assert r["caption"].startswith("a video of ") and 0 <= r["label"] < 101
            assert r["caption"] == "a video of " + catalog.class_name_to_words(src.label_names[r["label"]])
