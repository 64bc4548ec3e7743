"""The logic behind `main.py`'s modes (importable, so notebooks can call it too)."""
from __future__ import annotations

import json
import os
from typing import Any

from absl import logging

MODES = ("train", "sample", "eval", "export")


def read_prompts(prompts: list[str], prompts_file: str | None) -> list[str]:
    out = list(prompts)
    if prompts_file:
        if not os.path.isfile(prompts_file):
            raise FileNotFoundError(f"--prompts_file {prompts_file} does not exist")
        with open(prompts_file) as f:
            out += [line.strip() for line in f if line.strip()]
    return out


def _require(value: Any, flag: str, mode: str) -> Any:
    if not value:
        raise ValueError(f"--mode={mode} needs --{flag}")
    return value


def run(config, flags) -> Any:
    from lumiere_jax import config as config_lib
    config_lib.validate(config)
    mode = flags.mode
    if mode == "train":
        from lumiere_jax.train import trainer
        return trainer.train(config, _require(flags.workdir, "workdir", mode))
    if mode == "export":
        from lumiere_jax.train import checkpoint
        workdir = _require(flags.workdir, "workdir", mode)
        params, stored = checkpoint.load(workdir)
        out = flags.export_dir or os.path.join(workdir, "export")
        checkpoint.export(out, params, stored, flags.export_dtype)
        logging.info("exported EMA parameters (%s) to %s", flags.export_dtype, out)
        print(f"exported to {out}")
        return out
    from lumiere_jax import pipeline
    path = flags.checkpoint or _require(flags.workdir, "workdir or --checkpoint", mode)
    gen = pipeline.Generator.load(path)
    overrides = dict(num_steps=flags.num_steps, guidance_scale=flags.guidance_scale, sampler=flags.sampler)
    seed = config.sample.seed if flags.seed is None else flags.seed
    if mode == "sample":
        prompts = read_prompts(flags.prompt, flags.prompts_file) or list(config.sample.prompts)
        num = flags.num_samples or config.sample.num_samples
        result = gen.generate(prompts, num_samples=num, seed=seed, **overrides)
        out = flags.output_dir or os.path.join(flags.workdir or path, "samples", "cli")
        pipeline.write_outputs(result, out, fps=config.sample.fps)
        print(f"wrote {len(result.prompts)} samples to {out}")
        return result
    if mode == "eval":
        from lumiere_jax.eval import evaluate
        all_scores = {}
        for split in flags.eval_split.split(","):
            scores = evaluate.evaluate_split(gen, config, split, flags.eval_num_prompts, seed, **overrides)
            out = os.path.join(flags.workdir or path, f"eval_{split}.json")
            with open(out, "w") as f:
                json.dump(evaluate.json_safe(scores), f, indent=1, allow_nan=False)
            print(evaluate.format_scores(scores))
            all_scores[split] = scores
        return all_scores
    raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
