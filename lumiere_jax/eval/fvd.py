"""Fréchet distance between feature distributions (FVD with I3D features; FID-style).

`FeatureStats` accumulates float64 sums over any number of batches, so the mean and covariance do
not depend on how the features were split; `frechet_distance` is

    d² = |mu1 - mu2|² + tr(S1) + tr(S2) - 2 tr((S1^½ S2 S1^½)^½),

computed from symmetric eigendecompositions (`eigh`) instead of `scipy.linalg.sqrtm` of the
non-symmetric product S1 S2 (what pytorch-fid and jax-fid call; deprecated in our scipy). Both
forms are equal for positive semi-definite covariances; eigenvalues that round below zero are
clipped, which is the usual handling of the near-singular covariances of few videos.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class FeatureStats:
    """Streaming float64 statistics of feature vectors [N, D]."""

    dim: int
    count: int = 0
    total: np.ndarray | None = None
    outer: np.ndarray | None = None

    def __post_init__(self):
        if self.total is None:
            self.total = np.zeros(self.dim, np.float64)
            self.outer = np.zeros((self.dim, self.dim), np.float64)

    def update(self, features: np.ndarray) -> "FeatureStats":
        f = np.asarray(features, np.float64)
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise ValueError(f"features must be [N, {self.dim}], got shape {f.shape}")
        if not np.isfinite(f).all():
            raise ValueError("features hold non-finite values")
        self.count += f.shape[0]
        self.total += f.sum(0)
        self.outer += f.T @ f
        return self

    @property
    def mean(self) -> np.ndarray:
        if self.count < 1:
            raise ValueError("no features accumulated")
        return self.total / self.count

    @property
    def cov(self) -> np.ndarray:
        """Unbiased covariance (np.cov's), needs two or more features."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        mu = self.mean
        return (self.outer - self.count * np.outer(mu, mu)) / (self.count - 1)

    def to_dict(self) -> dict:
        return {"dim": self.dim, "count": self.count, "total": self.total, "outer": self.outer}

    @classmethod
    def from_dict(cls, d) -> "FeatureStats":
        return cls(
            int(d["dim"]), int(d["count"]), np.asarray(d["total"], np.float64), np.asarray(d["outer"], np.float64)
        )


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    """The symmetric square root of a (numerically) positive semi-definite matrix."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """d² between N(mu1, cov1) and N(mu2, cov2) (module docstring)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes differ: mu {mu1.shape} / {mu2.shape}, cov {cov1.shape} / {cov2.shape}")
    s1 = _sqrt_psd(cov1)
    w = np.linalg.eigvalsh((s1 @ cov2 @ s1 + (s1 @ cov2 @ s1).T) / 2)
    tr_cross = np.sqrt(np.clip(w, 0.0, None)).sum()
    d2 = float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_cross)
    return max(d2, 0.0)


def stats_distance(a: FeatureStats, b: FeatureStats) -> float:
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


# -- the protocol: how videos become I3D features ---------------------------------------------
# Written down once; `PROTOCOL` is part of every cache key of real statistics, so a change here can
# never reuse stale statistics.
NUM_FRAMES = 16  # the I3D sees 16 frames (Lumiere App. D.2)
SIZE = 224  # resized to 224 x 224
PROTOCOL = {
    "version": 1,
    "model": "i3d-kinetics-400 logits (400-d)",
    "frames": NUM_FRAMES,
    "size": SIZE,
    "temporal": "the first 16 frames; shorter videos repeat from the start (0, 1, .., T-1, 0, 1, ..)",
    "resize": "bilinear, half-pixel centres, no antialiasing (jax.image.resize 'linear')",
    "range": "uint8 0..255 -> [-1, 1]",
}


def clip_frames(videos: np.ndarray) -> np.ndarray:
    """uint8 [N, T, H, W, 3] -> the NUM_FRAMES frames the protocol uses, [N, 16, H, W, 3]."""
    videos = np.asarray(videos)
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"expected videos [N, T, H, W, 3], got shape {videos.shape}")
    if videos.dtype != np.uint8:
        raise ValueError(f"FVD takes uint8 videos (0-255), got {videos.dtype}")
    idx = np.arange(NUM_FRAMES) % videos.shape[1]
    return videos[:, idx]


class I3DFeatures:
    """Videos -> I3D logits (the FVD features), batched and jitted; the weights load on first use."""

    def __init__(self, batch_size: int = 8, variables: dict | None = None):
        self.batch_size, self._variables, self._fn = int(batch_size), variables, None

    def _apply(self):
        if self._fn is None:
            import jax
            import jax.numpy as jnp

            from lumiere_jax.eval import i3d

            if self._variables is None:
                self._variables = i3d.load_variables()
            model = i3d.I3D()

            def features(variables, frames):  # uint8 [B, 16, H, W, 3]
                x = frames.astype(jnp.float32) / 127.5 - 1.0
                b, t = x.shape[:2]
                x = jax.image.resize(x, (b, t, SIZE, SIZE, 3), method="linear", antialias=False)
                return model.apply(variables, x)

            from lumiere_jax import runtime

            jitted = runtime.jit_heavy(features)  # compute-bound: full backend optimisation
            self._fn = lambda frames: np.asarray(jitted(self._variables, frames), np.float64)
        return self._fn

    def __call__(self, videos: np.ndarray) -> np.ndarray:
        """uint8 videos [N, T, H, W, 3] -> features [N, 400] (float64)."""
        frames = clip_frames(videos)
        fn, b = self._apply(), self.batch_size
        out = []
        for i in range(0, len(frames), b):  # the last batch padded: one compiled shape
            chunk = frames[i : i + b]
            pad = np.zeros((b - len(chunk), *chunk.shape[1:]), np.uint8)
            out.append(fn(np.concatenate([chunk, pad]))[: len(chunk)])
        return np.concatenate(out)

    def stats(self, videos: np.ndarray, into: FeatureStats | None = None) -> FeatureStats:
        feats = self(videos)
        return (into or FeatureStats(feats.shape[1])).update(feats)


# -- FVD against a dataset split's real clips, with cached real statistics and the real-vs-real floor --


def _source(config, split: str):
    """The split's real clips at the config's model size (a random-access source)."""
    from lumiere_jax.data import sources
    from lumiere_jax.train import validation

    return sources.make_source(config, validation.validate(config), split)


def real_clips(config, split: str, start: int, count: int) -> np.ndarray:
    """uint8 [count, T, H, W, 3]: clips start .. start + count - 1 of `split` at the config's model size."""
    source = _source(config, split)
    if start + count > len(source):
        raise ValueError(f"split {split!r} has {len(source)} clips, asked for clips {start}..{start + count - 1}")
    return np.stack([np.asarray(source[i]["video"], np.uint8) for i in range(start, start + count)])


def split_size(config, split: str) -> int:
    return len(_source(config, split))


# config.data keys that do not change which clips a split holds or how they look
_NOT_CONTENT = ("global_batch", "num_workers", "split", "rebuild", "text_embeddings", "data_dir")


def cache_key(config, split: str, start: int, count: int) -> dict:
    """Everything the real statistics depend on: the dataset and its config, the model size the clips
    are rendered at, the split, which clips, and the protocol. Any change gives another key."""
    from lumiere_jax.models import build

    model_cfg = build.model_config(config)
    data = {k: v for k, v in config.data.to_dict().items() if k not in _NOT_CONTENT}
    return {
        "data": data,
        "resolution": int(model_cfg.resolution),
        "num_frames": int(model_cfg.num_frames),
        "split": split,
        "start": int(start),
        "count": int(count),
        "protocol": dict(PROTOCOL),
    }


def _key_hash(key: dict) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cached_real_statistics(config, split: str, start: int, count: int, features) -> FeatureStats:
    """The statistics of real clips start .. start + count - 1 of `split`, computed once and cached
    under <data_dir>/fvd_stats/<hash of cache_key>.npz (with the key itself, checked on load)."""
    import json
    import os

    from lumiere_jax.data import paths

    key = cache_key(config, split, start, count)
    folder = os.path.join(paths.data_dir(config), "fvd_stats")
    path = os.path.join(folder, _key_hash(key) + ".npz")
    want = json.dumps(key, sort_keys=True, default=str)
    if os.path.exists(path):
        with np.load(path, allow_pickle=False) as f:
            if str(f["key"]) == want:
                return FeatureStats.from_dict({k: f[k] for k in ("dim", "count", "total", "outer")})
    stats = features.stats(real_clips(config, split, start, count))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.npz"
    np.savez(tmp, key=np.array(want), **stats.to_dict())
    os.replace(tmp, path)
    return stats


class SplitFVD:
    """FVD of generated videos against `split`'s real clips: the reference is the split's first
    `num_real` clips (fewer when the split has not `num_real` + n clips: the next n are the floor's),
    and the floor is the FVD of n other real clips of the split against the same reference, n being
    the number of generated videos. `features`: an `I3DFeatures` (the default) or any object with
    the same `__call__(videos) -> [N, D]` and `stats(videos)`."""

    def __init__(self, config, split: str, num_real: int = 256, features=None):
        if int(num_real) < 2:
            raise ValueError(f"FVD needs at least 2 real clips, got num_real={num_real!r}")
        self.config, self.split, self.num_real = config, split, int(num_real)
        self.features = features if features is not None else I3DFeatures()
        self.last_features = None

    def __call__(self, videos: np.ndarray) -> dict:
        import time

        t0 = time.perf_counter()
        videos = np.asarray(videos)
        n = len(videos)
        size = split_size(self.config, self.split)
        m = min(self.num_real, size - n)
        if n < 2 or m < 2:
            raise ValueError(
                f"FVD needs >= 2 generated videos and >= 2 reference clips besides n={n} floor clips; "
                f"split {self.split!r} has {size} clips"
            )
        reference = cached_real_statistics(self.config, self.split, 0, m, self.features)
        floor = cached_real_statistics(self.config, self.split, m, n, self.features)
        feats = np.asarray(self.features(videos), np.float64)
        self.last_features = feats  # the generated videos' features (the CLI saves them: bench/fvd_stability.py)
        generated = FeatureStats(feats.shape[1]).update(feats)
        return {
            "fvd": stats_distance(generated, reference),
            "fvd_floor": stats_distance(floor, reference),
            "num_generated": n,
            "num_real": m,
            "protocol_version": PROTOCOL["version"],
            "seconds": round(time.perf_counter() - t0, 1),
        }
