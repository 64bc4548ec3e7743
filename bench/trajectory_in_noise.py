r"""How much of a clip's motion survives in the noisy video SDEdit starts from.

Noises the first `num_clips` real clips of a moving_shapes split to timestep t with the model config's
schedule (x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, 4 noise draws a clip) and reads the direction back
with a crude estimator, no model: each frame's background made zero-mean, a 7 x 7 box filter, its
argmax, a straight-line fit of the 16 positions. The fraction read right is a lower bound on what a
denoiser can see of the input's trajectory at t (docs/conditional.md, "SDEdit with the base model").

  JAX_PLATFORMS=cpu .venv/bin/python bench/trajectory_in_noise.py [--split=test --num_clips=64]
"""

import argparse
import importlib.util
import json
import os

import numpy as np
from scipy import ndimage

from lumiere_jax.diffusion import schedules
from lumiere_jax.eval import probe
from lumiere_jax.eval.conditional import split_clips

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMESTEPS = (0, 599, 699, 759, 799, 839, 879, 919, 959, 979, 999)


def read_direction(xt: np.ndarray, signal: float) -> str:
    """The direction of the brightest blob's straight-line track in a noisy video [T, H, W, 3]."""
    t, _, w, _ = xt.shape
    s = (xt + signal).sum(-1)  # the black background (-signal in every channel) made zero-mean
    s = ndimage.uniform_filter(s, size=(1, 7, 7), mode="constant")
    ys, xs = np.divmod(s.reshape(t, -1).argmax(1), w)
    frames = np.arange(t)
    vy, vx = np.polyfit(frames, ys, 1)[0], np.polyfit(frames, xs, 1)[0]
    return ("right" if vx > 0 else "left") if abs(vx) >= abs(vy) else ("down" if vy > 0 else "up")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test")
    parser.add_argument("--num_clips", type=int, default=64)
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs/figures/sdedit_trajectory_in_noise.json"))
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("ms", os.path.join(ROOT, "configs/moving_shapes.py"))
    ms = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ms)
    config = ms.get_config("video")
    clips, captions = split_clips(config, args.split, args.num_clips)
    abar = np.asarray(schedules.get_schedule(config.diffusion.schedule).alphas_cumprod, np.float64)
    x0 = clips.astype(np.float64) / 127.5 - 1.0
    truth = [probe.parse_caption(c)[2] for c in captions]
    rng = np.random.default_rng(0)
    out = {}
    for t in TIMESTEPS:
        signal = float(np.sqrt(abar[t]))
        hits = []
        for _ in range(args.draws):
            xt = signal * x0 + np.sqrt(1 - abar[t]) * rng.standard_normal(x0.shape)
            hits += [read_direction(v, signal) == d for v, d in zip(xt, truth)]
        out[t] = {"signal": signal, "noise": float(np.sqrt(1 - abar[t])), "direction_read": float(np.mean(hits))}
        print(t, out[t], flush=True)
    with open(args.out, "w") as f:
        json.dump({"split": args.split, "num_clips": len(truth), "draws": args.draws, "by_timestep": out}, f, indent=1)


if __name__ == "__main__":
    main()
