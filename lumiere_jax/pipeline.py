"""Sampling API (Colab and the CLI): prompts -> uint8 videos, and writing them out.

```python
from lumiere_jax import pipeline
gen = pipeline.Generator.load("assets/moving_shapes_base")     # an export or a workdir
result = gen.generate(["a red square moving left"], num_samples=2, seed=0)
result.videos          # uint8 [N, T, H, W, 3]
pipeline.write_outputs(result, "out/")   # NNNN.mp4/.gif/.npy, manifest.json, contact_sheet.png
```

Sample i of a call uses seed `seed + i`: its initial noise and every per-step noise
come from that seed alone, so a sample is reproducible on its own, whatever else
was in the batch.
"""
from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lumiere_jax import config as config_lib
from lumiere_jax.data import video_io
from lumiere_jax.diffusion import guidance, samplers, schedules
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.models.tokenizer import ByteTokenizer
from lumiere_jax.train import checkpoint

SAMPLE_KEYS = ("sampler", "num_steps", "guidance_scale", "eta", "timestep_spacing", "thresholding",
               "dynamic_thresholding_ratio", "sample_max_value")


@dataclasses.dataclass
class Result:
    videos: np.ndarray               # uint8 [N, T, H, W, 3] (images: [N, H, W, 3])
    prompts: list[str]
    seeds: list[int]
    settings: dict[str, Any]


class Generator:
    """Holds a model, its parameters and the run config; generates samples."""

    def __init__(self, model: DiffusionModel, params: Any, config: dict):
        self.model, self.params, self.config = model, params, config
        self.sched = schedules.get_schedule(config["diffusion"]["schedule"])
        self.tokenizer = ByteTokenizer(model.config.text_length)
        self._steps: dict[Any, Any] = {}

    @classmethod
    def load(cls, path: str) -> "Generator":
        """From an export directory or a training workdir (EMA parameters)."""
        params, config = checkpoint.load(path)
        return cls(DiffusionModel(config_lib.model_config(config)), params, config)

    def settings(self, **overrides) -> dict[str, Any]:
        s = {k: self.config["sample"][k] for k in SAMPLE_KEYS}
        for k, v in overrides.items():
            if k not in SAMPLE_KEYS:
                raise ValueError(f"unknown sampling setting {k!r}; valid: {SAMPLE_KEYS}")
            if v is not None:
                s[k] = v
        return s

    def generate(self, prompts: Sequence[str], *, num_samples: int = 1, seed: int = 0, batch_size: int = 8,
                 progress: bool = True, **overrides) -> Result:
        """`num_samples` per prompt; `overrides`: any of SAMPLE_KEYS (None = config value)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts:
            raise ValueError("no prompts given")
        s = self.settings(**overrides)
        all_prompts = [p for p in prompts for _ in range(num_samples)]
        seeds = [seed + i for i in range(len(all_prompts))]
        sampler = samplers.get_sampler(
            s["sampler"], self.sched, int(s["num_steps"]), timestep_spacing=s["timestep_spacing"],
            prediction_type=self.config["diffusion"]["prediction_type"], eta=float(s["eta"]),
            thresholding=bool(s["thresholding"]), dynamic_thresholding_ratio=float(s["dynamic_thresholding_ratio"]),
            sample_max_value=float(s["sample_max_value"]))
        outs = []
        for lo in range(0, len(all_prompts), batch_size):
            outs.append(self._generate_batch(all_prompts[lo:lo + batch_size], seeds[lo:lo + batch_size],
                                             sampler, float(s["guidance_scale"]), progress))
        videos = video_io.to_uint8(np.concatenate(outs))
        return Result(videos, all_prompts, seeds, s)

    def _generate_batch(self, prompts, seeds, sampler, scale, progress) -> np.ndarray:
        ids, mask = self.tokenizer(list(prompts))
        keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
        shape = self.model.config.sample_shape(1)[1:]
        x = jax.vmap(lambda k: jax.random.normal(k, shape))(keys)
        step = self._step_fn(sampler.name, scale)
        state = sampler.init_state(x)
        ctx = self._context(self.params, jnp.asarray(ids), jnp.asarray(mask))
        from tqdm import tqdm
        for i in tqdm(range(sampler.num_steps), desc="denoise", disable=not progress, leave=False):
            x, state = step(self.params, sampler, x, state, jnp.int32(i), ctx, keys)
        return np.asarray(x)

    def _context(self, params, ids, mask):
        if "context" not in self._steps:
            model = self.model
            def ctx(params, ids, mask):
                emb = model.encode_text(params, ids, mask)
                return (emb, mask), model.null_text(params, ids.shape[0])
            self._steps["context"] = jax.jit(ctx)
        return self._steps["context"](params, ids, mask)

    def _step_fn(self, name: str, scale: float):
        key = (name, scale)
        if key not in self._steps:
            model = self.model

            def step(params, sampler, x, state, i, ctx, keys):
                cond, uncond = ctx
                model_fn = lambda x, t, c: model.denoise(params, x, t, *c)
                if scale == 1.0:
                    fn = lambda x, t: model_fn(x, t, cond)
                else:
                    fn = guidance.cfg_model_fn(model_fn, cond, uncond, scale)
                t = jnp.full((x.shape[0],), sampler.timesteps[i], jnp.int32)
                noise = None
                if sampler.needs_noise:
                    noise = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, i), x.shape[1:]))(keys)
                return sampler.step(state, i, x, fn(x, t), noise)

            self._steps[key] = jax.jit(step)
        return self._steps[key]


def write_outputs(result: Result, output_dir: str, *, fps: int = 8) -> list[dict]:
    """Per sample NNNN.mp4, NNNN.gif, NNNN.npy (uint8 [T, H, W, 3]); manifest.json;
    contact_sheet.png (rows = samples, columns = frames). Returns the manifest."""
    os.makedirs(output_dir, exist_ok=True)
    videos = result.videos if result.videos.ndim == 5 else result.videos[:, None]
    manifest = []
    for i, (video, prompt, seed) in enumerate(zip(videos, result.prompts, result.seeds)):
        stem = os.path.join(output_dir, f"{i:04d}")
        with warnings.catch_warnings():      # ffmpeg runs as a subprocess; JAX warns about fork(): harmless here
            warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
            video_io.write_mp4(stem + ".mp4", video, fps=fps)
        video_io.write_gif(stem + ".gif", video, fps=fps)
        video_io.write_npy(stem + ".npy", video)
        manifest.append({"prompt": prompt, "seed": seed, **result.settings,
                         "mp4": f"{i:04d}.mp4", "gif": f"{i:04d}.gif", "npy": f"{i:04d}.npy"})
    with open(os.path.join(output_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    video_io.save_png(os.path.join(output_dir, "contact_sheet.png"), video_io.contact_sheet(videos))
    return manifest
