"""Deterministic, resumable, multi-host input pipeline for video / image diffusion.

Source: any random-access sequence (``__len__``, ``__getitem__(i) -> dict``) of
records ``{'video': uint8 [T, H, W, 3], 'caption': str | bytes, ...}`` (or
``{'image': uint8 [H, W, 3], ...}`` with ``kind='image'``), e.g. a
``tfds.data_source``, :mod:`lumiere_jax.data.video_folder`, or a list of dicts.

Order = pure function of (seed, step)
-------------------------------------
The example stream is the concatenation of per-epoch permutations of
``range(len(source))``. Epoch ``e``'s permutation sorts the indices by a 64-bit
hash (splitmix64) of ``(seed, e, index)``; it depends on nothing else (not on
numpy's or grain's RNG implementation, so a resumed run after a library upgrade
still sees the same order). The batch for ``step`` is a fixed slice of this
stream, so resuming at step ``k`` needs nothing checkpointed but ``k``:
``pipeline.iterate(start_step=k)`` yields exactly the batches an uninterrupted run
yields from step ``k`` on.

Why not grain: ``grain.MapDataset.range(n).shuffle(seed)`` is also random-access
and would do, but it derives epoch ``e``'s permutation from seed ``seed + e`` (so
seed 1's epoch 0 equals seed 0's epoch 1), and its Feistel shuffle is an
implementation detail that may change between grain releases. The index
arithmetic here is a few lines of numpy, so the pipeline owns it; the loading part
(an order-preserving thread pool + bounded prefetch queue) is likewise simpler in
plain Python than a grain ``DataLoader`` whose sampler would have to be rebuilt
per resume. Any grain ``MapDataset`` still works as a *source* (it is random-access).

Epoch boundaries (``drop_remainder``)
--------------------------------------
* ``drop_remainder=True`` (default): each epoch has ``len(source) //
  global_batch`` steps; the last ``len % global_batch`` indices of each epoch's
  permutation are skipped (different ones every epoch, since the permutation
  changes). Batches never straddle epochs and never repeat an example. With
  ``len % global_batch == 0`` every example is seen exactly once per epoch.
  ``len(source) < global_batch`` is an error.
* ``drop_remainder=False``: batches are consecutive slices of the endless stream,
  so nothing is skipped (every example exactly once per epoch, counted in
  stream positions) but a batch may straddle two epochs (and, for a source
  smaller than the batch, contain an example twice).

Multi-host
----------
Every process computes the same global indices for a step and takes its
contiguous slice: process ``p`` of ``P`` gets positions ``[p * B/P, (p+1) * B/P)``
of the global batch (``ValueError`` unless ``P`` divides ``B``). Those local
arrays are assembled into global ``jax.Array`` s, sharded along the batch axis, by
:func:`to_global` (``jax.make_array_from_process_local_data``); with a mesh whose
batch axis follows process order the slices line up with the devices.

Batches
-------
``{'video': float32 [B, T, H, W, 3] in [-1, 1]`` (``'image'`` [B, H, W, 3] with
``kind='image'``), ``'text_ids': int32 [B, L]``, ``'text_mask': bool [B, L]``
(when a tokenizer is given; any ``captions -> (ids, mask)`` callable such as
:class:`lumiere_jax.models.tokenizer.ByteTokenizer`), ``'caption'``: numpy array
of ``str`` [B] (raw captions, pass-through), ``'index'``: int64 [B] (source
indices), plus any ``extra_keys`` stacked as numpy arrays.``}``
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from lumiere_jax.data.views import as_str

Tokenizer = Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """Permutation of ``range(num_examples)`` for ``(seed, epoch)``: indices sorted
    by ``splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ index)``. Pure integer
    arithmetic, identical on every host and library version."""
    key = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], np.uint64))
    key = _splitmix64(key ^ np.uint64(epoch & 0xFFFFFFFFFFFFFFFF))
    h = _splitmix64(np.arange(num_examples, dtype=np.uint64) ^ key)
    return np.argsort(h, kind="stable").astype(np.int64)


def uint8_to_float(x: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got {x.dtype}")
    return x.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)


class Prefetcher:
    """Run an iterator in a background thread, ``buffer_size`` items ahead.

    Items come out in exactly the order the iterator produces them; an exception
    in the producer is re-raised in the consumer. Use as a context manager (or
    call :meth:`close`) to stop the thread early.
    """

    _END = object()

    def __init__(self, iterator: Iterator[Any], buffer_size: int = 2):
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self._queue: queue.Queue = queue.Queue(maxsize=buffer_size)
        self._stop = threading.Event()
        # The thread gets no reference to `self`, so an abandoned prefetcher is
        # garbage-collected and its __del__ stops the thread.
        self._thread = threading.Thread(
            target=Prefetcher._run, name="lumiere-prefetch", daemon=True, args=(iterator, self._queue, self._stop)
        )
        self._thread.start()

    @staticmethod
    def _put(q: queue.Queue, stop: threading.Event, item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    @staticmethod
    def _run(iterator, q: queue.Queue, stop: threading.Event):
        try:
            for item in iterator:
                if not Prefetcher._put(q, stop, (True, item)):
                    return
        except BaseException as e:  # noqa: BLE001 - forwarded to the consumer
            Prefetcher._put(q, stop, (False, e))
            return
        Prefetcher._put(q, stop, (True, Prefetcher._END))

    def __iter__(self):
        return self

    def __next__(self):
        if self._stop.is_set():
            raise StopIteration
        ok, item = self._queue.get()
        if not ok:
            self.close()
            raise item
        if item is self._END:
            self.close()
            raise StopIteration
        return item

    def close(self):
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def __del__(self):  # an abandoned prefetcher must not keep its thread spinning
        self._stop.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Batches:
    """An iterator with ``close`` / context-manager support (no prefetch)."""

    def __init__(self, gen: Iterator[Any]):
        self._gen = gen

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._gen)

    def close(self):
        self._gen.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Pipeline:
    """Batches of a random-access source, in an order fixed by (seed, step).

    Args:
      source: random-access records (``len`` + ``[i] -> dict``).
      global_batch_size: examples per step over all processes.
      seed: shuffling seed.
      tokenizer: ``captions -> (ids int32 [B, L], mask bool [B, L])``; ``None``
        skips tokenisation (raw captions are always passed through).
      kind: ``'video'`` (records' ``video`` [T, H, W, 3]) or ``'image'`` (``image``
        [H, W, 3]).
      shuffle: ``False`` = epochs in source order (evaluation).
      drop_remainder: see the module docstring.
      process_index / process_count: default to ``jax.process_index()`` /
        ``jax.process_count()``; pass explicitly to simulate hosts.
      num_workers: threads that load the records of one batch (order-preserving).
      extra_keys: further record fields to stack into the batch.
    """

    def __init__(
        self,
        source: Sequence[Mapping[str, Any]],
        *,
        global_batch_size: int,
        seed: int = 0,
        tokenizer: Tokenizer | None = None,
        kind: str = "video",
        shuffle: bool = True,
        drop_remainder: bool = True,
        process_index: int | None = None,
        process_count: int | None = None,
        num_workers: int = 0,
        extra_keys: Sequence[str] = (),
    ):
        if kind not in ("video", "image"):
            raise ValueError(f"kind must be 'video' or 'image', got {kind!r}")
        if process_index is None or process_count is None:
            import jax

            process_index = jax.process_index() if process_index is None else process_index
            process_count = jax.process_count() if process_count is None else process_count
        if global_batch_size <= 0:
            raise ValueError(f"global_batch_size must be positive, got {global_batch_size}")
        if global_batch_size % process_count:
            raise ValueError(f"global_batch_size={global_batch_size} is not divisible by process_count={process_count}")
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index={process_index} not in [0, {process_count})")
        self.source = source
        self.num_examples = len(source)
        if self.num_examples == 0:
            raise ValueError("source is empty")
        if drop_remainder and self.num_examples < global_batch_size:
            raise ValueError(
                f"source has {self.num_examples} examples, fewer than "
                f"global_batch_size={global_batch_size} (use drop_remainder=False)"
            )
        self.global_batch_size = global_batch_size
        self.process_index, self.process_count = process_index, process_count
        self.local_batch_size = global_batch_size // process_count
        self.seed, self.tokenizer, self.kind = seed, tokenizer, kind
        self.shuffle, self.drop_remainder = shuffle, drop_remainder
        self.num_workers, self.extra_keys = num_workers, tuple(extra_keys)
        self._perm_cache: dict[int, np.ndarray] = {}
        self._perm_lock = threading.Lock()

    # ------------------------------------------------------------------ indices
    @property
    def steps_per_epoch(self) -> float:
        """Steps per epoch (fractional with ``drop_remainder=False``)."""
        if self.drop_remainder:
            return self.num_examples // self.global_batch_size
        return self.num_examples / self.global_batch_size

    def epoch_of(self, step: int) -> int:
        if self.drop_remainder:
            return step // (self.num_examples // self.global_batch_size)
        return step * self.global_batch_size // self.num_examples

    def permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_examples, dtype=np.int64)
        with self._perm_lock:
            perm = self._perm_cache.get(epoch)
            if perm is None:
                perm = epoch_permutation(self.num_examples, self.seed, epoch)
                self._perm_cache = {
                    epoch: perm,
                    **{e: p for e, p in self._perm_cache.items() if e in (epoch - 1, epoch + 1)},
                }
            return perm

    def global_indices(self, step: int) -> np.ndarray:
        """Source indices of the whole global batch for ``step`` (int64 [B])."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        n, b = self.num_examples, self.global_batch_size
        if self.drop_remainder:
            spe = n // b
            epoch, k = divmod(step, spe)
            return self.permutation(epoch)[k * b : (k + 1) * b].copy()
        positions = np.arange(step * b, (step + 1) * b, dtype=np.int64)
        out = np.empty(b, np.int64)
        for epoch in np.unique(positions // n):
            sel = positions // n == epoch
            out[sel] = self.permutation(int(epoch))[positions[sel] % n]
        return out

    def local_indices(self, step: int) -> np.ndarray:
        """This process's slice of :meth:`global_indices`."""
        lo = self.process_index * self.local_batch_size
        return self.global_indices(step)[lo : lo + self.local_batch_size]

    # ------------------------------------------------------------------ batches
    def _load(self, indices: np.ndarray) -> list[Mapping[str, Any]]:
        if self.num_workers > 1:
            with concurrent.futures.ThreadPoolExecutor(self.num_workers) as pool:
                return list(pool.map(lambda i: self.source[int(i)], indices))
        return [self.source[int(i)] for i in indices]

    def collate(self, records: Sequence[Mapping[str, Any]], indices: np.ndarray) -> dict[str, np.ndarray]:
        key = self.kind
        for r in records:
            if key not in r:
                raise KeyError(f"record has no {key!r} field (keys: {sorted(r)}); kind={self.kind!r} needs it")
        batch: dict[str, np.ndarray] = {key: uint8_to_float(np.stack([np.asarray(r[key]) for r in records]))}
        captions = [as_str(r.get("caption", "")) for r in records]
        batch["caption"] = np.array(captions, dtype=str) if captions else np.zeros((0,), str)
        if self.tokenizer is not None:
            ids, mask = self.tokenizer(captions)
            batch["text_ids"] = np.asarray(ids, np.int32)
            batch["text_mask"] = np.asarray(mask, bool)
        batch["index"] = np.asarray(indices, np.int64)
        for k in self.extra_keys:
            batch[k] = np.stack([np.asarray(r[k]) for r in records])
        return batch

    def get_batch(self, step: int) -> dict[str, np.ndarray]:
        """This process's batch for ``step`` (a pure function of seed and step)."""
        idx = self.local_indices(step)
        return self.collate(self._load(idx), idx)

    def _generate(self, start_step: int, num_steps: int | None) -> Iterator[dict[str, np.ndarray]]:
        step = start_step
        while num_steps is None or step < start_step + num_steps:
            yield self.get_batch(step)
            step += 1

    def iterate(
        self, start_step: int = 0, num_steps: int | None = None, *, prefetch: int = 2
    ) -> Iterator[dict[str, np.ndarray]]:
        """Batches for steps ``start_step, start_step + 1, ...`` (endless unless
        ``num_steps``). ``prefetch`` > 0 loads that many batches ahead in a
        background thread (same order). The result is an iterator and a context
        manager: ``with pipeline.iterate(k) as batches: ...`` (or ``.close()``)
        stops the background thread."""
        gen = self._generate(start_step, num_steps)
        return Prefetcher(gen, prefetch) if prefetch > 0 else _Batches(gen)

    def __iter__(self):
        return self.iterate(0)


def to_global(batch: Mapping[str, Any], mesh, partition_spec=None) -> dict[str, Any]:
    """Per-process numpy batch -> global ``jax.Array`` s on ``mesh``.

    Numeric arrays become global arrays with ``jax.make_array_from_process_local_data``
    (the global shape is inferred: each process's slice along the sharded axes). ``partition_spec``:
    a ``PartitionSpec`` used for every array, a mapping key -> spec, or ``None``
    (shard axis 0 over all mesh axes). String arrays (captions) stay local numpy.
    """
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    default = PartitionSpec(tuple(mesh.axis_names))
    out: dict[str, Any] = {}
    for k, v in batch.items():
        v = np.asarray(v)
        if v.dtype.kind not in "biuf":
            out[k] = v
            continue
        spec = (
            partition_spec.get(k, default)
            if isinstance(partition_spec, Mapping)
            else (default if partition_spec is None else partition_spec)
        )
        # global_shape inferred: local batch x number of processes along the sharded axis.
        out[k] = jax.make_array_from_process_local_data(NamedSharding(mesh, spec), v)
    return out
