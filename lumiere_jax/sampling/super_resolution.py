"""Spatial super-resolution with temporal MultiDiffusion (Lumiere §3.2, App. C)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lumiere_jax.data import video_io
from lumiere_jax.diffusion import multidiffusion as md
from lumiere_jax.sampling.engine import Progress, batched, check_call, per_input, to_model_range
from lumiere_jax.sampling.frontend import Frontend, register
from lumiere_jax.sampling.outputs import Result
from lumiere_jax.sampling.settings import SAMPLE_KEYS, SSR_KEYS


@register
class SuperResolution(Frontend):
    name = "upsample"

    @staticmethod
    def check(cfg):
        if cfg.conditioning != "low_res":
            return (
                "upsample() needs a super-resolution model (stage 'ssr' or 'ssr_image'); "
                f"this model's conditioning is {cfg.conditioning!r}"
            )
        return None

    def __call__(
        self,
        videos: np.ndarray,
        prompts: str | Sequence[str],
        *,
        seed: int = 0,
        batch_size: int = 4,
        progress: bool = True,
        multidiffusion: bool = True,
        **overrides,
    ) -> Result:
        """Super-resolve `videos` (uint8 [N, T, h, h, 3] or [N, h, h, 3] for an image model; or
        float in [-1, 1]) guided by one prompt per video (or one for all). A video model runs on
        overlapping windows of `window` frames combined by MultiDiffusion at every step;
        `multidiffusion=False` denoises non-overlapping windows independently (the paper's
        Fig. 14 baseline). `overrides`: SAMPLE_KEYS and SSR_KEYS (None = config value)."""
        eng, cfg = self.engine, self.engine.model.config
        videos = np.asarray(videos)
        want_ndim = 5 if cfg.kind == "video" else 4
        if videos.ndim != want_ndim or videos.shape[-1] != 3:
            raise ValueError(
                f"expected {'videos [N, T, h, w, 3]' if want_ndim == 5 else 'images [N, h, w, 3]'}, "
                f"got shape {videos.shape}"
            )
        if videos.shape[-3:-1] != (cfg.low_resolution,) * 2:
            raise ValueError(
                f"the model up-samples {cfg.low_resolution}x{cfg.low_resolution} inputs, got "
                f"{videos.shape[-3]}x{videos.shape[-2]} frames (resize them first)"
            )
        check_call(1, seed, batch_size, len(videos))
        prompts = per_input(prompts, len(videos), "videos")
        x = to_model_range(videos, "low-resolution videos")
        s = eng.settings(**{k: v for k, v in overrides.items() if k in SAMPLE_KEYS})
        ssr = eng.ssr_settings(**{k: v for k, v in overrides.items() if k not in SAMPLE_KEYS})
        layout = None
        if cfg.kind == "video":
            window = int(ssr["window"]) or cfg.num_frames
            overlap = int(ssr["overlap"]) if multidiffusion else 0
            layout = md.window_layout(videos.shape[1], window, overlap)
        sampler = eng.sampler(s)
        seeds = [seed + i for i in range(len(videos))]
        bar = Progress(progress, len(videos), batch_size, sampler.num_steps, "super-resolve")
        high = batched(
            len(videos),
            batch_size,
            lambda b: eng.denoise_low_res(prompts[b], seeds[b], x[b], sampler, s, ssr, layout, bar.loop_progress),
            bar,
        )
        settings = {**s, **{k: ssr[k] for k in SSR_KEYS}, "multidiffusion": multidiffusion}
        return Result(video_io.to_uint8(high), prompts, seeds, settings, low_res=video_io.to_uint8(x))
