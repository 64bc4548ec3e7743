import ml_dtypes
import numpy as np
import pytest

from lumiere_jax.data import text_embeddings
from lumiere_jax.data.input_pipeline import Pipeline
from lumiere_jax.data.views import ImageView


def fake_encoder(calls):
    def encode(captions):
        calls.append(len(captions))
        emb = np.stack([np.full((5, 3), len(c) + 1 / 3, np.float32) * np.arange(1, 4) for c in captions])
        mask = np.array([[i < 1 + len(c) % 5 for i in range(5)] for c in captions])
        return emb, mask

    return encode


def test_compute_save_load_and_batches(tmp_path):
    captions = ["a red square", "a blue circle", "a red square", "zz", "a green triangle"]
    calls = []
    table = text_embeddings.compute(captions, fake_encoder(calls), batch_size=3, meta={"encoder": "fake"})
    assert calls == [3, 3]  # 4 distinct captions, padded to whole batches
    table.save(str(tmp_path))
    loaded = text_embeddings.TextEmbeddings.load(str(tmp_path))
    assert loaded.captions == sorted(set(captions)) and (loaded.length, loaded.dim) == (5, 3)
    assert loaded.meta["num_examples"] == 5 and loaded.meta["encoder"] == "fake"
    want_emb, want_mask = fake_encoder([])(["a blue circle"])
    emb, mask = loaded.lookup("a blue circle")
    assert emb.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(emb, want_emb[0].astype(ml_dtypes.bfloat16))
    np.testing.assert_array_equal(mask, want_mask[0])
    # Records of any view (here T2I frames) get their caption's embedding; batches stack them.
    videos = [{"video": np.full((2, 4, 4, 3), i, np.uint8), "caption": c} for i, c in enumerate(captions)]
    source = text_embeddings.WithTextEmbeddings(ImageView(videos), loaded)
    pipe = Pipeline(
        source,
        global_batch_size=4,
        kind="image",
        extra_keys=("text_emb", "text_mask"),
        process_index=0,
        process_count=1,
    )
    batch = pipe.get_batch(0)
    for cap, e, m in zip(batch["caption"], batch["text_emb"], batch["text_mask"]):
        we, wm = fake_encoder([])([str(cap)])
        np.testing.assert_array_equal(e, we[0].astype(ml_dtypes.bfloat16))
        np.testing.assert_array_equal(m, wm[0])
    with pytest.raises(KeyError, match="'a cyan circle' has no precomputed embedding"):
        loaded.lookup("a cyan circle")


def test_missing_store_names_the_files(tmp_path):
    with pytest.raises(ValueError, match=r"lack \['captions.json', 'emb.npy', 'mask.npy', 'meta.json'\]"):
        text_embeddings.TextEmbeddings.load(str(tmp_path))
    with pytest.raises(ValueError, match="no captions"):
        text_embeddings.compute([], fake_encoder([]))
