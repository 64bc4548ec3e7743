"""The cascade text -> base model -> spatial super-resolution (Lumiere Fig. 3b)."""

from __future__ import annotations

from typing import Any, Sequence

from lumiere_jax.sampling.generator import Generator
from lumiere_jax.sampling.outputs import Result


class Cascade:
    """Text -> base model -> super-resolution (Lumiere Fig. 3b): one call, both stages."""

    def __init__(self, base: Generator, ssr: Generator):
        b, r = base.model.config, ssr.model.config
        if b.conditioning != "none" or r.conditioning != "low_res":
            raise ValueError(
                "a Cascade takes a base model and a super-resolution model, got conditionings "
                f"{b.conditioning!r} and {r.conditioning!r}"
            )
        if b.kind != r.kind:
            raise ValueError(f"cannot chain a {b.kind} base model with a {r.kind} super-resolution model")
        if b.resolution != r.low_resolution:
            raise ValueError(
                f"the base model makes {b.resolution}px frames, the SSR model takes {r.low_resolution}px inputs"
            )
        self.base, self.ssr = base, ssr

    @classmethod
    def load(cls, base_path: str, ssr_path: str, mesh_config: Any = None) -> "Cascade":
        return cls(Generator.load(base_path, mesh_config), Generator.load(ssr_path, mesh_config))

    def generate(
        self,
        prompts: Sequence[str],
        *,
        num_samples: int = 1,
        seed: int = 0,
        progress: bool = True,
        base_overrides: dict | None = None,
        ssr_overrides: dict | None = None,
        multidiffusion: bool = True,
    ) -> Result:
        low = self.base.generate(
            prompts, num_samples=num_samples, seed=seed, progress=progress, **(base_overrides or {})
        )
        high = self.ssr.upsample(
            low.videos,
            low.prompts,
            seed=seed,
            progress=progress,
            multidiffusion=multidiffusion,
            **(ssr_overrides or {}),
        )
        settings = {"base": low.settings, "ssr": high.settings}
        return Result(high.videos, low.prompts, low.seeds, settings, low_res=low.videos)
