"""Text-to-video (and text-to-image): prompts -> videos from pure noise (Lumiere §3)."""
from __future__ import annotations

from typing import Sequence

from lumiere_jax.data import video_io
from lumiere_jax.diffusion import conditioning
from lumiere_jax.sampling.engine import batched, check_call
from lumiere_jax.sampling.frontend import Frontend, register
from lumiere_jax.sampling.outputs import Result


@register
class TextToVideo(Frontend):
    """Any model but a super-resolution one; a conditional model generates with nothing known."""
    name = "generate"

    @staticmethod
    def check(cfg):
        if cfg.conditioning == "low_res":
            return "this is a super-resolution model: use Generator.upsample or a Cascade"
        return None

    def __call__(self, prompts: str | Sequence[str], *, num_samples: int = 1, seed: int = 0, batch_size: int = 8,
                 progress: bool = True, **overrides) -> Result:
        """`num_samples` per prompt; `overrides`: any of SAMPLE_KEYS (None = config value)."""
        eng, cfg = self.engine, self.engine.model.config
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise ValueError("no prompts given")
        check_call(num_samples, seed, batch_size, len(prompts) * num_samples)
        s = eng.settings(**overrides)
        all_prompts = [p for p in prompts for _ in range(num_samples)]
        seeds = [seed + i for i in range(len(all_prompts))]
        sampler = eng.sampler(s)
        cond = conditioning.get(cfg.conditioning).unconditional(cfg.sample_shape(len(all_prompts)))
        out = batched(len(all_prompts), batch_size, lambda b: eng.denoise(
            all_prompts[b], seeds[b], sampler, float(s["guidance_scale"]), progress,
            cond=None if cond is None else cond[b]))
        return Result(video_io.to_uint8(out), all_prompts, seeds, s)
