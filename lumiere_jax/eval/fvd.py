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

            jitted = jax.jit(features)
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
