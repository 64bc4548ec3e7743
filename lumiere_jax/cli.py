"""The logic behind `main.py`'s modes (importable, so notebooks can call it too)."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import numpy as np
from absl import logging

from lumiere_jax import config as config_lib
from lumiere_jax.sampling import settings

MODES = ("train", "sample", "eval", "export")
TASKS = config_lib.TASKS  # the conditional tasks, and sdedit: video-to-video with the base model

# RunArgs fields that default to a config value when not given (None): field -> (section, key).
FROM_CONFIG = {
    "task": ("task", "name"),
    "strength": ("task", "strength"),
    "outpaint_padding": ("task", "outpaint_padding"),
    "outpaint_direction": ("task", "outpaint_direction"),
    "outpaint_amount": ("task", "outpaint_amount"),
    "resize_inputs": ("task", "resize_inputs"),
    "paste_known": ("task", "paste_known"),
    "style_checkpoint": ("task", "style_checkpoint"),
    "style_alpha": ("task", "style_alpha"),
    "multidiffusion": ("ssr", "multidiffusion"),
    "eval_split": ("eval", "splits"),
    "eval_num_prompts": ("eval", "num_prompts"),
    "eval_tasks": ("eval", "tasks"),
}


@dataclasses.dataclass
class RunArgs:
    """What `main.py`'s flags say to `run`, typed; its defaults are the flags' defaults (main.py reads
    them from here). Build it from absl flags (or any object with these attributes) with `RunArgs.of`."""

    mode: str = "train"
    workdir: str | None = None
    checkpoint: str | None = None
    export_dir: str | None = None
    export_dtype: str = "float32"
    prompt: Sequence[str] = ()
    prompts_file: str | None = None
    num_samples: int | None = None
    seed: int | None = None
    num_steps: int | None = None
    guidance_scale: float | None = None
    sampler: str | None = None
    output_dir: str | None = None
    output_exists: str = "error"
    negative_prompt: str | None = None
    latents: str | None = None
    input_video: Sequence[str] = ()
    task: str | None = None
    image: str | None = None
    mask: str | None = None
    # None below: the config's value (FROM_CONFIG; `resolve`), e.g. config.task.strength
    eval_split: str | None = None
    eval_num_prompts: int | None = None
    eval_tasks: str | None = None
    outpaint_padding: Sequence[str] | None = None
    outpaint_direction: str | None = None
    outpaint_amount: float | None = None
    strength: float | None = None
    resize_inputs: bool | None = None
    paste_known: bool | None = None
    style_checkpoint: str | None = None
    style_alpha: float | None = None
    multidiffusion: bool | None = None

    @classmethod
    def of(cls, flags: Any) -> "RunArgs":
        """From absl FLAGS, a namespace or a RunArgs: the attributes it has, defaults for the rest."""
        if isinstance(flags, cls):
            return flags
        values = {}
        for field in dataclasses.fields(cls):
            try:
                values[field.name] = getattr(flags, field.name)
            except AttributeError:
                continue
        return cls(**values)

    def resolve(self, config) -> "RunArgs":
        """The fields left None (not given as flags) from the config's task / eval / ssr sections
        (FROM_CONFIG; their library defaults when the config predates them). "" and () mean unset."""
        values = {}
        for field, (section, key) in FROM_CONFIG.items():
            if getattr(self, field) is not None:
                continue
            value = config_lib.value(config, section, key)
            if value in ("", ()):
                value = None
            elif field == "outpaint_padding" and value is not None:
                value = [str(v) for v in value]
            values[field] = value
        return dataclasses.replace(self, **values)


def read_prompts(prompts: list[str], prompts_file: str | None) -> list[str]:
    out = list(prompts)
    if prompts_file:
        if not os.path.isfile(prompts_file):
            raise FileNotFoundError(f"--prompts_file {prompts_file} does not exist")
        try:
            with open(prompts_file, encoding="utf-8-sig") as f:
                from_file = [line.strip() for line in f if line.strip()]
        except UnicodeDecodeError as e:
            raise ValueError(
                f"--prompts_file {prompts_file} is not UTF-8 text ({e.reason} at byte {e.start})"
            ) from None
        if not from_file:
            raise ValueError(f"--prompts_file {prompts_file} holds no prompts (one per line)")
        out += from_file
    return out


def _require(value: Any, flag: str, mode: str) -> Any:
    if not value:
        raise ValueError(f"--mode={mode} needs --{flag}")
    return value


def run(config, flags: RunArgs | Any, config_overrides: dict[str, Any] | None = None) -> Any:
    """`config`: the config file with its --config.* overrides applied; `flags`: a `RunArgs` (main.py's
    flags, or any object with those attributes, are converted once by `RunArgs.of`); `config_overrides`:
    the explicit --config.* overrides alone (dotted key -> value, `config_flags.get_override_values`),
    so that an override of an architecture key a checkpoint fixes is refused rather than ignored.
    Precedence: lumiere_jax/sampling/settings.py."""
    from lumiere_jax.train import validation

    validation.validate(config)
    config_overrides = dict(config_overrides or {})
    flags = RunArgs.of(flags).resolve(config)
    if flags.mode not in MODES:
        raise ValueError(f"unknown --mode {flags.mode!r}; choose one of {MODES}")
    mode = flags.mode
    if mode == "train":
        from lumiere_jax import sampling
        from lumiere_jax.train import trainer

        return trainer.train(config, _require(flags.workdir, "workdir", mode), sampling.write_training_samples)
    if mode == "export":
        from lumiere_jax.train import checkpoint

        workdir = _require(flags.workdir, "workdir", mode)
        params, stored = checkpoint.load(workdir)
        settings.check_fixed(stored, config_overrides, workdir)
        # The export samples as the CLI would from the workdir: the config file's (and the flags')
        # sample / ssr settings over the stored ones, so that Generator.load gets the same defaults.
        sample, ssr = settings.cli_sampling(config, flags)
        stored = settings.with_settings(stored, sample=sample, ssr=ssr)
        out = flags.export_dir or os.path.join(workdir, "export")
        checkpoint.export(out, params, stored, flags.export_dtype)
        logging.info("exported EMA parameters (%s) to %s", flags.export_dtype, out)
        print(f"exported to {out}")
        return out
    from lumiere_jax import sampling

    seed = config.sample.seed if flags.seed is None else flags.seed
    if mode in ("sample", "eval") and (config.cascade.base or config.cascade.ssr):
        return _cascade(config, flags, config_overrides, seed)
    path = flags.checkpoint or _require(flags.workdir, "workdir or --checkpoint", mode)
    if mode == "eval":
        eval_task_list(flags)  # a bad --eval_tasks fails before anything is loaded
    gen = load_generator(path, config, flags, config_overrides)
    if flags.style_checkpoint:
        if not os.path.exists(flags.style_checkpoint):
            raise FileNotFoundError(f"--style_checkpoint {flags.style_checkpoint} does not exist")
        gen = gen.with_style(flags.style_checkpoint, flags.style_alpha)
    if gen.config.get("stage") != config.stage:
        what = "images (written as 1-frame videos)" if gen.model.config.kind == "image" else "videos"
        note = (
            f"note: {path} holds a {gen.config.get('stage')!r} model, the config file is for stage "
            f"{config.stage!r}; the checkpoint's architecture is used, and it makes {what}"
        )
        logging.warning(note)
        print(note)
    low_res = gen.model.config.conditioning == "low_res"
    announce({**gen.settings(), **(gen.ssr_settings() if low_res else {})})
    if mode == "sample" and flags.task:
        return _run_task(gen, config, flags, seed, path)
    if mode == "sample" and low_res:
        return _upsample_files(gen, config, flags, seed, path)
    if mode == "sample":
        prompts = read_prompts(flags.prompt, flags.prompts_file) or list(config.sample.prompts)
        num = config.sample.num_samples if flags.num_samples is None else flags.num_samples
        out = flags.output_dir or os.path.join(flags.workdir or path, "samples", "cli")
        latents = None
        if flags.latents:
            if not os.path.isfile(flags.latents):
                raise FileNotFoundError(f"--latents {flags.latents} does not exist")
            latents = np.load(flags.latents)
        return sample_to_folder(
            gen,
            prompts,
            num,
            seed,
            out,
            fps=config.sample.fps,
            exists=flags.output_exists,
            negative_prompt=flags.negative_prompt,
            latents=latents,
        )
    if mode == "eval" and (gen.model.config.conditioning == "masked" or flags.task or flags.eval_tasks):
        return _eval_tasks(gen, config, flags, seed, path)
    if mode == "eval":
        from lumiere_jax.eval import evaluate

        out_dir = flags.output_dir or flags.workdir or path

        def one(split):
            scorer = _split_fvd(config, split) if gen.model.config.kind == "video" else None  # no FVD of images
            scores = evaluate.evaluate_split(gen, config, split, flags.eval_num_prompts, seed, fvd=scorer)
            if scorer is not None:  # the generated videos' features, for FVD at other counts (bench/fvd_stability.py)
                os.makedirs(out_dir, exist_ok=True)
                np.save(os.path.join(out_dir, f"fvd_features_{split}.npy"), scorer.last_features)
            return scores

        return _eval_splits(flags, one, out_dir)
    raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")


def sample_to_folder(
    gen,
    prompts: Sequence[str],
    num_samples: int,
    seed: int,
    out: str,
    *,
    fps: int,
    exists: str = "error",
    batch_size: int = 8,
    negative_prompt: str | None = None,
    latents: np.ndarray | None = None,
):
    """Text-to-video into the folder `out`, written batch by batch (videos, then the manifest, atomically),
    so a killed run keeps its finished batches. Sample i is (prompt i // num_samples, seed + i) as in
    one `generate` call. With exists="append" the samples the folder already lists with the same
    settings are skipped: rerunning a command finishes its work. `negative_prompt`: for every
    prompt; `latents` [N, ...]: the initial noise of all N samples. Returns the new samples' Result."""
    from lumiere_jax.sampling import engine, outputs, text_to_video

    if isinstance(prompts, str) or not prompts:
        raise ValueError(f"give a list of one or more prompts, got {prompts!r}")
    engine.check_call(num_samples, seed, batch_size, len(prompts) * num_samples)
    if int(fps) < 1:
        raise ValueError(f"config.sample.fps must be >= 1, got {fps!r}")
    if latents is not None:  # all samples' noise, checked before any batch is sampled
        latents = text_to_video.check_latents(latents, len(prompts) * num_samples, gen.model.config, "--latents")
    kept = outputs.prepare_output_dir(out, exists)
    settings = gen.settings()
    if negative_prompt is not None:
        settings["negative_prompt"] = negative_prompt
    done = {(e.get("prompt"), e.get("seed")) for e in kept if all(e.get(k) == v for k, v in settings.items())}
    todo = [
        (p, seed + i) for i, p in enumerate(p for p in prompts for _ in range(num_samples)) if (p, seed + i) not in done
    ]
    if done:
        print(f"{out} already holds {len(done)} of these samples; sampling the other {len(todo)}")
    runs = []  # consecutive seeds, at most batch_size each: one generate call
    for p, sd in todo:
        if runs and runs[-1][-1][1] == sd - 1 and len(runs[-1]) < batch_size:
            runs[-1].append((p, sd))
        else:
            runs.append([(p, sd)])
    results = []
    for run_ in runs:
        lat = None if latents is None else latents[run_[0][1] - seed : run_[-1][1] - seed + 1]
        r = gen.generate(
            [p for p, _ in run_],
            num_samples=1,
            seed=run_[0][1],
            batch_size=batch_size,
            negative_prompt=negative_prompt,
            latents=lat,
        )
        outputs.write_outputs(r, out, fps=fps, exists="append", contact_sheet=False)
        results.append(r)
    outputs.write_contact_sheet(out)  # once, not per batch: it reads every sample back
    print(f"wrote {sum(len(r.prompts) for r in results)} samples to {out}")
    if not results:
        return outputs.Result(np.zeros((0,), np.uint8), [], [], settings)
    return outputs.Result(
        np.concatenate([r.videos for r in results]),
        [p for r in results for p in r.prompts],
        [sd for r in results for sd in r.seeds],
        results[0].settings,
    )


def load_generator(
    path: str,
    config,
    flags,
    config_overrides: dict[str, Any],
    *,
    use_config: bool = True,
    flag_keys: tuple[str, ...] = settings.FLAG_KEYS,
):
    """A Generator of the checkpoint at `path` sampling with the CLI's settings (`settings.cli_sampling`:
    the CLI config's sample / ssr sections, then the explicit flags, over the stored ones). An explicit
    --config override of an architecture key that differs from the checkpoint's raises (before any
    compile). `use_config=False`: the CLI config is another model's (a cascade's base stage)."""
    from lumiere_jax import runtime, sampling

    sample, ssr = settings.cli_sampling(config, flags, flag_keys=flag_keys, use_config=use_config)
    t5 = settings.t5_locations(config_overrides) if use_config else {}
    gen = sampling.Generator.load(path, runtime.sampling_mesh(config), sample=sample, ssr=ssr, t5=t5)
    if use_config:
        settings.check_fixed(gen.config, config_overrides, path)
    return gen


def announce(effective: dict[str, Any]) -> None:
    """Print (and log) the effective sampling settings, one line."""
    line = "sampling settings: " + settings.describe(effective)
    logging.info(line)
    print(line)


def _cascade(config, flags, config_overrides, seed):
    from lumiere_jax import sampling

    if not (config.cascade.base and config.cascade.ssr):
        raise ValueError("a cascade needs both config.cascade.base and config.cascade.ssr (exports or workdirs)")
    for p in (config.cascade.base, config.cascade.ssr):
        if not os.path.exists(p):
            raise FileNotFoundError(f"cascade checkpoint {p} does not exist")
    # The CLI config is the SSR stage's; the base stage keeps its stored settings under the explicit flags.
    base = load_generator(config.cascade.base, config, flags, config_overrides, use_config=False)
    ssr = load_generator(config.cascade.ssr, config, flags, config_overrides, flag_keys=settings.CASCADE_SSR_FLAG_KEYS)
    cascade = sampling.Cascade(base, ssr)
    announce({"base": base.settings(), "ssr": {**ssr.settings(), **ssr.ssr_settings()}})
    if flags.mode == "eval":
        return _eval_splits(
            flags,
            lambda split: evaluate_cascade(cascade, config, split, flags, seed),
            flags.output_dir or flags.workdir or "runs/cascade",
        )
    prompts = read_prompts(flags.prompt, flags.prompts_file) or list(config.sample.prompts)
    num = config.sample.num_samples if flags.num_samples is None else flags.num_samples
    out = flags.output_dir or os.path.join(flags.workdir or "runs/cascade", "samples", "cli")
    sampling.outputs.prepare_output_dir(out, flags.output_exists)
    result = cascade.generate(prompts, num_samples=num, seed=seed, multidiffusion=flags.multidiffusion)
    sampling.write_outputs(result, out, fps=config.sample.fps, exists="append")
    print(f"wrote {len(result.prompts)} cascade samples to {out}")
    return result


def _upsample_files(gen, config, flags, seed, path):
    """SSR alone: up-sample --input_video files, one --prompt for all or one per video."""
    from lumiere_jax import sampling
    from lumiere_jax.data import video_io

    if not flags.input_video:
        raise ValueError(
            "a super-resolution model samples from low-resolution inputs: pass --input_video "
            "(or use a cascade config that sets config.cascade.base and .ssr)"
        )
    videos = []
    for f in flags.input_video:
        if not os.path.exists(f):
            raise FileNotFoundError(f"--input_video {f} does not exist")
        videos.append(video_io.read_video(f)[0])
    shapes = {v.shape for v in videos}
    if len(shapes) != 1:
        raise ValueError(f"--input_video files have different shapes {sorted(shapes)}; up-sample them separately")
    prompts = read_prompts(flags.prompt, flags.prompts_file) or [""]
    out = flags.output_dir or os.path.join(flags.workdir or path, "samples", "upsampled")
    sampling.outputs.prepare_output_dir(out, flags.output_exists)
    result = gen.upsample(np.stack(videos), prompts, seed=seed, multidiffusion=flags.multidiffusion)
    sampling.write_outputs(result, out, fps=config.sample.fps, exists="append")
    print(f"wrote {len(result.prompts)} up-sampled videos to {out}")
    return result


def evaluate_cascade(cascade, config, split, flags, seed):
    from lumiere_jax.eval import evaluate

    return evaluate.evaluate_cascade_split(
        cascade,
        config,
        split,
        flags.eval_num_prompts,
        seed,
        fvd_num_real=_fvd_num_real(config),
        features=_i3d() if _fvd_num_real(config) else None,
        multidiffusion=flags.multidiffusion,
    )


def eval_task_list(flags) -> tuple[str, ...]:
    """The tasks `--mode=eval` scores on real clips: --eval_tasks (config.eval.tasks), else --task,
    else every task of eval/conditional.py (a conditional model)."""
    from lumiere_jax.eval import conditional

    if flags.eval_tasks:
        tasks = tuple(t.strip() for t in flags.eval_tasks.split(",") if t.strip())
        unknown = [t for t in tasks if t not in conditional.TASKS]
        if unknown or not tasks:
            raise ValueError(f"--eval_tasks {flags.eval_tasks!r}: unknown {unknown}; choose from {conditional.TASKS}")
        return tasks
    return (flags.task,) if flags.task else conditional.TASKS


def _eval_tasks(gen, config, flags, seed, path):
    """--mode=eval of the conditional applications (all of them, or --task) on real clips."""
    from lumiere_jax.eval import conditional

    tasks = eval_task_list(flags)
    if gen.model.config.conditioning != "masked" and tasks != ("sdedit",):
        raise ValueError(
            f"evaluating {','.join(tasks)} needs a conditional model; this one's conditioning is "
            f"{gen.model.config.conditioning!r} (only sdedit evaluates a video model)"
        )

    def one(split):
        clips, captions = conditional.split_clips(config, split, flags.eval_num_prompts)
        scores = conditional.evaluate_tasks(gen, clips, captions, tasks, seed=seed, fvd=_split_fvd(config, split))
        scores["split"] = split
        return scores

    return _eval_splits(
        flags,
        one,
        flags.output_dir or flags.workdir or path,
        formatter=conditional.format_task_scores,
        prefix="eval_tasks",
    )


def _fvd_num_real(config) -> int:
    """config.eval.fvd_num_real (0: no FVD)."""
    return int(config_lib.value(config, "eval", "fvd_num_real"))


_FEATURES = {}  # one I3D (weights and compiled function) per process


def _split_fvd(config, split: str):
    """FVD against `split`'s real clips for --mode=eval, or None when config.eval.fvd_num_real = 0."""
    num_real = _fvd_num_real(config)
    if not num_real:
        return None
    from lumiere_jax.eval import fvd

    return fvd.SplitFVD(config, split, num_real, _i3d())


def _i3d():
    from lumiere_jax.eval import fvd

    if "i3d" not in _FEATURES:
        _FEATURES["i3d"] = fvd.I3DFeatures()
    return _FEATURES["i3d"]


def _eval_splits(flags, evaluate_split, out_dir: str, formatter=None, prefix: str = "eval") -> dict:
    """Evaluate each of --eval_split, print the scores, write <out_dir>/<prefix>_<split>.json."""
    from lumiere_jax.eval import evaluate

    all_scores = {}
    for split in flags.eval_split.split(","):
        scores = evaluate_split(split)
        print((formatter or evaluate.format_scores)(scores))
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, f"{prefix}_{split}.json"), "w") as f:
            json.dump(evaluate.json_safe(scores), f, indent=1, allow_nan=False)
        all_scores[split] = scores
    return all_scores


def _load_video_flag(flags, task: str):
    from lumiere_jax.sampling import inputs as cond_inputs

    if len(flags.input_video) != 1:
        raise ValueError(f"--task={task} takes exactly one --input_video, got {len(flags.input_video)}")
    return cond_inputs.load_video(flags.input_video[0])


def _outpaint_padding(values):
    if not values:
        return None
    try:
        padding = [int(v) for v in values]
    except ValueError:
        raise ValueError(f"--outpaint_padding takes integers (N or top,bottom,left,right), got {values}") from None
    if len(padding) not in (1, 4):
        raise ValueError(f"--outpaint_padding takes 1 or 4 integers, got {len(padding)}")
    return padding[0] if len(padding) == 1 else tuple(padding)


def _run_task(gen, config, flags, seed, path):
    """--mode=sample --task=...: conditional generation from files, or SDEdit."""
    from lumiere_jax import sampling
    from lumiere_jax.sampling import inputs as cond_inputs

    task = flags.task
    if task not in TASKS:
        raise ValueError(f"unknown --task {task!r}; choose one of {TASKS}")
    prompts = read_prompts(flags.prompt, flags.prompts_file)
    if len(prompts) != 1:
        raise ValueError(f"--task={task} takes one --prompt, got {len(prompts)}")
    out = flags.output_dir or os.path.join(flags.workdir or path, "samples", task)
    sampling.outputs.prepare_output_dir(out, flags.output_exists)
    kw = dict(num_samples=1 if flags.num_samples is None else flags.num_samples, seed=seed, resize=flags.resize_inputs)
    needs = {"i2v": ("image",), "cinemagraph": ("image", "mask"), "inpaint": ("mask",)}.get(task, ())
    for name in needs:
        _require(getattr(flags, name), name, f"sample --task={task}")
    if task == "sdedit":
        result = gen.sdedit(_load_video_flag(flags, task), prompts[0], strength=flags.strength, **kw)
    else:
        kw["paste_known"] = flags.paste_known
        if task == "i2v":
            result = gen.i2v(cond_inputs.load_image(flags.image), prompts[0], **kw)
        elif task == "cinemagraph":
            region = cond_inputs.load_mask(flags.mask, config.conditional.mask_threshold)
            result = gen.cinemagraph(cond_inputs.load_image(flags.image), region, prompts[0], **kw)
        elif task == "inpaint":
            region = cond_inputs.load_mask(flags.mask, config.conditional.mask_threshold)
            result = gen.inpaint(_load_video_flag(flags, task), region, prompts[0], **kw)
        else:
            padding = _outpaint_padding(flags.outpaint_padding)
            if (padding is None) == (flags.outpaint_direction is None):
                raise ValueError("--task=outpaint needs exactly one of --outpaint_padding and --outpaint_direction")
            result = gen.outpaint(
                _load_video_flag(flags, task),
                prompts[0],
                padding=padding,
                direction=flags.outpaint_direction,
                amount=flags.outpaint_amount,
                **kw,
            )
    sampling.write_outputs(result, out, fps=config.sample.fps, exists="append")
    print(f"wrote {len(result.prompts)} {task} samples to {out}")
    return result
