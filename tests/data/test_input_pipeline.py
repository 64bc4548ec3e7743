import gc
import time

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec

from lumiere_jax.data import input_pipeline as pl
from lumiere_jax.models.tokenizer import ByteTokenizer


def make_source(n=12, t=2, hw=4, image=False):
    recs = []
    for i in range(n):
        r = {"caption": f"clip {i}" if i % 2 else f"clip {i}".encode(), "label": np.int32(i)}
        frame = np.full((hw, hw, 3), i, np.uint8)
        if image:
            r["image"] = frame
        else:
            r["video"] = np.stack([frame + k for k in range(t)])
        recs.append(r)
    return recs


def make(source=None, **kw):
    kw.setdefault("global_batch_size", 4)
    kw.setdefault("process_index", 0)
    kw.setdefault("process_count", 1)
    return pl.Pipeline(make_source() if source is None else source, **kw)


def assert_batches_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_batch_contents_and_preprocessing():
    p = make(tokenizer=ByteTokenizer(16), extra_keys=("label",), seed=3)
    b = p.get_batch(0)
    assert b["video"].shape == (4, 2, 4, 4, 3) and b["video"].dtype == np.float32
    assert b["text_ids"].shape == (4, 16) and b["text_ids"].dtype == np.int32
    assert b["text_mask"].dtype == bool
    for j, i in enumerate(b["index"]):
        assert b["caption"][j] == f"clip {i}"  # bytes captions decoded
        assert b["label"][j] == i
        np.testing.assert_allclose(b["video"][j, 1], (i + 1) / 127.5 - 1, atol=1e-6)
        ids, mask = ByteTokenizer(16)([f"clip {i}"])
        np.testing.assert_array_equal(b["text_ids"][j], ids[0])
        np.testing.assert_array_equal(b["text_mask"][j], mask[0])
    assert -1.0 <= b["video"].min() and b["video"].max() <= 1.0
    np.testing.assert_allclose(pl.uint8_to_float(np.array([0, 255], np.uint8)), [-1, 1])


def test_image_batches():
    p = make(make_source(image=True), kind="image")
    b = p.get_batch(1)
    assert b["image"].shape == (4, 4, 4, 3) and "video" not in b and "text_ids" not in b
    with pytest.raises(KeyError, match="image"):
        make(kind="image").get_batch(0)


def test_determinism_and_seeds():
    a = [make(seed=7).get_batch(s) for s in range(6)]
    b = [make(seed=7).get_batch(s) for s in range(6)]
    for x, y in zip(a, b):
        assert_batches_equal(x, y)
    c = [make(seed=8).get_batch(s)["index"] for s in range(6)]
    assert any(not np.array_equal(x["index"], y) for x, y in zip(a, c))
    # epoch permutations differ from each other and are independent of other seeds' epochs
    perms = {(s, e): tuple(pl.epoch_permutation(50, s, e)) for s in range(3) for e in range(3)}
    assert len(set(perms.values())) == len(perms)
    np.testing.assert_array_equal(sorted(pl.epoch_permutation(50, 1, 2)), np.arange(50))


@pytest.mark.parametrize("prefetch", [0, 2])
def test_exact_resume(prefetch):
    p = make(seed=1)
    with p.iterate(0, 10, prefetch=prefetch) as it:
        full = list(it)
    with make(seed=1).iterate(start_step=4, num_steps=6, prefetch=prefetch) as it:
        resumed = list(it)
    assert len(full) == 10 and len(resumed) == 6
    for x, y in zip(full[4:], resumed):
        assert_batches_equal(x, y)
    for step, b in zip(range(4, 10), resumed):
        assert_batches_equal(b, p.get_batch(step))


@pytest.mark.parametrize("n", [12, 10])
def test_epoch_boundaries_drop_remainder(n):
    p = make(make_source(n), seed=2)  # batch 4
    spe = n // 4
    assert p.steps_per_epoch == spe
    seen_epochs = []
    for epoch in range(3):
        idx = np.concatenate([p.global_indices(epoch * spe + k) for k in range(spe)])
        assert len(set(idx.tolist())) == len(idx) == spe * 4  # no repeats within an epoch
        if n % 4 == 0:
            assert sorted(idx.tolist()) == list(range(n))  # each example exactly once
        assert p.epoch_of(epoch * spe) == epoch
        seen_epochs.append(idx)
    assert not np.array_equal(seen_epochs[0], seen_epochs[1])  # reshuffled each epoch
    with pytest.raises(ValueError, match="fewer than"):
        make(make_source(3))


def test_epoch_boundaries_stream_mode():
    n = 10
    p = make(make_source(n), seed=2, drop_remainder=False)
    stream = np.concatenate([p.global_indices(s) for s in range(5)])  # 20 = 2 epochs
    assert sorted(stream[:n].tolist()) == list(range(n))
    assert sorted(stream[n:].tolist()) == list(range(n))
    np.testing.assert_array_equal(stream[:n], pl.epoch_permutation(n, 2, 0))


def test_no_shuffle_is_source_order():
    p = make(shuffle=False)
    np.testing.assert_array_equal(p.global_indices(1), [4, 5, 6, 7])


def test_process_shards():
    src = make_source(16)
    g = make(src, global_batch_size=8, seed=5)
    shards = [make(src, global_batch_size=8, seed=5, process_index=i, process_count=2) for i in range(2)]
    for step in range(5):
        full = g.get_batch(step)
        parts = [s.get_batch(step) for s in shards]
        assert all(len(q["index"]) == 4 for q in parts)
        assert not set(parts[0]["index"]) & set(parts[1]["index"])
        for k in full:
            np.testing.assert_array_equal(np.concatenate([q[k] for q in parts]), full[k])
    with pytest.raises(ValueError, match="divisible"):
        make(src, global_batch_size=6, process_index=0, process_count=4)


def test_prefetch_preserves_order_and_matches_unprefetched():
    class Slow(list):
        def __getitem__(self, i):
            time.sleep(0.001 * (i % 3))
            return list.__getitem__(self, i)

    src = Slow(make_source(12))
    plain = list(make(src, seed=4).iterate(0, 8, prefetch=0))
    fetched = list(make(src, seed=4, num_workers=3).iterate(0, 8, prefetch=3))
    for x, y in zip(plain, fetched, strict=True):
        assert_batches_equal(x, y)


def test_prefetcher_order_errors_and_close():
    assert list(pl.Prefetcher(iter(range(100)), 2)) == list(range(100))

    def boom():
        yield 1
        raise RuntimeError("bad record")

    it = pl.Prefetcher(boom(), 1)
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="bad record"):
        next(it)

    endless = make(seed=0).iterate(0, prefetch=2)  # endless; close stops the thread
    next(endless)
    endless.close()
    assert not endless._thread.is_alive()
    abandoned = make(seed=0).iterate(0, prefetch=2)
    next(abandoned)
    thread = abandoned._thread
    del abandoned
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()  # garbage collection stops an abandoned prefetcher


def test_to_global_one_process_mesh():
    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
    b = make(tokenizer=ByteTokenizer(8)).get_batch(0)
    g = pl.to_global(b, mesh, PartitionSpec("data"))
    assert isinstance(g["video"], jax.Array) and g["video"].shape == b["video"].shape
    np.testing.assert_array_equal(np.asarray(g["video"]), b["video"])
    np.testing.assert_array_equal(np.asarray(g["text_ids"]), b["text_ids"])
    assert g["video"].sharding.spec == PartitionSpec("data")
    assert isinstance(g["caption"], np.ndarray)  # strings stay host-local
    g2 = pl.to_global(b, mesh)  # default spec: batch over all mesh axes
    np.testing.assert_array_equal(np.asarray(g2["text_mask"]), b["text_mask"])
