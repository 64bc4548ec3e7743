"""Quickstart (`make demo`): the whole recipe, briefly, on a CPU.

1. builds the `moving_shapes` dataset (16 frames at 32x32);
2. pre-trains the T2I U-Net and text encoder on single frames;
3. inflates it into a STUNet and trains the temporal layers (spatial frozen);
4. samples videos for training and held-out prompts (one batch), writes them (mp4/gif/npy,
   manifest, contact sheet) and prints the probe's scores;
5. samples the shipped reference model (assets/) with the same prompts and prints its
   scores, so you see what a short run gives and what the full recipe gives; then runs
   the reference cascade (base 32px -> SSR with temporal MultiDiffusion -> 64px) on the
   training prompts and prints the probe's scores of both resolutions;
6. image-to-video with the shipped conditional (7-channel) reference: the first frames of
   test clips as the known frame, their captions as prompts; prints the first frame's PSNR
   and the probe's scores (docs/conditional.md).

    python -m lumiere_jax.demo [--workdir=runs/demo] [--t2i_steps=60] [--video_steps=12]

The defaults keep it short (docs/reference_model.md "make demo": the wall time, cold and with a warm
compilation cache): a run this brief learns colours at best, and the few prompts it samples show what
the pipeline does, not how good the reference is; the reference's measured evaluation (64 prompts per
split) is printed from the JSONs shipped next to it. Larger flags give longer runs and more prompts.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from absl import app, flags, logging

from lumiere_jax import config as config_lib
from lumiere_jax import runtime, sampling
from lumiere_jax.data import moving_shapes
from lumiere_jax.eval import evaluate, probe
from lumiere_jax.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
flags.DEFINE_string("workdir", "runs/demo", "Where the demo's runs, data and samples go.")
flags.DEFINE_string(
    "config", os.path.join(ROOT, "configs", "moving_shapes.py"), "Config file whose `t2i` and `video` the demo trains."
)
flags.DEFINE_integer("t2i_batch", 16, "T2I pre-training batch.", lower_bound=1)
flags.DEFINE_integer("video_batch", 4, "STUNet training batch.", lower_bound=1)
flags.DEFINE_integer("t2i_steps", 60, "T2I pre-training steps.", lower_bound=1)
flags.DEFINE_integer("video_steps", 12, "STUNet (temporal layers) training steps.", lower_bound=1)
flags.DEFINE_integer(
    "num_train_prompts", 2, "Training prompts to sample and score (at most 4).", lower_bound=1, upper_bound=4
)
flags.DEFINE_integer("num_eval", 2, "Held-out prompts to sample and score.", lower_bound=1)
flags.DEFINE_integer(
    "num_cascade", 1, "Training prompts the reference cascade upsamples to 64 px.", lower_bound=0, upper_bound=4
)
flags.DEFINE_integer("sample_steps", 20, "DDIM steps when sampling.", lower_bound=1)
flags.DEFINE_string("reference", os.path.join(ROOT, "assets", "moving_shapes_base"), "Shipped reference export.")
flags.DEFINE_string(
    "reference_ssr", os.path.join(ROOT, "assets", "moving_shapes_ssr"), "Shipped super-resolution export (32 -> 64 px)."
)
flags.DEFINE_string(
    "reference_conditional",
    os.path.join(ROOT, "assets", "moving_shapes_conditional"),
    "Shipped conditional (7-channel) export: image-to-video step.",
)
flags.DEFINE_integer("num_i2v", 2, "Test clips whose first frame the conditional reference animates.", lower_bound=0)
FLAGS = flags.FLAGS

TRAIN_PROMPTS = [
    "a red square moving right",
    "a green triangle moving left",
    "a blue circle moving down",
    "a yellow triangle moving up",
]


def _config(arg: str, workdir: str, steps: int, **overrides):
    c = config_lib.load_config_file(FLAGS.config, arg)
    c.data.data_dir = os.path.join(workdir, "data")
    c.train.num_steps = steps
    c.train.checkpoint_every = steps
    c.train.log_every = max(steps // 6, 1)
    c.optim.warmup_steps = min(c.optim.warmup_steps, steps // 5)
    for k, v in overrides.items():
        section, field = k.split(".")
        c[section][field] = v
    return c


def _score(gen: sampling.Generator, prompts: list[str], n: int, out_dir: str, fps: int) -> tuple[dict, dict]:
    """Samples `prompts` in one batch; the probe's scores of the first `n` (training prompts) and the rest."""
    result = gen.generate(prompts, seed=0, batch_size=len(prompts), num_steps=FLAGS.sample_steps)
    sampling.write_outputs(result, out_dir, fps=fps)
    return (probe.score(result.videos[:n], result.prompts[:n]), probe.score(result.videos[n:], result.prompts[n:]))


def _cascade(prompts: list[str], out_dir: str, fps: int, mesh_config) -> None:
    cascade = sampling.Cascade.load(FLAGS.reference, FLAGS.reference_ssr, mesh_config)
    result = cascade.generate(prompts, seed=0, progress=False, base_overrides={"num_steps": FLAGS.sample_steps})
    scores = evaluate.cascade_scores(result)
    sampling.write_outputs(result, out_dir, fps=fps)
    print(f"    cascade (base -> SSR with MultiDiffusion, {result.videos.shape[-2]}px) wrote {out_dir}/")
    print("    reference cascade:\n      " + evaluate.format_scores(scores).replace("\n", "\n      "))


def _i2v(config, out_dir: str) -> None:
    from lumiere_jax.sampling import tasks
    from lumiere_jax.eval import conditional

    gen = sampling.Generator.load(FLAGS.reference_conditional, runtime.sampling_mesh(config))
    clips, captions = conditional.split_clips(config, "test", FLAGS.num_i2v)
    known, mask = zip(*(tasks.i2v(c[0], gen.model.config.num_frames) for c in clips))
    result = gen.conditional(
        np.stack(known), np.stack(mask), captions, seed=0, progress=False, num_steps=FLAGS.sample_steps
    )
    sampling.write_outputs(result, out_dir, fps=config.sample.fps)
    print(f"    animated the first frames of {len(clips)} test clips, wrote {out_dir}/")
    scores = {"num_videos": len(clips), "split": "test", "i2v": conditional.i2v_scores(result.videos, clips, captions)}
    print("    " + conditional.format_task_scores(scores).replace("\n", "\n    "))


def _measured(export: str) -> list[str]:
    """The export's measured full evaluation (eval_<split>.json written next to it when it was
    shipped: docs/reference_model.md), one formatted line per split."""
    import glob
    import json

    lines = []
    for path in sorted(glob.glob(os.path.join(export, "eval_*.json"))):
        with open(path) as f:
            lines.append(evaluate.format_scores(json.load(f)))
    return lines


def _summary(rows: list[tuple[str, dict]]) -> str:
    """Side-by-side table of probe scores."""
    head = f"    {'':34s}" + "".join(f"{k.replace('_accuracy', ''):>10s}" for k in evaluate.SUMMARY_KEYS)
    lines = [head]
    for name, s in rows:
        vals = "".join(f"{s.get(k, float('nan')):10.3f}" for k in evaluate.SUMMARY_KEYS)
        lines.append(f"    {name:34s}{vals}")
    return "\n".join(lines)


def main(argv) -> None:
    del argv
    import tensorflow_datasets as tfds

    logging.set_verbosity(logging.INFO)
    t0 = time.time()
    workdir = FLAGS.workdir
    t2i = _config("t2i", workdir, FLAGS.t2i_steps, **{"data.global_batch": FLAGS.t2i_batch})
    video = _config(
        "video",
        workdir,
        FLAGS.video_steps,
        **{"train.init_from": os.path.join(workdir, "t2i"), "data.global_batch": FLAGS.video_batch},
    )
    # main.py's host-device split on a CPU (one device per core; LUMIERE_JAX_CPU_DEVICES=1 turns it
    # off), here a count that divides both training batches: both cores busy in training and sampling.
    splits = [runtime.cpu_devices_for_training(c) for c in (t2i, video)]
    runtime.setup(cpu_devices=None if None in splits else math.gcd(*splits))
    tfds.disable_progress_bar()
    print(f"[1/6] building moving_shapes under {t2i.data.data_dir}")
    moving_shapes.build(t2i.data.data_dir, t2i.data.config_name)
    print(f"[2/6] pre-training the T2I U-Net for {FLAGS.t2i_steps} steps ({time.time() - t0:.0f}s)")
    trainer.train(t2i, os.path.join(workdir, "t2i"), sampling.write_training_samples)
    print(
        f"[3/6] inflating into a STUNet, training temporal layers for {FLAGS.video_steps} steps "
        f"({time.time() - t0:.0f}s)"
    )
    trainer.train(video, os.path.join(workdir, "video"), sampling.write_training_samples)

    held_out = evaluate.split_prompts(video, "held_out", FLAGS.num_eval)
    train_prompts = TRAIN_PROMPTS[: FLAGS.num_train_prompts]
    prompts = train_prompts + held_out
    n = len(train_prompts)
    print(
        f"[4/6] sampling {len(prompts)} videos ({n} train prompts, {len(held_out)} held-out) ({time.time() - t0:.0f}s)"
    )
    out = os.path.join(workdir, "samples")
    tr, ho = _score(
        sampling.Generator.load(os.path.join(workdir, "video"), runtime.sampling_mesh(video)),
        prompts,
        n,
        out,
        video.sample.fps,
    )
    print(f"    wrote {out}/ (contact_sheet.png, manifest.json, NNNN.mp4/.gif/.npy)")
    print("    this run,       train prompts: " + evaluate.format_scores(tr))
    print("    this run,    held-out prompts: " + evaluate.format_scores(ho))
    rows = [("this run, train prompts", tr), ("this run, held-out prompts", ho)]

    if os.path.isdir(FLAGS.reference):
        print(f"[5/6] sampling the shipped reference model {FLAGS.reference} ({time.time() - t0:.0f}s)")
        ref_out = os.path.join(workdir, "samples_reference")
        tr, ho = _score(
            sampling.Generator.load(FLAGS.reference, runtime.sampling_mesh(video)),
            prompts,
            n,
            ref_out,
            video.sample.fps,
        )
        print(f"    wrote {ref_out}/")
        print("    reference,      train prompts: " + evaluate.format_scores(tr))
        print("    reference,   held-out prompts: " + evaluate.format_scores(ho))
        rows += [("reference, train prompts", tr), ("reference, held-out prompts", ho)]
        print("    this short run next to the shipped reference (same prompts, seeds and settings):")
        print(_summary(rows))
        measured = _measured(FLAGS.reference)
        if measured:
            print("    the reference's full evaluation when it was shipped (docs/reference_model.md):")
            print("      " + "\n      ".join(measured))
        if os.path.isdir(FLAGS.reference_ssr) and FLAGS.num_cascade:
            _cascade(
                TRAIN_PROMPTS[: FLAGS.num_cascade],
                os.path.join(workdir, "samples_reference_cascade"),
                video.sample.fps,
                runtime.sampling_mesh(video),
            )
        if os.path.isdir(FLAGS.reference_conditional) and FLAGS.num_i2v:
            print(f"[6/6] image-to-video with {FLAGS.reference_conditional} ({time.time() - t0:.0f}s)")
            _i2v(video, os.path.join(workdir, "samples_reference_i2v"))
    else:
        print(f"[5/6] no reference model at {FLAGS.reference}; skipped")
    print(f"demo done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    app.run(main)
