"""Settings precedence, one rule everywhere:

    library defaults < stored run config < the config file named on the command line
                     < --config.* overrides < explicit flags (--num_steps, --guidance_scale, --sampler)

Sampling from a checkpoint (`--mode=sample|eval`): the stored run config's `sample` and `ssr`
sections give way to the CLI's `config.sample` and `config.ssr` (the file with its --config.*
overrides applied), and the explicit flags beat both (`cli_sampling`). In a cascade the CLI
config is the super-resolution stage's (a configs/*.py:cascade config is an SSR config): its
`sample` and `ssr` sections set the SSR stage; the base stage keeps its stored settings, under
the explicit flags (--num_steps sets both stages, --guidance_scale and --sampler the base).
`--mode=export` writes the same CLI settings over the stored ones into the export's config, so that
`Generator.load(export)` samples as the CLI did from the workdir.

Architecture keys cannot change for a trained checkpoint: an explicit --config override of one
(`model.*` except the T5 file locations, `stage`, and the diffusion schedule, prediction type
and variance type) whose value differs from the checkpoint's raises (`check_fixed`) instead of
being ignored. The config file's own model section is not compared: it may describe the model
differently from an older stored config.
"""

from __future__ import annotations

from typing import Any, Mapping

from lumiere_jax import config as config_lib
from lumiere_jax.config import T5_PATH_KEYS

# The settings a sampling call takes (config.sample) and a super-resolution model's (config.ssr).
SAMPLE_KEYS = (
    "sampler",
    "num_steps",
    "guidance_scale",
    "high_noise_guidance_scale",
    "high_noise_from",
    "eta",
    "timestep_spacing",
    "thresholding",
    "dynamic_thresholding_ratio",
    "sample_max_value",
    "use_clipped_model_output",
    "known_replacement",
)
SSR_KEYS = ("aug_level", "window", "overlap", "weights", "chunk_size", "upsample")
FLAG_KEYS = ("num_steps", "guidance_scale", "sampler")  # explicit flags of main.py that set SAMPLE_KEYS
CASCADE_SSR_FLAG_KEYS = ("num_steps",)  # the explicit flags that also reach a cascade's SSR
FIXED_KEYS = ("stage", "diffusion.schedule", "diffusion.prediction_type", "diffusion.variance_type")
_MISSING = object()


def explicit_flags(flags: Any, keys: tuple[str, ...] = FLAG_KEYS) -> dict[str, Any]:
    """The explicit sampling flags that were given (not None)."""
    return {k: getattr(flags, k) for k in keys if getattr(flags, k, None) is not None}


def cli_sampling(
    config: Any, flags: Any, *, flag_keys: tuple[str, ...] = FLAG_KEYS, use_config: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(sample, ssr) settings the CLI samples with, to pass to `Generator.load(sample=, ssr=)`:
    `config.sample`'s SAMPLE_KEYS and `config.ssr`'s SSR_KEYS (the config file with --config.*
    applied; skipped with use_config=False: a cascade's base stage), then the explicit flags in
    `flag_keys` on top. What the checkpoint stored is beneath both (`Generator.settings`)."""
    sample, ssr = {}, {}
    if use_config:
        sample = {k: _plain(config.sample[k]) for k in SAMPLE_KEYS if k in config.sample}
        ssr = {k: _plain(config.ssr[k]) for k in SSR_KEYS if k in config.ssr}
    return {**sample, **explicit_flags(flags, flag_keys)}, ssr


def describe(settings: Mapping[str, Any]) -> str:
    """One line: key=value ..., nested sections (a cascade's base / ssr) as `name: ...`."""
    parts = []
    for k, v in settings.items():
        parts.append(f"{k}: [{describe(v)}]" if isinstance(v, Mapping) else f"{k}={v}")
    return " ".join(parts)


def is_fixed(key: str) -> bool:
    """Whether a dotted config key is part of what a trained checkpoint fixes."""
    if key in FIXED_KEYS:
        return True
    if key == "model" or key.startswith("model."):
        return not any(key == f"model.t5.{k}" for k in T5_PATH_KEYS)
    return False


def check_fixed(stored: Mapping[str, Any], overrides: Mapping[str, Any], where: str) -> None:
    """Raise ValueError when an explicit --config override (dotted key -> value) of a key the
    checkpoint fixes (`is_fixed`) differs from the checkpoint's value (a key the stored config
    lacks has the library default: the checkpoint was trained with it)."""
    defaults = None
    for key in sorted(overrides):
        if not is_fixed(key):
            continue
        old = _lookup(stored, key)
        if old is _MISSING:
            if defaults is None:
                defaults = config_lib.default_config().to_dict()
            old = _lookup(defaults, key)
        given = _plain(overrides[key])
        if _plain(old) != given:
            raise ValueError(
                f"--config.{key}={given!r} differs from the checkpoint's {key}={_plain(old)!r} ({where}): "
                "the architecture of a trained model cannot change; drop the override (or train a new model)"
            )


def t5_locations(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The explicit overrides of where the T5 files are (`model.t5.checkpoint`, `model.t5.tokenizer`):
    not architecture, so they beat the stored paths (`Generator.load(t5=)`)."""
    return {k: overrides[f"model.t5.{k}"] for k in T5_PATH_KEYS if f"model.t5.{k}" in overrides}


def merge(settings: dict[str, Any], overrides: Mapping[str, Any], what: str) -> dict[str, Any]:
    """`settings` updated with the non-None `overrides`; an unknown key raises, naming the valid ones."""
    for k, v in overrides.items():
        if k not in settings:
            raise ValueError(f"unknown {what} {k!r}; valid: {tuple(settings)}")
        if v is not None:
            settings[k] = v
    return settings


def with_settings(
    config: dict, *, sample: Mapping | None = None, ssr: Mapping | None = None, t5: Mapping | None = None
) -> dict:
    """A run config with the non-None values of `sample` (SAMPLE_KEYS) and `ssr` (SSR_KEYS) written
    over its `sample` / `ssr` sections, and `t5` (T5 file locations) over `model.t5`; an unknown
    key raises."""
    out = dict(config)
    for section, given, keys in (("sample", sample, SAMPLE_KEYS), ("ssr", ssr, SSR_KEYS), ("t5", t5, T5_PATH_KEYS)):
        if not given:
            continue
        merge(dict.fromkeys(keys), given, f"{section} setting")  # names the unknown keys
        given = {k: v for k, v in given.items() if v is not None}
        if section == "t5":
            out["model"] = {**out["model"], "t5": {**out["model"].get("t5", {}), **given}}
        else:
            out[section] = {**out.get(section, {}), **given}
    return out


def _lookup(tree: Mapping[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _plain(value: Any) -> Any:
    """JSON-like form for comparing with a stored config: ConfigDicts -> dicts, tuples -> lists."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
