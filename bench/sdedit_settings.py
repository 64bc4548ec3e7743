r"""SDEdit with another caption under several sampling settings: does the edit follow the new prompt?

Re-generates the first `num_clips` clips of a moving_shapes split through `Generator.sdedit` (the
path `--mode=eval --task=sdedit` runs) with the caption `eval.conditional` gives each clip (colour and
direction changed, shape kept), once per setting, and scores the videos with the probe against the
new caption and the input's.

    .venv/bin/python bench/sdedit_settings.py --checkpoint=assets/moving_shapes_base --split=held_out \
        --num_clips=16 --strength=0.9 --settings="guidance_scale=3;guidance_scale=6;eta=1.0"

A setting is `key=value[,key=value]` of the sampling settings (guidance_scale, eta, num_steps,
sampler, ...), `;`-separated. Prints one line per setting, appends one JSON line to
bench/results.jsonl.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lumiere_jax import config as config_lib, runtime, sampling  # noqa: E402
from lumiere_jax.eval import conditional  # noqa: E402

FLOATS = ("guidance_scale", "eta", "dynamic_thresholding_ratio", "high_noise_guidance_scale", "high_noise_from")
INTS = ("num_steps",)


def parse_setting(text: str) -> dict:
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key] = float(value) if key in FLOATS else int(value) if key in INTS else value
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="assets/moving_shapes_base")
    p.add_argument("--config", default="configs/moving_shapes.py:video", help="FILE[:ARG]: the split's dataset")
    p.add_argument("--split", default="held_out")
    p.add_argument("--num_clips", type=int, default=16)
    p.add_argument("--strength", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--settings", default="guidance_scale=3", help="';'-separated settings")
    p.add_argument("--results", default=os.path.join(ROOT, "bench", "results.jsonl"))
    args = p.parse_args(argv)
    runtime.setup()
    gen = sampling.Generator.load(args.checkpoint)
    path, _, arg = args.config.partition(":")
    config = config_lib.load_config_file(path, arg or None)
    clips, captions = conditional.split_clips(config, args.split, args.num_clips)
    new = [conditional.other_caption(c, i) for i, c in enumerate(captions)]
    rows = {}
    for text in args.settings.split(";"):
        t0 = time.perf_counter()
        r = gen.sdedit(
            clips, new, strength=args.strength, seed=args.seed, progress=False, resize=False, **parse_setting(text)
        )
        scores = conditional.sdedit_edit_scores(r.videos, clips, captions, new)
        rows[text] = {
            "start_step": r.settings["start_step"],
            "new_color": scores["new_prompt"]["color_accuracy"],
            "new_direction": scores["new_prompt"]["direction_accuracy"],
            "input_direction": scores["input_caption"]["direction_accuracy"],
            "psnr_to_input": scores["psnr_to_input"]["mean"],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(text, rows[text], flush=True)
    line = {
        "name": "sdedit_settings",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "args": vars(args) | {"results": None},
        "rows": rows,
    }
    with open(args.results, "a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
