r"""What a video model's temporal layers and its prompt contribute, measured without sampling.

For fresh moving_shapes training clips noised at a few timesteps, prints the x0 error (MSE in
[-1, 1] units, after clipping) of

  * the video model;
  * the same parameters with the temporal layers reset to their App. B identity initialisation
    (= the inflated T2I applied frame by frame): the error the temporal layers remove;
  * the video model given the caption with the opposite direction word ("left" <-> "right",
    "up" <-> "down"): a model that uses the direction word does worse here. A difference of ~0 means
    the prediction ignores the direction, whatever the probe later reads.

``--oracle`` prints the same direction effect for the ideal prediction at t = T (pure noise, where
the best x0 is the mean of the videos the caption allows): the mean of `--oracle_clips` rendered
clips per caption, scored on as many others, against the mean for the opposite direction.

A few forward passes: seconds to a minute on the CPU, so it can track a training run between
checkpoints (``--step``). Appends one JSON line to bench/results.jsonl.

    .venv/bin/python bench/denoising_gain.py --checkpoint=assets/moving_shapes_base
    .venv/bin/python bench/denoising_gain.py --checkpoint=runs/ms_video --step=400
    .venv/bin/python bench/denoising_gain.py --oracle
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys

import jax
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lumiere_jax import sampling  # noqa: E402
from lumiere_jax.data import moving_shapes as ms  # noqa: E402
from lumiere_jax.diffusion import noising  # noqa: E402
from lumiere_jax.train import checkpoint  # noqa: E402

OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def load(path: str, step: int | None):
    gen = sampling.Generator.load(path)
    if step is None:
        return gen
    ckpt = checkpoint.Checkpointer(path, async_save=False)
    restored = ckpt.manager.restore(
        step, args=checkpoint.ocp.args.Composite(state=checkpoint.ocp.args.StandardRestore())
    )
    ckpt.close()
    gen.params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), restored["state"]["ema_params"])
    return gen


def oracle_direction_effect(size: int = 32, num_frames: int = 16, num_clips: int = 150, seed: int = 0) -> dict:
    """x0 error at pure noise of the caption's mean video, and of the opposite direction's, averaged
    over the four directions of a red square: what a model that uses the direction word gains at t = T."""
    rng = np.random.default_rng(seed)

    def clips(direction, n):
        specs = [ms.sample_spec(rng, size, num_frames, combo=("red", "square", direction)) for _ in range(n)]
        return np.stack([ms.render_clip(s, num_frames, size) for s in specs]).astype(np.float32) / 127.5 - 1.0

    means = {d: clips(d, num_clips).mean(0) for d in OPPOSITE}
    same = opposite = 0.0
    for d in OPPOSITE:
        held = clips(d, num_clips)
        same += float(((held - means[d]) ** 2).mean()) / len(OPPOSITE)
        opposite += float(((held - means[OPPOSITE[d]]) ** 2).mean()) / len(OPPOSITE)
    return dict(same=same, opposite=opposite, effect=(opposite - same) / same)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", help="a video export or training workdir")
    ap.add_argument("--oracle", action="store_true", help="print the ideal prediction's direction effect at t = T")
    ap.add_argument("--oracle_clips", type=int, default=150)
    ap.add_argument("--step", type=int, default=None, help="a workdir's checkpoint step (default: latest)")
    ap.add_argument("--t2i", default="assets/moving_shapes_t2i", help="the T2I the video model was inflated from")
    ap.add_argument("--num_clips", type=int, default=16)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--timesteps", default="200,600,800,900,950")
    args = ap.parse_args(argv)
    if args.oracle:
        o = oracle_direction_effect(num_clips=args.oracle_clips)
        print(
            f"ideal x0 at t = T: error {o['same']:.4f}, with the opposite direction's mean {o['opposite']:.4f}, "
            f"dir effect {100 * o['effect']:+.1f}%"
        )
        return
    if not args.checkpoint:
        ap.error("--checkpoint is required (or --oracle)")
    gen = load(args.checkpoint, args.step)
    model, params = gen.model, gen.params
    if model.config.kind != "video" or model.config.conditioning != "none":
        raise SystemExit(
            f"{args.checkpoint}: needs a text-to-video model, got a {model.config.kind} model "
            f"with conditioning {model.config.conditioning!r}"
        )
    t2i, _ = checkpoint.load(args.t2i)
    reset = model.inflate(t2i, jax.random.PRNGKey(0))["denoiser"]["temporal"]
    per_frame = {**params, "denoiser": {**params["denoiser"], "temporal": reset}}
    n, size = model.config.num_frames, model.config.resolution
    rng = np.random.default_rng(args.seed)
    specs = [ms.sample_spec(rng, size, n) for _ in range(args.num_clips)]
    x0 = jnp.asarray(np.stack([ms.render_clip(s, n, size) for s in specs]), jnp.float32) / 127.5 - 1.0
    texts = {
        "caption": [ms.caption(s) for s in specs],
        "opposite": [ms.caption((s.color, s.shape, OPPOSITE[s.direction])) for s in specs],
    }
    tokens = {k: tuple(map(jnp.asarray, gen.tokenizer(v))) for k, v in texts.items()}
    pred = gen.config["diffusion"]["prediction_type"]

    @jax.jit
    def x0_error(params, t, ids, mask, key):
        emb = model.encode_text(params, ids, mask)
        tt = jnp.full((x0.shape[0],), t, jnp.int32)
        xt = noising.add_noise(gen.sched, x0, jax.random.normal(key, x0.shape), tt)
        x0_hat = noising.predict_x0(gen.sched, xt, model.denoise(params, xt, tt, emb, mask), tt, pred)
        return jnp.mean((jnp.clip(x0_hat, -1.0, 1.0) - x0) ** 2)

    rows = []
    print(f"{'t':>4} {'video':>8} {'per-frame':>10} {'temporal gain':>14} {'opposite dir':>13} {'dir effect':>11}")
    for t in (int(s) for s in args.timesteps.split(",")):
        key = jax.random.PRNGKey(t)
        video = float(x0_error(params, t, *tokens["caption"], key))
        frame = float(x0_error(per_frame, t, *tokens["caption"], key))
        opp = float(x0_error(params, t, *tokens["opposite"], key))
        rows.append(dict(t=t, video=video, per_frame=frame, opposite=opp))
        print(
            f"{t:4d} {video:8.4f} {frame:10.4f} {100 * (frame - video) / frame:13.1f}% {opp:13.4f} "
            f"{100 * (opp - video) / video:+10.1f}%",
            flush=True,
        )
    with open(os.path.join(ROOT, "bench", "results.jsonl"), "a") as f:
        f.write(
            json.dumps(
                dict(
                    bench="denoising_gain",
                    checkpoint=args.checkpoint,
                    step=args.step,
                    num_clips=args.num_clips,
                    seed=args.seed,
                    rows=rows,
                    date=datetime.date.today().isoformat(),
                    machine=platform.node(),
                    cpu_count=os.cpu_count(),
                )
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
