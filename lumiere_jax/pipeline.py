"""Sampling API (Colab and the CLI): prompts -> uint8 videos, and writing them out.

```python
from lumiere_jax import pipeline
gen = pipeline.Generator.load("assets/moving_shapes_base")     # an export or a workdir
result = gen.generate(["a red square moving left"], num_samples=2, seed=0)
result.videos          # uint8 [N, T, H, W, 3]
pipeline.write_outputs(result, "out/")   # NNNN.mp4/.gif/.npy, manifest.json, contact_sheet.png
```

A super-resolution model up-samples given low-resolution videos (temporal MultiDiffusion over
overlapping windows, Lumiere §3.2), and a `Cascade` chains base and SSR:

```python
ssr = pipeline.Generator.load("assets/moving_shapes_ssr")
high = ssr.upsample(result.videos, result.prompts, seed=0)          # uint8 [N, T, 64, 64, 3]
cascade = pipeline.Cascade(gen, ssr)
out = cascade.generate(["a red square moving left"])   # out.videos: 64px, out.low_res: 32px
```

Sample i of a call uses seed `seed + i`: its initial noise and every per-step noise
come from that seed alone, so a sample is reproducible on its own, whatever else
was in the batch. The SSR stage draws from `fold_in(PRNGKey(seed + i), 1)`.
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
from lumiere_jax import tasks
from lumiere_jax.data import cond_inputs, video_io
from lumiere_jax.data.input_pipeline import uint8_to_float
from lumiere_jax.diffusion import guidance, low_res, noising, samplers, schedules
from lumiere_jax.diffusion import multidiffusion as md
from lumiere_jax.models import build, style
from lumiere_jax.models.diffusion_model import T5_PATH_KEYS, DiffusionModel
from lumiere_jax.models.tokenizer import make_tokenizer
from lumiere_jax.sampling import loop
from lumiere_jax.train import checkpoint, conditioning, trainer

SAMPLE_KEYS = ("sampler", "num_steps", "guidance_scale", "eta", "timestep_spacing", "thresholding",
               "dynamic_thresholding_ratio", "sample_max_value", "use_clipped_model_output", "known_replacement")
SSR_KEYS = ("aug_level", "window", "overlap", "weights", "chunk_size", "upsample")


@dataclasses.dataclass
class Result:
    videos: np.ndarray               # uint8 [N, T, H, W, 3] (images: [N, H, W, 3])
    prompts: list[str]
    seeds: list[int]
    settings: dict[str, Any]
    low_res: np.ndarray | None = None   # cascade / upsample / sdedit: the input videos (uint8)
    known: np.ndarray | None = None     # conditional: the known content (uint8, zero where unknown)
    mask: np.ndarray | None = None      # conditional: bool [N, T, H, W], True = known


def _merge(settings: dict[str, Any], overrides: dict[str, Any], what: str) -> dict[str, Any]:
    """`settings` updated with the non-None `overrides`; an unknown key raises."""
    for k, v in overrides.items():
        if k not in settings:
            raise ValueError(f"unknown {what} {k!r}; valid: {tuple(settings)}")
        if v is not None:
            settings[k] = v
    return settings


def with_settings(config: dict, *, sample: dict | None = None, ssr: dict | None = None,
                  t5: dict | None = None) -> dict:
    """A run config with the non-None values of `sample` (SAMPLE_KEYS) and `ssr` (SSR_KEYS) written
    over its `sample` / `ssr` sections, and `t5` (T5 file locations) over `model.t5`; an unknown
    key raises. Precedence: lumiere_jax/settings.py."""
    out = dict(config)
    for section, given, keys in (("sample", sample, SAMPLE_KEYS), ("ssr", ssr, SSR_KEYS),
                                 ("t5", t5, T5_PATH_KEYS)):
        if not given:
            continue
        _merge(dict.fromkeys(keys), given, f"{section} setting")      # names the unknown keys
        given = {k: v for k, v in given.items() if v is not None}
        if section == "t5":
            out["model"] = {**out["model"], "t5": {**out["model"].get("t5", {}), **given}}
        else:
            out[section] = {**out.get(section, {}), **given}
    return out


def load_style(video_params: dict, video_config: dict, style_path: str, alpha: float) -> dict:
    """The video parameters with the style T2I at `style_path` (export or training workdir) blended
    into their spatial weights: `models.style.blend_style` of the loaded checkpoint."""
    style_params, stored = checkpoint.load(style_path)
    return style.blend_style(video_params, video_config, style_params, stored, alpha, source=style_path)


class Generator:
    """Holds a model, its parameters and the run config; generates samples."""

    def __init__(self, model: DiffusionModel, params: Any, config: dict, mesh_config: Any = None):
        """`mesh_config` (a `config.mesh` section; None = one device): sample on a device mesh. The
        parameters are placed by their logical axes, every step runs with the mesh and rules active,
        so the batch (both classifier-free-guidance halves, and the MultiDiffusion windows, which
        are folded into the batch axis) is split over the batch mesh axes."""
        self.model, self.config = model, config
        self.sched = schedules.get_schedule(config["diffusion"]["schedule"])
        self.tokenizer = make_tokenizer(model.config, config.get("model"))
        self._steps: dict[Any, Any] = {}
        self.mesh_config, self.mesh, self.rules = mesh_config, None, None
        if mesh_config is not None:
            from lumiere_jax.parallel import mesh as mesh_lib, sharding
            self.mesh, self.rules = mesh_lib.make_mesh(mesh_config), mesh_lib.rules(mesh_config)
            params = jax.device_put(params, sharding.param_shardings(model, self.mesh, self.rules))
        self.params = params

    def _jit(self, fn):
        """`jax.jit(fn)`, called with the mesh and rules active when the Generator has a mesh."""
        jitted = jax.jit(fn)
        if self.mesh is None:
            return jitted
        from lumiere_jax.parallel import mesh as mesh_lib

        def call(*args):
            with mesh_lib.activate(self.mesh, self.rules):
                return jitted(*args)
        call.jitted = jitted
        return call

    @classmethod
    def load(cls, path: str, mesh_config: Any = None, *, sample: dict | None = None, ssr: dict | None = None,
             t5: dict | None = None) -> "Generator":
        """From an export directory or a training workdir (EMA parameters). `sample` (SAMPLE_KEYS) and
        `ssr` (SSR_KEYS): settings that beat the stored run config's (None = the stored value); a
        call's own overrides beat both. `t5`: where the T5 files are here (checkpoint, tokenizer)."""
        params, config = checkpoint.load(path)
        config = with_settings(config, sample=sample, ssr=ssr, t5=t5)
        return cls(DiffusionModel(build.model_config(config)), params, config, mesh_config)

    def settings(self, **overrides) -> dict[str, Any]:
        """Sampling settings: the library defaults, the run config's `sample` section (with what
        `load` was given on top), then `overrides`."""
        stored = self.config.get("sample", {})
        missing = [k for k in SAMPLE_KEYS if k not in stored]     # keys older stored configs lack
        defaults = config_lib.default_config().sample if missing else {}
        s = {k: stored[k] if k in stored else defaults[k] for k in SAMPLE_KEYS}
        return _merge(s, overrides, "sampling setting")

    def generate(self, prompts: Sequence[str], *, num_samples: int = 1, seed: int = 0, batch_size: int = 8,
                 progress: bool = True, **overrides) -> Result:
        """`num_samples` per prompt; `overrides`: any of SAMPLE_KEYS (None = config value)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts:
            raise ValueError("no prompts given")
        if self.model.config.conditioning == "low_res":
            raise ValueError("this is a super-resolution model: use Generator.upsample or a Cascade")
        s = self.settings(**overrides)
        all_prompts = [p for p in prompts for _ in range(num_samples)]
        seeds = [seed + i for i in range(len(all_prompts))]
        sampler = self._sampler(s)
        cond = None
        if self.model.config.conditioning == "masked":    # nothing known: unconditional generation
            cond = np.zeros((batch_size, *self.model.config.sample_shape(1)[1:-1], 4), np.float32)
        outs = []
        for lo in range(0, len(all_prompts), batch_size):
            n = len(all_prompts[lo:lo + batch_size])
            outs.append(self._generate_batch(all_prompts[lo:lo + n], seeds[lo:lo + n],
                                             sampler, float(s["guidance_scale"]), progress,
                                             cond=None if cond is None else cond[:n]))
        videos = video_io.to_uint8(np.concatenate(outs))
        return Result(videos, all_prompts, seeds, s)

    def _sampler(self, s: dict) -> samplers.Sampler:
        return samplers.get_sampler(
            s["sampler"], self.sched, int(s["num_steps"]), timestep_spacing=s["timestep_spacing"],
            prediction_type=self.config["diffusion"]["prediction_type"], eta=float(s["eta"]),
            thresholding=bool(s["thresholding"]), dynamic_thresholding_ratio=float(s["dynamic_thresholding_ratio"]),
            sample_max_value=float(s["sample_max_value"]),
            use_clipped_model_output=bool(s["use_clipped_model_output"]),
            # a learned-range model's variance is used by DDPM; the other samplers ignore it
            variance_type=self.config["diffusion"].get("variance_type", "fixed_small")
            if s["sampler"] == "ddpm" else "fixed_small")

    def ssr_settings(self, **overrides) -> dict[str, Any]:
        """Super-resolution settings: the run config's `ssr` section, then `overrides`."""
        defaults = config_lib.default_config().ssr     # for configs stored before the ssr section
        s = {k: self.config.get("ssr", {}).get(k, defaults[k]) for k in SSR_KEYS}
        return _merge(s, overrides, "super-resolution setting")

    def upsample(self, videos: np.ndarray, prompts: str | Sequence[str], *, seed: int = 0, batch_size: int = 4,
                 progress: bool = True, multidiffusion: bool = True, **overrides) -> Result:
        """Super-resolve `videos` (uint8 [N, T, h, h, 3] or [N, h, h, 3] for an image model; or
        float in [-1, 1]) guided by one prompt per video (or one for all). A video model runs on
        overlapping windows of `window` frames combined by MultiDiffusion at every step;
        `multidiffusion=False` denoises non-overlapping windows independently (the paper's
        Fig. 14 baseline). `overrides`: SAMPLE_KEYS and SSR_KEYS (None = config value)."""
        cfg = self.model.config
        if cfg.conditioning != "low_res":
            raise ValueError("upsample() needs a super-resolution model (stage 'ssr' or 'ssr_image'); "
                             f"this model's conditioning is {cfg.conditioning!r}")
        videos = np.asarray(videos)
        want_ndim = 5 if cfg.kind == "video" else 4
        if videos.ndim != want_ndim or videos.shape[-1] != 3:
            raise ValueError(f"expected {'videos [N, T, h, w, 3]' if want_ndim == 5 else 'images [N, h, w, 3]'}, "
                             f"got shape {videos.shape}")
        if videos.shape[-3:-1] != (cfg.low_resolution,) * 2:
            raise ValueError(f"the model up-samples {cfg.low_resolution}x{cfg.low_resolution} inputs, got "
                             f"{videos.shape[-3]}x{videos.shape[-2]} frames (resize them first)")
        prompts = [prompts] * len(videos) if isinstance(prompts, str) else list(prompts)
        if len(prompts) == 1 and len(videos) > 1:
            prompts = prompts * len(videos)
        if len(prompts) != len(videos):
            raise ValueError(f"{len(prompts)} prompts for {len(videos)} videos: give one per video or one for all")
        x = uint8_to_float(videos) if videos.dtype == np.uint8 else videos.astype(np.float32)
        sample_overrides = {k: v for k, v in overrides.items() if k in SAMPLE_KEYS}
        s = self.settings(**sample_overrides)
        ssr = self.ssr_settings(**{k: v for k, v in overrides.items() if k not in SAMPLE_KEYS})
        layout = None
        if cfg.kind == "video":
            window = int(ssr["window"]) or cfg.num_frames
            overlap = int(ssr["overlap"]) if multidiffusion else 0
            layout = md.window_layout(videos.shape[1], window, overlap)
        sampler = self._sampler(s)
        seeds = [seed + i for i in range(len(videos))]
        outs = []
        for lo in range(0, len(videos), batch_size):
            outs.append(self._upsample_batch(prompts[lo:lo + batch_size], seeds[lo:lo + batch_size],
                                             x[lo:lo + batch_size], sampler, s, ssr, layout, progress))
        high = video_io.to_uint8(np.concatenate(outs))
        settings = {**s, **{k: ssr[k] for k in SSR_KEYS}, "multidiffusion": multidiffusion}
        return Result(high, prompts, seeds, settings, low_res=video_io.to_uint8(x))

    # -- the conditional (masked) model: Lumiere §4.2 --------------------------------------------
    def conditional(self, known: np.ndarray, mask: np.ndarray, prompts: str | Sequence[str], *,
                    num_samples: int = 1, seed: int = 0, batch_size: int = 8, progress: bool = True,
                    paste_known: bool = False, **overrides) -> Result:
        """Generate videos that keep the `known` content where `mask` is True. `known`: uint8 (or float
        in [-1, 1]) [N, T, H, W, 3] or one video [T, H, W, 3] at the model's size; `mask`: bool
        [N, T, H, W] / [T, H, W] (True = known, the model's M). `paste_known` copies the known pixels
        into the output (by default the output is the model's own, so it shows how well the model
        keeps them). `overrides`: SAMPLE_KEYS. The task methods (i2v, inpaint, outpaint, cinemagraph)
        build `known` and `mask` from user inputs."""
        cfg = self.model.config
        if cfg.conditioning != "masked":
            raise ValueError(f"conditional generation needs a conditional model (stage 'conditional'); this "
                             f"model's conditioning is {cfg.conditioning!r}")
        known, mask = np.asarray(known), np.asarray(mask)
        if known.ndim == 4:
            known, mask = known[None], mask[None] if mask.ndim == 3 else mask
        want = cfg.sample_shape(1)[1:]
        if known.ndim != 5 or known.shape[1:] != want:
            raise ValueError(f"known content must be [N, {', '.join(map(str, want))}] (the model's frames and "
                             f"size), got shape {known.shape}")
        if mask.dtype != bool or mask.shape != known.shape[:-1]:
            raise ValueError(f"mask must be bool of shape {known.shape[:-1]} (True = known), got "
                             f"{mask.dtype} {mask.shape}")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if len(prompts) == 1:
            prompts = prompts * len(known)
        if len(prompts) != len(known):
            raise ValueError(f"{len(prompts)} prompts for {len(known)} inputs: give one per input or one for all")
        x = uint8_to_float(known) if known.dtype == np.uint8 else known.astype(np.float32)
        rep = lambda a: np.repeat(a, num_samples, axis=0)
        x, m, all_prompts = rep(x), rep(mask)[..., None], [p for p in prompts for _ in range(num_samples)]
        cond = np.asarray(conditioning.masked_conditioning(x, m))
        s = self.settings(**overrides)
        sampler = self._sampler(s)
        seeds = [seed + i for i in range(len(all_prompts))]
        replace = bool(s["known_replacement"])
        outs = [self._generate_batch(all_prompts[lo:lo + batch_size], seeds[lo:lo + batch_size], sampler,
                                     float(s["guidance_scale"]), progress, cond=cond[lo:lo + batch_size],
                                     known=(x[lo:lo + batch_size], m[lo:lo + batch_size]) if replace else None)
                for lo in range(0, len(all_prompts), batch_size)]
        out = np.concatenate(outs)
        if paste_known:
            out = np.where(m, x, out)
        return Result(video_io.to_uint8(out), all_prompts, seeds, {**s, "paste_known": paste_known},
                      known=video_io.to_uint8(np.where(m, x, 0.0)), mask=m[..., 0])

    def _task_frames(self, x: np.ndarray, what: str, resize: bool) -> np.ndarray:
        return cond_inputs.fit_frames(np.asarray(x), self.model.config.resolution, what=what, resize=resize)

    def _task_region(self, region: np.ndarray, what: str, resize: bool) -> np.ndarray:
        threshold = float(self.config.get("conditional", {}).get("mask_threshold", 0.5))
        region = cond_inputs.binarize(np.asarray(region), threshold)
        return cond_inputs.fit_frames(region, self.model.config.resolution, what=what, resize=resize)

    def i2v(self, image: np.ndarray, prompt: str, *, resize: bool = True, **kwargs) -> Result:
        """Image-to-video: `image` (uint8 [H, W, 3]) is the first frame. kwargs: see `conditional`."""
        known, mask = tasks.i2v(self._task_frames(image, "image", resize), self.model.config.num_frames)
        return self.conditional(known, mask, prompt, **kwargs)

    def inpaint(self, video: np.ndarray, region: np.ndarray, prompt: str, *, resize: bool = True,
                **kwargs) -> Result:
        """Regenerate `region` (white / True = generate; [H, W] or [T, H, W]) of `video` [T, H, W, 3]."""
        video = self._task_frames(video, "video", resize)
        region = self._task_region(region, "inpainting mask", resize)
        known, mask = tasks.inpaint(video, region, self.model.config.num_frames)
        return self.conditional(known, mask, prompt, **kwargs)

    def outpaint(self, video: np.ndarray, prompt: str, *, padding=None, direction: str | None = None,
                 amount: float = 0.25, resize: bool = True, **kwargs) -> Result:
        """Generate the borders of `video`: `padding` pixels (int, or (top, bottom, left, right)) or the
        `amount` fraction of the frame on the `direction` side."""
        video = self._task_frames(video, "video", resize)
        region = cond_inputs.outpaint_mask(video.shape[1], video.shape[2], padding=padding, direction=direction,
                                           amount=amount)
        known, mask = tasks.outpaint(video, region, self.model.config.num_frames)
        return self.conditional(known, mask, prompt, **kwargs)

    def cinemagraph(self, image: np.ndarray, region: np.ndarray, prompt: str, *, resize: bool = True,
                    **kwargs) -> Result:
        """Animate `region` ([H, W], white / True = animate) of `image`; the rest stays still."""
        image = self._task_frames(image, "image", resize)
        region = self._task_region(region, "cinemagraph region", resize)
        known, mask = tasks.cinemagraph(image, region, self.model.config.num_frames)
        return self.conditional(known, mask, prompt, **kwargs)

    # -- video-to-video and style -----------------------------------------------------------------
    def sdedit(self, videos: np.ndarray, prompts: str | Sequence[str], *, strength: float, num_samples: int = 1,
               seed: int = 0, batch_size: int = 8, progress: bool = True, resize: bool = True,
               **overrides) -> Result:
        """SDEdit (Lumiere Fig. 9): noise `videos` (uint8 [N, T, H, W, 3] or one [T, H, W, 3]) to
        `strength` (0 = unchanged, 1 = pure noise: text-to-video) and denoise them guided by the prompts,
        starting at the first sampler step whose timestep is <= strength * num_train_timesteps."""
        cfg = self.model.config
        if cfg.kind != "video" or cfg.conditioning == "low_res":
            raise ValueError("SDEdit needs a text-to-video model (a 'video' or 'conditional' checkpoint)")
        videos = np.asarray(videos)
        if videos.ndim == 4:
            videos = videos[None]
        if videos.ndim != 5:
            raise ValueError(f"expected videos [N, T, H, W, 3] or one video [T, H, W, 3], got shape {videos.shape}")
        videos = np.stack([self._task_frames(v, "video", resize) for v in videos])
        for v in videos:
            cond_inputs.check_num_frames(v, cfg.num_frames, what="input video")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if len(prompts) == 1:
            prompts = prompts * len(videos)
        if len(prompts) != len(videos):
            raise ValueError(f"{len(prompts)} prompts for {len(videos)} videos: give one per video or one for all")
        s = self.settings(**overrides)
        sampler = self._sampler(s)
        start = samplers.start_index(sampler, float(strength), self.sched.num_train_timesteps)
        x = uint8_to_float(videos) if videos.dtype == np.uint8 else videos.astype(np.float32)
        x = np.repeat(x, num_samples, axis=0)
        all_prompts = [p for p in prompts for _ in range(num_samples)]
        seeds = [seed + i for i in range(len(all_prompts))]
        settings = {**s, "strength": float(strength), "start_step": start}
        if start == sampler.num_steps:
            warnings.warn(f"strength {strength} is below the last timestep: the inputs are returned unchanged")
            return Result(video_io.to_uint8(x), all_prompts, seeds, settings, low_res=video_io.to_uint8(x))
        tail = samplers.tail(sampler, start)
        cond = None
        if cfg.conditioning == "masked":
            cond = np.zeros((*x.shape[:-1], 4), np.float32)
        outs = [self._generate_batch(all_prompts[lo:lo + batch_size], seeds[lo:lo + batch_size], tail,
                                     float(s["guidance_scale"]), progress, x0=x[lo:lo + batch_size],
                                     cond=None if cond is None else cond[lo:lo + batch_size])
                for lo in range(0, len(all_prompts), batch_size)]
        return Result(video_io.to_uint8(np.concatenate(outs)), all_prompts, seeds, settings,
                      low_res=video_io.to_uint8(x))

    def with_style(self, style_checkpoint: str, alpha: float) -> "Generator":
        """Stylized generation (Lumiere §4.1): a Generator whose spatial weights are
        alpha * W_style + (1 - alpha) * W_orig, W_style from a style-fine-tuned T2I checkpoint; the
        temporal layers and the text encoder are this model's."""
        params = load_style(self.params, self.config, style_checkpoint, alpha)
        config = {**self.config, "style": {"checkpoint": style_checkpoint, "alpha": float(alpha)}}
        return Generator(self.model, params, config, self.mesh_config)

    def _upsample_batch(self, prompts, seeds, low, sampler, s, ssr, layout, progress) -> np.ndarray:
        cfg = self.model.config
        keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(sd), 1) for sd in seeds])
        shape = (*low.shape[1:-3], cfg.resolution, cfg.resolution, cfg.sample_channels)
        x = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 0), shape))(keys)
        aug = jnp.full((len(seeds),), int(ssr["aug_level"]), jnp.int32)
        cond = jax.vmap(lambda k, lr, a: low_res.condition(
            self.sched, lr[None], cfg.resolution, a[None], jax.random.fold_in(k, 1), ssr["upsample"])[0])(
                keys, jnp.asarray(low), aug)
        weights = None if layout is None else jnp.asarray(md.window_weights(layout, ssr["weights"]))
        step = self._ssr_step_fn(float(s["guidance_scale"]), layout, int(ssr["chunk_size"]) or None)
        noise_keys = jax.vmap(lambda k: jax.random.fold_in(k, 2))(keys)
        x, _ = loop.run(step, sampler, x, (self.params, self._prompt_context(prompts), aug), keys=noise_keys,
                        conds=(cond,), weights=weights, layout=layout, progress=progress, desc="super-resolve")
        return np.asarray(x)

    def _ssr_step_fn(self, scale: float, layout, chunk):
        key = ("ssr", scale, layout, chunk)
        if key not in self._steps:
            model = self.model

            def model_fn(args, x, t, cond):   # one (window of the) video batch, or all windows folded
                params, ((emb, mask), (null_emb, null_mask)), aug = args
                inner = lambda x, t, c: model.denoise(params, x, t, c[0], c[1], cond=c[2], aug_level=c[3])
                reps = x.shape[0] // emb.shape[0]       # windows folded into the batch (window-major)
                tile = lambda a: jnp.tile(a, (reps,) + (1,) * (a.ndim - 1))
                text = (tile(emb), tile(mask), cond, tile(aug))
                null = (tile(null_emb), tile(null_mask), cond, tile(aug))
                if scale == 1.0:
                    return inner(x, t, text)
                return guidance.cfg_model_fn(inner, text, null, scale)(x, t)

            self._steps[key] = self._jit(loop.make_step(model_fn, layout=layout, chunk_size=chunk,
                                                        fold_windows=True))
        return self._steps[key]

    def _generate_batch(self, prompts, seeds, sampler, scale, progress, cond=None, x0=None,
                        known=None) -> np.ndarray:
        """Denoise one batch. `cond`: a conditional model's extra channels. `x0` (SDEdit): start from
        this clean batch noised to the sampler's first timestep instead of from pure noise. `known`
        ((content [-1, 1], mask [..., 1] True = known), the `known_replacement` setting): after every
        step but the last the known pixels of the sample are replaced by the known content noised to
        the next timestep with the initial noise (the replacement method of Ho et al. 2022, "Video
        Diffusion Models" §3.1); the last step's output is the model's own everywhere."""
        keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
        shape = self.model.config.sample_shape(1)[1:]
        x = jax.vmap(lambda k: jax.random.normal(k, shape))(keys)
        noise0 = x
        if x0 is not None:
            t0 = jnp.full((len(seeds),), sampler.timesteps[0], jnp.int32)
            x = noising.add_noise(self.sched, jnp.asarray(x0, jnp.float32), x, t0)
        step = self._step_fn(scale)
        args = (self.params, self._prompt_context(prompts), None if cond is None else jnp.asarray(cond, jnp.float32))
        after_step = None
        if known is not None:
            content, known_mask = (jnp.asarray(a) for a in known)
            replace = self._replace_fn()
            after_step = lambda x, i: replace(sampler, x, content, known_mask, noise0, i)  # noqa: E731
        x, _ = loop.run(step, sampler, x, args, keys=keys, after_step=after_step, progress=progress)
        return np.asarray(x)

    def _replace_fn(self):
        """Jitted replacement step: the known pixels of x become `content` noised with `noise` to the
        sampler's timestep `i` (`_generate_batch`'s `known`)."""
        if "replace" not in self._steps:
            sched = self.sched

            def replace(sampler, x, content, mask, noise, i):
                t = jnp.full((x.shape[0],), sampler.timesteps[i], jnp.int32)
                return jnp.where(mask, noising.add_noise(sched, content, noise, t), x)
            self._steps["replace"] = self._jit(replace)
        return self._steps["replace"]

    def _prompt_context(self, prompts):
        """((text embeddings, mask), (null embedding, mask)) of `prompts`."""
        if self.model.text_module is not None:
            ids, mask = self.tokenizer(list(prompts))
            return self._context(self.params, jnp.asarray(ids), jnp.asarray(mask))
        # Trained on precomputed embeddings: encode the prompts with the T5 they were made with,
        # rounded to bfloat16 as the stored ones were.
        if "t5" not in self._steps:
            t5 = dict(self.config.get("model", {}).get("t5") or {})
            if not t5.get("checkpoint"):
                raise ValueError("this model was trained on precomputed text embeddings: set "
                                 "config.model.t5.checkpoint (and .tokenizer) so prompts can be encoded")
            from lumiere_jax.data.text_embeddings import t5_encoder
            self._steps["t5"] = t5_encoder(t5)
        emb, mask = self._steps["t5"](list(prompts))
        if emb.shape[1:] != (self.model.config.text_length, self.model.config.stunet.unet.text_dim):
            raise ValueError(f"the T5 gives [{emb.shape[1]}, {emb.shape[2]}] embeddings per prompt; the model takes "
                             f"[{self.model.config.text_length}, {self.model.config.stunet.unet.text_dim}]")
        emb = jnp.asarray(emb, jnp.bfloat16).astype(jnp.float32)
        return (emb, jnp.asarray(mask)), self.model.null_text(self.params, len(prompts))

    def _context(self, params, ids, mask):
        if "context" not in self._steps:
            model = self.model
            def ctx(params, ids, mask):
                emb = model.encode_text(params, ids, mask)
                return (emb, mask), model.null_text(params, ids.shape[0])
            self._steps["context"] = self._jit(ctx)
        return self._steps["context"](params, ids, mask)

    def _step_fn(self, scale: float):
        key = ("step", scale)
        if key not in self._steps:
            model = self.model

            def model_fn(args, x, t):
                # Classifier-free guidance drops the text only: both branches see the conditioning.
                params, ctx, cond = args
                text, null = (*ctx[0], cond), (*ctx[1], cond)
                inner = lambda x, t, c: model.denoise(params, x, t, c[0], c[1], cond=c[2])
                if scale == 1.0:
                    return inner(x, t, text)
                return guidance.cfg_model_fn(inner, text, null, scale)(x, t)

            self._steps[key] = self._jit(loop.make_step(model_fn))
        return self._steps[key]


class Cascade:
    """Text -> base model -> super-resolution (Lumiere Fig. 3b): one call, both stages."""

    def __init__(self, base: Generator, ssr: Generator):
        b, r = base.model.config, ssr.model.config
        if b.conditioning != "none" or r.conditioning != "low_res":
            raise ValueError("a Cascade takes a base model and a super-resolution model, got conditionings "
                             f"{b.conditioning!r} and {r.conditioning!r}")
        if b.kind != r.kind:
            raise ValueError(f"cannot chain a {b.kind} base model with a {r.kind} super-resolution model")
        if b.resolution != r.low_resolution:
            raise ValueError(f"the base model makes {b.resolution}px frames, the SSR model takes "
                             f"{r.low_resolution}px inputs")
        self.base, self.ssr = base, ssr

    @classmethod
    def load(cls, base_path: str, ssr_path: str, mesh_config: Any = None) -> "Cascade":
        return cls(Generator.load(base_path, mesh_config), Generator.load(ssr_path, mesh_config))

    def generate(self, prompts: Sequence[str], *, num_samples: int = 1, seed: int = 0, progress: bool = True,
                 base_overrides: dict | None = None, ssr_overrides: dict | None = None,
                 multidiffusion: bool = True) -> Result:
        low = self.base.generate(prompts, num_samples=num_samples, seed=seed, progress=progress,
                                 **(base_overrides or {}))
        high = self.ssr.upsample(low.videos, low.prompts, seed=seed, progress=progress,
                                 multidiffusion=multidiffusion, **(ssr_overrides or {}))
        settings = {"base": low.settings, "ssr": high.settings}
        return Result(high.videos, low.prompts, low.seeds, settings, low_res=low.videos)


def write_training_samples(config, model: DiffusionModel, params: Any, workdir: str, step: int, writer) -> None:
    """`trainer.train`'s `sample_fn`: the config's sample prompts from the EMA parameters, written to
    <workdir>/samples/step_XXXXXXX/ and, for videos, to the run's metric writer."""
    gen = Generator(model, params, trainer.config_json(config))
    result = gen.generate(list(config.sample.prompts), seed=config.sample.seed, progress=False)
    write_outputs(result, os.path.join(workdir, "samples", f"step_{step:07d}"), fps=config.sample.fps)
    if result.videos.ndim == 5:
        writer.video(step, "samples", result.videos, fps=config.sample.fps)


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
        entry = {"prompt": prompt, "seed": seed, **result.settings,
                 "mp4": f"{i:04d}.mp4", "gif": f"{i:04d}.gif", "npy": f"{i:04d}.npy"}
        if result.low_res is not None:       # the super-resolution / SDEdit input, for comparison
            video_io.write_npy(stem + "_low_res.npy", result.low_res[i])
            entry["low_res_npy"] = f"{i:04d}_low_res.npy"
        if result.known is not None:         # the conditional model's input
            video_io.write_npy(stem + "_known.npy", result.known[i])
            np.save(stem + "_mask.npy", result.mask[i])
            entry.update(known_npy=f"{i:04d}_known.npy", mask_npy=f"{i:04d}_mask.npy")
        manifest.append(entry)
    with open(os.path.join(output_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    video_io.save_png(os.path.join(output_dir, "contact_sheet.png"), video_io.contact_sheet(videos))
    return manifest
