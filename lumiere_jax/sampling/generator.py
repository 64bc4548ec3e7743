"""`Generator`: the sampling facade for Colab and the CLI: one object per loaded model, one method
per application (each a registered front-end, `sampling/frontend.py`).

```python
from lumiere_jax.sampling import Generator, Cascade, write_outputs
gen = Generator.load("assets/moving_shapes_base")      # an export or a workdir
result = gen.generate(["a red square moving left"], num_samples=2, seed=0)
result.videos          # uint8 [N, T, H, W, 3]
write_outputs(result, "out/")   # NNNN.mp4/.gif/.npy, manifest.json, contact_sheet.png

ssr = Generator.load("assets/moving_shapes_ssr")
high = ssr.upsample(result.videos, result.prompts, seed=0)          # uint8 [N, T, 64, 64, 3]
out = Cascade(gen, ssr).generate(["a red square moving left"])      # out.videos 64px, out.low_res 32px
```

Sample i of a call uses seed `seed + i` (`sampling/engine.py` gives the key convention).
"""

from __future__ import annotations

import os
from typing import Any

from lumiere_jax import runtime
from lumiere_jax.models import style
from lumiere_jax.sampling import conditional, sdedit, super_resolution, text_to_video  # noqa: F401 (registers)
from lumiere_jax.sampling.engine import Engine
from lumiere_jax.sampling.frontend import FRONTENDS, Frontend
from lumiere_jax.sampling.outputs import Result, write_outputs
from lumiere_jax.train import checkpoint, trainer


def load_style(video_params: dict, video_config: dict, style_path: str, alpha: float) -> dict:
    """The video parameters with the style T2I at `style_path` (export or training workdir) blended
    into their spatial weights: `models.style.blend_style` of the loaded checkpoint."""
    style_params, stored = checkpoint.load(style_path)
    return style.blend_style(video_params, video_config, style_params, stored, alpha, source=style_path)


class Generator(Engine):
    """A loaded model with one method per application. Each method is a front-end built (and its
    model kind checked) on first use."""

    def frontend(self, name: str) -> Frontend:
        """The registered front-end `name` for this model (built once)."""
        key = ("frontend", name)
        if key not in self._steps:
            if name not in FRONTENDS:
                raise ValueError(f"unknown front-end {name!r}; registered: {sorted(FRONTENDS)}")
            self._steps[key] = FRONTENDS[name](self)
        return self._steps[key]

    def generate(self, prompts, **kwargs) -> Result:
        """Text-to-video: `sampling.text_to_video.TextToVideo.__call__`."""
        return self.frontend("generate")(prompts, **kwargs)

    def upsample(self, videos, prompts, **kwargs) -> Result:
        """Super-resolution with MultiDiffusion: `sampling.super_resolution.SuperResolution.__call__`."""
        return self.frontend("upsample")(videos, prompts, **kwargs)

    def conditional(self, known, mask, prompts, **kwargs) -> Result:
        """Keep `known` where `mask`: `sampling.conditional.Conditional.__call__`."""
        return self.frontend("conditional")(known, mask, prompts, **kwargs)

    def i2v(self, image, prompt, **kwargs) -> Result:
        """Image-to-video: `sampling.conditional.ImageToVideo.__call__`."""
        return self.frontend("i2v")(image, prompt, **kwargs)

    def inpaint(self, video, region, prompt, **kwargs) -> Result:
        """Regenerate a region of a video: `sampling.conditional.Inpaint.__call__`."""
        return self.frontend("inpaint")(video, region, prompt, **kwargs)

    def outpaint(self, video, prompt, **kwargs) -> Result:
        """Generate a video's borders: `sampling.conditional.Outpaint.__call__`."""
        return self.frontend("outpaint")(video, prompt, **kwargs)

    def cinemagraph(self, image, region, prompt, **kwargs) -> Result:
        """Animate a region of an image: `sampling.conditional.Cinemagraph.__call__`."""
        return self.frontend("cinemagraph")(image, region, prompt, **kwargs)

    def sdedit(self, videos, prompts, **kwargs) -> Result:
        """Video-to-video: `sampling.sdedit.SDEdit.__call__`."""
        return self.frontend("sdedit")(videos, prompts, **kwargs)

    def with_style(self, style_checkpoint: str, alpha: float) -> "Generator":
        """Stylized generation (Lumiere §4.1): a Generator whose spatial weights are
        alpha * W_style + (1 - alpha) * W_orig, W_style from a style-fine-tuned T2I checkpoint; the
        temporal layers and the text encoder are this model's."""
        params = load_style(self.params, self.config, style_checkpoint, alpha)
        config = {**self.config, "style": {"checkpoint": style_checkpoint, "alpha": float(alpha)}}
        return Generator(self.model, params, config, self.mesh_config)


def write_training_samples(config, model: Any, params: Any, workdir: str, step: int, writer) -> None:
    """`trainer.train`'s `sample_fn`: the config's sample prompts from the EMA parameters, written to
    <workdir>/samples/step_XXXXXXX/ and, for videos, to the run's metric writer."""
    gen = Generator(model, params, trainer.config_json(config), runtime.sampling_mesh(config))
    result = gen.generate(list(config.sample.prompts), seed=config.sample.seed, progress=False)
    write_outputs(result, os.path.join(workdir, "samples", f"step_{step:07d}"), fps=config.sample.fps)
    if result.videos.ndim == 5:
        writer.video(step, "samples", result.videos, fps=config.sample.fps)
