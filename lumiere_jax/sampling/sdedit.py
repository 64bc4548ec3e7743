"""SDEdit (Lumiere Fig. 9): video-to-video by noising an input part-way and denoising it with a
prompt, with the base model or the conditional one."""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from lumiere_jax.data import video_io
from lumiere_jax.diffusion import conditioning, samplers
from lumiere_jax.sampling import inputs as cond_inputs
from lumiere_jax.sampling.engine import Progress, batched, check_call, per_input, to_model_range
from lumiere_jax.sampling.frontend import Frontend, register
from lumiere_jax.sampling.outputs import Result


@register
class SDEdit(Frontend):
    name = "sdedit"

    @staticmethod
    def check(cfg):
        if cfg.kind != "video" or cfg.conditioning == "low_res":
            return "SDEdit needs a text-to-video model (a 'video' or 'conditional' checkpoint)"
        return None

    def __call__(
        self,
        videos: np.ndarray,
        prompts: str | Sequence[str],
        *,
        strength: float,
        num_samples: int = 1,
        seed: int = 0,
        batch_size: int = 8,
        progress: bool = True,
        resize: bool = True,
        **overrides,
    ) -> Result:
        """Noise `videos` (uint8 [N, T, H, W, 3] or one [T, H, W, 3]) to `strength` (0 = unchanged,
        1 = pure noise: text-to-video) and denoise them guided by the prompts, starting at the first
        sampler step whose timestep is <= strength * num_train_timesteps."""
        eng, cfg = self.engine, self.engine.model.config
        videos = np.asarray(videos)
        if videos.ndim == 4:
            videos = videos[None]
        if videos.ndim != 5:
            raise ValueError(f"expected videos [N, T, H, W, 3] or one video [T, H, W, 3], got shape {videos.shape}")
        videos = np.stack([cond_inputs.fit_frames(v, cfg.resolution, what="video", resize=resize) for v in videos])
        for v in videos:
            cond_inputs.check_num_frames(v, cfg.num_frames, what="input video")
        check_call(num_samples, seed, batch_size, len(videos) * num_samples)
        if not 0.0 <= float(strength) <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength!r}")
        prompts = per_input(prompts, len(videos), "videos")
        s = eng.settings(**overrides)
        sampler = eng.sampler(s)
        start = samplers.start_index(sampler, float(strength), eng.sched.num_train_timesteps)
        x = to_model_range(videos, "input videos")
        x = np.repeat(x, num_samples, axis=0)
        all_prompts = [p for p in prompts for _ in range(num_samples)]
        seeds = [seed + i for i in range(len(all_prompts))]
        settings = {**s, "strength": float(strength), "start_step": start}
        if start == sampler.num_steps:
            warnings.warn(f"strength {strength} is below the last timestep: the inputs are returned unchanged")
            return Result(video_io.to_uint8(x), all_prompts, seeds, settings, low_res=video_io.to_uint8(x))
        tail = samplers.tail(sampler, start)
        cond = conditioning.get(cfg.conditioning).unconditional(x.shape)
        bar = Progress(progress, len(all_prompts), batch_size, tail.num_steps, "sdedit")
        out = batched(
            len(all_prompts),
            batch_size,
            lambda b: eng.denoise(
                all_prompts[b],
                seeds[b],
                tail,
                eng.guidance(s),
                bar.loop_progress,
                x0=x[b],
                cond=None if cond is None else cond[b],
            ),
            bar,
        )
        return Result(video_io.to_uint8(out), all_prompts, seeds, settings, low_res=video_io.to_uint8(x))
