"""Sample a model on a dataset split's captions and score the videos with the probe."""

from __future__ import annotations

import math
from typing import Any

from lumiere_jax.eval import probe

SUMMARY_KEYS = ("color_accuracy", "direction_accuracy", "shape_accuracy", "presence", "jitter_px")


def split_prompts(config, split: str, num: int) -> list[str]:
    """The captions of the first `num` examples of `split` (moving_shapes: held_out,
    test or train), in order: a fixed evaluation set."""
    from lumiere_jax.train import validation
    from lumiere_jax.data import sources

    model_cfg = validation.validate(config)
    source = sources.make_source(config, model_cfg, split)
    return [source[i]["caption"] for i in range(min(num, len(source)))]


def evaluate_prompts(generator, prompts: list[str], seed: int = 0, fvd=None, **overrides) -> dict[str, Any]:
    """Probe scores of one video per prompt (seeds seed, seed + 1, ..); `fvd` (an `fvd.SplitFVD`, or
    any callable of the videos returning a dict) adds scores["fvd"]."""
    result = generator.generate(prompts, num_samples=1, seed=seed, progress=False, **overrides)
    if result.videos.ndim == 4:  # a T2I model's images: colour and shape of one frame, no motion, no FVD
        if fvd is not None:
            raise ValueError("FVD scores videos; this model samples images (set config.eval.fvd_num_real=0)")
        scores = probe.score(result.videos[:, None], result.prompts)
        for key in ("direction_accuracy", "jitter_px"):
            scores[key] = float("nan")
        for p in scores["per_video"]:
            p["direction_correct"] = None
        scores["images"] = True
    else:
        scores = probe.score(result.videos, result.prompts)
    scores["settings"] = result.settings
    if fvd is not None:
        scores["fvd"] = fvd(result.videos)
    return scores


def evaluate_split(generator, config, split: str, num: int, seed: int = 0, fvd=None, **overrides) -> dict[str, Any]:
    scores = evaluate_prompts(generator, split_prompts(config, split, num), seed, fvd=fvd, **overrides)
    scores["split"] = split
    return scores


def cascade_scores(result, fvd_base=None, fvd_ssr=None) -> dict[str, Any]:
    """Probe scores of a cascade `Result`'s base videos (`low_res`) and super-resolved ones.
    `jitter_px_base_scale` is the SSR output's jitter in base-resolution pixels. `fvd_base` /
    `fvd_ssr`: FVD against real clips at each stage's resolution (see `evaluate_prompts`)."""
    base = probe.score(result.low_res, result.prompts)
    ssr = probe.score(result.videos, result.prompts)
    ssr["jitter_px_base_scale"] = ssr["jitter_px"] * result.low_res.shape[-2] / result.videos.shape[-2]
    if fvd_base is not None:
        base["fvd"] = fvd_base(result.low_res)
    if fvd_ssr is not None:
        ssr["fvd"] = fvd_ssr(result.videos)
    return {
        "base": base,
        "ssr": ssr,
        "agreement": agreement(base, ssr),
        "settings": result.settings,
        "num_videos": len(result.prompts),
    }


def agreement(base: dict[str, Any], ssr: dict[str, Any]) -> dict[str, float]:
    """Per-video agreement of the probe's readings (colour, shape, direction) between base videos
    and their super-resolved versions: does the SSR keep what the base model made?"""
    pairs = list(zip(base["per_video"], ssr["per_video"]))
    return {k: sum(b[k] == s[k] for b, s in pairs) / max(len(pairs), 1) for k in ("color", "shape", "direction")}


def evaluate_cascade_prompts(
    cascade, prompts: list[str], seed: int = 0, fvd_base=None, fvd_ssr=None, **kw
) -> dict[str, Any]:
    """Scores of the base videos and of their super-resolved versions, same prompts and seeds."""
    result = cascade.generate(prompts, num_samples=1, seed=seed, progress=False, **kw)
    return cascade_scores(result, fvd_base, fvd_ssr)


def base_config(cascade, config):
    """The config stored with a cascade's base model, reading data from `config.data.data_dir`."""
    import ml_collections

    out = ml_collections.ConfigDict(cascade.base.config)
    out.data.data_dir = config.data.data_dir
    return out


def evaluate_cascade_split(
    cascade, config, split: str, num: int, seed: int = 0, fvd_num_real: int = 0, features=None, **kw
) -> dict[str, Any]:
    """`split`'s captions of the base model's dataset (the config stored with the base model,
    read from `config.data.data_dir`); `fvd_num_real` > 0: FVD of both stages against the split's
    real clips at their resolutions (the base's dataset config, and `config`'s for the SSR), with
    `features` (default: an `fvd.I3DFeatures`)."""
    base = base_config(cascade, config)
    fvd_base = fvd_ssr = None
    if fvd_num_real:
        from lumiere_jax.eval import fvd

        features = features if features is not None else fvd.I3DFeatures()
        fvd_base = fvd.SplitFVD(base, split, fvd_num_real, features)
        fvd_ssr = fvd.SplitFVD(config, split, fvd_num_real, features)
    scores = evaluate_cascade_prompts(cascade, split_prompts(base, split, num), seed, fvd_base, fvd_ssr, **kw)
    scores["split"] = split
    return scores


def json_safe(obj: Any) -> Any:
    """NaN/inf -> None, recursively, so the scores are strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def format_scores(scores: dict[str, Any]) -> str:
    if "base" in scores and "ssr" in scores:  # a cascade: one line per stage
        lines = [
            format_scores(
                {**scores[k], "split": f"{scores.get('split', 'prompts')}, {k}", "num_videos": scores.get("num_videos")}
            )
            for k in ("base", "ssr")
        ]
        if "agreement" in scores:
            lines.append("base/ssr agreement: " + " ".join(f"{k}={v:.3f}" for k, v in scores["agreement"].items()))
        return "\n".join(lines)
    parts = []
    for k in SUMMARY_KEYS:
        v = scores.get(k)
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            parts.append(f"{k}={v:.3f}")
    if isinstance(scores.get("fvd"), dict):
        parts.append(format_fvd(scores["fvd"]))
    head = f"[{scores.get('split', 'prompts')}, {scores.get('num_videos')} videos] "
    return head + " ".join(parts)


def format_fvd(f: dict[str, Any]) -> str:
    return f"fvd={f['fvd']:.1f} (real-vs-real floor {f['fvd_floor']:.1f}; {f['num_generated']} vs {f['num_real']} real)"
