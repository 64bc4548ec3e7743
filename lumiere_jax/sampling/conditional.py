"""The conditional (7-channel) model's applications, Lumiere §4.2: generation that keeps given
content (`Conditional`), and the tasks that build that content from user inputs: image-to-video,
inpainting, outpainting, cinemagraphs (`sampling/tasks.py` turns inputs into (known, mask))."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lumiere_jax import config as config_lib
from lumiere_jax.data import video_io
from lumiere_jax.diffusion.conditioning import Masked
from lumiere_jax.sampling import inputs as cond_inputs, tasks
from lumiere_jax.sampling.engine import Progress, batched, check_call, per_input, to_model_range
from lumiere_jax.sampling.frontend import Frontend, register
from lumiere_jax.sampling.outputs import Result


def _needs_conditional(cfg):
    if cfg.conditioning != "masked":
        return (
            f"conditional generation needs a conditional model (stage 'conditional'); this "
            f"model's conditioning is {cfg.conditioning!r}"
        )
    return None


@register
class Conditional(Frontend):
    name = "conditional"
    check = staticmethod(_needs_conditional)

    def __call__(
        self,
        known: np.ndarray,
        mask: np.ndarray,
        prompts: str | Sequence[str],
        *,
        num_samples: int = 1,
        seed: int = 0,
        batch_size: int = 8,
        progress: bool = True,
        paste_known: bool = False,
        **overrides,
    ) -> Result:
        """Generate videos that keep the `known` content where `mask` is True. `known`: uint8 (or float
        in [-1, 1]) [N, T, H, W, 3] or one video [T, H, W, 3] at the model's size; `mask`: bool
        [N, T, H, W] / [T, H, W] (True = known, the model's M). `paste_known` copies the known pixels
        into the output (by default the output is the model's own, so it shows how well the model
        keeps them). `overrides`: SAMPLE_KEYS. The task front-ends (i2v, inpaint, outpaint,
        cinemagraph) build `known` and `mask` from user inputs."""
        eng, cfg = self.engine, self.engine.model.config
        known, mask = np.asarray(known), np.asarray(mask)
        if known.ndim == 4:
            known, mask = known[None], mask[None] if mask.ndim == 3 else mask
        want = cfg.sample_shape(1)[1:]
        if known.ndim != 5 or known.shape[1:] != want:
            raise ValueError(
                f"known content must be [N, {', '.join(map(str, want))}] (the model's frames and "
                f"size), got shape {known.shape}"
            )
        if mask.dtype != bool or mask.shape != known.shape[:-1]:
            raise ValueError(
                f"mask must be bool of shape {known.shape[:-1]} (True = known), got {mask.dtype} {mask.shape}"
            )
        check_call(num_samples, seed, batch_size, len(known) * num_samples)
        prompts = per_input(prompts, len(known), "inputs")
        x = to_model_range(known, "known content")
        rep = lambda a: np.repeat(a, num_samples, axis=0)  # noqa: E731
        x, m, all_prompts = rep(x), rep(mask)[..., None], [p for p in prompts for _ in range(num_samples)]
        cond = np.asarray(Masked.sampling_inputs(x, m))
        s = eng.settings(**overrides)
        sampler = eng.sampler(s)
        seeds = [seed + i for i in range(len(all_prompts))]
        replace = bool(s["known_replacement"])
        bar = Progress(progress, len(all_prompts), batch_size, sampler.num_steps, self.name)
        out = batched(
            len(all_prompts),
            batch_size,
            lambda b: eng.denoise(
                all_prompts[b],
                seeds[b],
                sampler,
                eng.guidance(s),
                bar.loop_progress,
                cond=cond[b],
                known=(x[b], m[b]) if replace else None,
            ),
            bar,
        )
        if paste_known:
            out = np.where(m, x, out)
        return Result(
            video_io.to_uint8(out),
            all_prompts,
            seeds,
            {**s, "paste_known": paste_known},
            known=video_io.to_uint8(np.where(m, x, 0.0)),
            mask=m[..., 0],
        )


class _Task(Frontend):
    """A conditional task: user inputs -> (known, mask) -> `Conditional`."""

    check = staticmethod(_needs_conditional)

    def __init__(self, engine):
        super().__init__(engine)
        self.conditional = Conditional(engine)

    def frames(self, x: np.ndarray, what: str, resize: bool) -> np.ndarray:
        return cond_inputs.fit_frames(np.asarray(x), self.engine.model.config.resolution, what=what, resize=resize)

    def region(self, region: np.ndarray, what: str, resize: bool) -> np.ndarray:
        threshold = float(config_lib.value(self.engine.config, "conditional", "mask_threshold"))
        region = cond_inputs.binarize(np.asarray(region), threshold)
        return cond_inputs.fit_frames(region, self.engine.model.config.resolution, what=what, resize=resize)

    @property
    def num_frames(self) -> int:
        return self.engine.model.config.num_frames


@register
class ImageToVideo(_Task):
    name = "i2v"

    def __call__(self, image: np.ndarray, prompt: str, *, resize: bool = True, **kwargs) -> Result:
        """Image-to-video: `image` (uint8 [H, W, 3]) is the first frame. kwargs: see `Conditional`."""
        known, mask = tasks.i2v(self.frames(image, "image", resize), self.num_frames)
        return self.conditional(known, mask, prompt, **kwargs)


@register
class Inpaint(_Task):
    name = "inpaint"

    def __call__(self, video: np.ndarray, region: np.ndarray, prompt: str, *, resize: bool = True, **kwargs) -> Result:
        """Regenerate `region` (white / True = generate; [H, W] or [T, H, W]) of `video` [T, H, W, 3]."""
        video = self.frames(video, "video", resize)
        region = self.region(region, "inpainting mask", resize)
        known, mask = tasks.inpaint(video, region, self.num_frames)
        return self.conditional(known, mask, prompt, **kwargs)


@register
class Outpaint(_Task):
    name = "outpaint"

    def __call__(
        self,
        video: np.ndarray,
        prompt: str,
        *,
        padding=None,
        direction: str | None = None,
        amount: float = 0.25,
        resize: bool = True,
        **kwargs,
    ) -> Result:
        """Generate the borders of `video`: `padding` pixels (int, or (top, bottom, left, right)) or the
        `amount` fraction of the frame on the `direction` side."""
        video = self.frames(video, "video", resize)
        region = cond_inputs.outpaint_mask(
            video.shape[1], video.shape[2], padding=padding, direction=direction, amount=amount
        )
        known, mask = tasks.outpaint(video, region, self.num_frames)
        return self.conditional(known, mask, prompt, **kwargs)


@register
class Cinemagraph(_Task):
    name = "cinemagraph"

    def __call__(self, image: np.ndarray, region: np.ndarray, prompt: str, *, resize: bool = True, **kwargs) -> Result:
        """Animate `region` ([H, W], white / True = animate) of `image`; the rest stays still."""
        image = self.frames(image, "image", resize)
        region = self.region(region, "cinemagraph region", resize)
        known, mask = tasks.cinemagraph(image, region, self.num_frames)
        return self.conditional(known, mask, prompt, **kwargs)
