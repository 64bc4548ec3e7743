"""Text-to-video (and text-to-image): prompts -> videos from pure noise (Lumiere §3), with the
arguments diffusers users know: `negative_prompt`, `prompt_embeds` / `negative_prompt_embeds`,
`latents`, `callback_on_step_end`, `output_type` and a per-sample seed list."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax.numpy as jnp
import numpy as np

from lumiere_jax.data import video_io
from lumiere_jax.diffusion import conditioning
from lumiere_jax.sampling.engine import Progress, batched, check_call
from lumiere_jax.sampling.frontend import Frontend, register
from lumiere_jax.sampling.outputs import Result

OUTPUT_TYPES = ("uint8", "float", "pil")


def _embeds(embeds: Any, n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [n, L, D] float32, mask [n, L] bool) from `embeds` = (embeddings, mask) or embeddings
    alone (every token valid)."""
    emb, mask = embeds if isinstance(embeds, (tuple, list)) else (embeds, None)
    emb = np.asarray(emb, np.float32)
    if emb.ndim != 3 or emb.shape[0] != n:
        raise ValueError(f"{what} must be [{n}, length, width] (one per prompt), got shape {emb.shape}")
    mask = np.ones(emb.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != emb.shape[:2]:
        raise ValueError(f"{what}'s mask must be {emb.shape[:2]}, got {mask.shape}")
    return emb, mask


def check_latents(latents: Any, n: int, cfg, name: str = "latents") -> np.ndarray:
    """`latents` as float32, or a ValueError naming `name` unless it is [n, T, H, W, C] of the model
    config `cfg` (one initial noise per sample)."""
    want = (n, *cfg.sample_shape(1)[1:])
    latents = np.asarray(latents, np.float32)
    if latents.shape != want:
        raise ValueError(
            f"{name} must be [{', '.join(map(str, want))}] (one initial noise per sample), got {list(latents.shape)}"
        )
    return latents


def convert(videos: np.ndarray, output_type: str) -> Any:
    """Float videos in [-1, 1] as `output_type`: "uint8" arrays, "float" in [-1, 1], "pil" (per
    sample, a list of PIL frames)."""
    if output_type == "float":
        return np.clip(videos, -1.0, 1.0).astype(np.float32)
    u8 = video_io.to_uint8(videos)
    if output_type == "uint8":
        return u8
    from PIL import Image

    return [[Image.fromarray(f) for f in (v if v.ndim == 4 else v[None])] for v in u8]


@register
class TextToVideo(Frontend):
    """Any model but a super-resolution one; a conditional model generates with nothing known."""

    name = "generate"

    @staticmethod
    def check(cfg):
        if cfg.conditioning == "low_res":
            return "this is a super-resolution model: use Generator.upsample or a Cascade"
        return None

    def __call__(
        self,
        prompts: str | Sequence[str],
        *,
        num_samples: int = 1,
        seed: int = 0,
        seeds: Sequence[int] | None = None,
        batch_size: int = 8,
        progress: bool = True,
        negative_prompt: str | Sequence[str] | None = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        latents: Any = None,
        callback_on_step_end: Callable[[int, int, dict], Any] | None = None,
        output_type: str = "uint8",
        **overrides,
    ) -> Result:
        """`num_samples` per prompt; sample i uses seed `seed + i`, or `seeds[i]`.

        negative_prompt: one for all prompts or one per prompt: its embedding is the unconditional
            branch of classifier-free guidance (default: the learned null embedding).
        prompt_embeds / negative_prompt_embeds: precomputed text, (embeddings [P, L, D], mask [P, L])
            or the embeddings alone, one per prompt (P = len(prompts)); they replace the encoding.
        latents: the initial noise [N, T, H, W, C] of all N = P * num_samples samples (to reproduce or
            interpolate samples); the per-step noise of stochastic samplers still comes from the seeds.
        callback_on_step_end(step, timestep, state) -> bool: after every step of every batch, with
            state = {"latents", "x0" (the current estimate, for previews), "batch" (index)}; a true
            return stops sampling: the stopped batch returns its x0 estimate, later batches are not
            sampled, and `settings["stopped_at"]` says where.
        output_type: "uint8" ([N, T, H, W, 3]), "float" (in [-1, 1]) or "pil" (lists of frames).
        overrides: any of SAMPLE_KEYS (None = config value)."""
        eng, cfg = self.engine, self.engine.model.config
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise ValueError("no prompts given")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        n = len(prompts) * num_samples
        if seeds is None:
            check_call(num_samples, seed, batch_size, n)
            seeds = [seed + i for i in range(n)]
        else:
            seeds = [int(s) for s in seeds]
            if len(seeds) != n:
                raise ValueError(f"{len(seeds)} seeds for {n} samples ({len(prompts)} prompts x {num_samples})")
            for sd in seeds:
                check_call(num_samples, sd, batch_size, 1)
        s = eng.settings(**overrides)
        all_prompts = [p for p in prompts for _ in range(num_samples)]
        rep = lambda a: np.repeat(a, num_samples, axis=0)  # noqa: E731
        text = null = None
        if prompt_embeds is not None:
            text = tuple(rep(a) for a in _embeds(prompt_embeds, len(prompts), "prompt_embeds"))
        if negative_prompt_embeds is not None:
            if negative_prompt is not None:
                raise ValueError("give negative_prompt or negative_prompt_embeds, not both")
            null = tuple(rep(a) for a in _embeds(negative_prompt_embeds, len(prompts), "negative_prompt_embeds"))
        negatives = None
        if negative_prompt is not None:
            negatives = [negative_prompt] * len(prompts) if isinstance(negative_prompt, str) else list(negative_prompt)
            if len(negatives) != len(prompts):
                raise ValueError(
                    f"{len(negatives)} negative prompts for {len(prompts)} prompts: give one per prompt or one for all"
                )
            negatives = [p for p in negatives for _ in range(num_samples)]
        if latents is not None:
            latents = check_latents(latents, n, cfg)
        sampler = eng.sampler(s)
        cond = conditioning.get(cfg.conditioning).unconditional(cfg.sample_shape(n))
        stopped: dict[str, int] = {}

        def one(b: slice) -> np.ndarray:
            if stopped:
                return np.zeros((0, *cfg.sample_shape(1)[1:]), np.float32)
            context = None
            if text is not None or null is not None or negatives is not None:
                t, u = eng.prompt_context(all_prompts[b], None if negatives is None else negatives[b])
                if text is not None:
                    t = (jnp.asarray(text[0][b]), jnp.asarray(text[1][b]))
                if null is not None:
                    u = (jnp.asarray(null[0][b]), jnp.asarray(null[1][b]))
                context = (t, u)
            callback = None
            if callback_on_step_end is not None:

                def callback(step, timestep, state, batch=b.start // batch_size):
                    if callback_on_step_end(step, timestep, {**state, "batch": batch}):
                        stopped.update(batch=batch, step=step)
                        return True
                    return False

            return eng.denoise(
                all_prompts[b],
                seeds[b],
                sampler,
                eng.guidance(s),
                bar.loop_progress,
                cond=None if cond is None else cond[b],
                context=context,
                latents=None if latents is None else latents[b],
                callback=callback,
            )

        bar = Progress(progress, n, batch_size, sampler.num_steps, "generate")
        out = batched(n, batch_size, one, bar)
        settings = dict(s)
        if negative_prompt is not None:
            settings["negative_prompt"] = negative_prompt
        if stopped:
            settings["stopped_at"] = dict(stopped)
        k = len(out)
        return Result(convert(out, output_type), all_prompts[:k], seeds[:k], settings)
