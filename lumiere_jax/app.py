r"""A local web demo of the sampling package (an optional extra: `pip install .[app]`).

    python -m lumiere_jax.app --checkpoint=assets/moving_shapes_base \
        --i2v_checkpoint=assets/moving_shapes_conditional          # serves http://127.0.0.1:7860

Text-to-video (prompt, negative prompt) with the base model and image-to-video (an uploaded first
frame) with the conditional one; seed, steps, guidance and sampler for both. Each request runs the
sampling front-ends (`Generator.generate` / `Generator.i2v`) and writes its folder with
`sampling.write_outputs`, exactly as `main.py --mode=sample` does; the page shows the video (also
enlarged for viewing), the contact sheet and the mp4 to download. Nothing here samples on its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import threading
from typing import Any

import numpy as np

DISPLAY_SIZE = 256  # the enlarged copy shown on the page (nearest neighbour, the same frames)


@dataclasses.dataclass
class Output:
    """What one request produced: the folder `write_outputs` wrote, its mp4, an enlarged copy for
    the page, and the contact sheet."""

    folder: str
    mp4: str
    display_mp4: str
    contact_sheet: str
    num_frames: int


class Demo:
    """The app's two actions over loaded Generators (either may be None: its tab is left out).
    Sampling calls are serialised (one model, one device); every request gets a fresh folder."""

    def __init__(self, t2v=None, i2v=None, out_root: str | None = None, fps: int = 8):
        if t2v is None and i2v is None:
            raise ValueError("the demo needs a text-to-video checkpoint, an image-to-video checkpoint, or both")
        if t2v is not None and t2v.model.config.conditioning == "low_res":
            raise ValueError("--checkpoint holds a super-resolution model; give a text-to-video (base) model")
        if i2v is not None and i2v.model.config.conditioning != "masked":
            raise ValueError(
                f"--i2v_checkpoint must hold a conditional (masked) model, got conditioning "
                f"{i2v.model.config.conditioning!r}"
            )
        self.t2v, self.i2v, self.fps = t2v, i2v, fps
        self.out_root = out_root or tempfile.mkdtemp(prefix="lumiere_app_")
        self._lock = threading.Lock()
        self._count = 0

    @staticmethod
    def settings(gen) -> dict[str, Any]:
        """The model's own defaults, which the page's controls start from."""
        return gen.settings()

    def text_to_video(
        self,
        prompt: str,
        negative_prompt: str = "",
        seed: int = 0,
        num_steps: int | None = None,
        guidance_scale: float | None = None,
        sampler: str | None = None,
    ) -> Output:
        if self.t2v is None:
            raise ValueError("this demo was started without a text-to-video --checkpoint")
        kw = self._common(prompt, seed, num_steps, guidance_scale, sampler)
        negative = (negative_prompt or "").strip() or None
        result = self.t2v.generate([kw.pop("prompt")], negative_prompt=negative, progress=False, **kw)
        return self._write(result)

    def image_to_video(
        self,
        image: Any,
        prompt: str,
        seed: int = 0,
        num_steps: int | None = None,
        guidance_scale: float | None = None,
        sampler: str | None = None,
    ) -> Output:
        if self.i2v is None:
            raise ValueError("this demo was started without an --i2v_checkpoint")
        if image is None:
            raise ValueError("upload the first frame (an image) for image-to-video")
        frame = np.asarray(image)
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=-1)
        if frame.ndim != 3 or frame.shape[-1] not in (3, 4):
            raise ValueError(f"the first frame must be an RGB image [H, W, 3], got shape {frame.shape}")
        kw = self._common(prompt, seed, num_steps, guidance_scale, sampler)
        result = self.i2v.i2v(frame[..., :3].astype(np.uint8), kw.pop("prompt"), progress=False, **kw)
        return self._write(result)

    @staticmethod
    def _common(prompt, seed, num_steps, guidance_scale, sampler) -> dict[str, Any]:
        """The shared arguments, checked before anything runs (the front-ends check the settings' ranges)."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("enter a prompt")
        kw: dict[str, Any] = {"prompt": prompt.strip(), "seed": _integer(seed, "seed")}
        if num_steps is not None:
            kw["num_steps"] = _integer(num_steps, "steps")
        if guidance_scale is not None:
            kw["guidance_scale"] = float(guidance_scale)
        if sampler:
            kw["sampler"] = sampler
        return kw

    def _write(self, result) -> Output:
        from lumiere_jax import sampling
        from lumiere_jax.data import video_io

        with self._lock:
            self._count += 1
            folder = os.path.join(self.out_root, f"{self._count:04d}")
        sampling.write_outputs(result, folder, fps=self.fps, exists="error")
        video = result.videos[0] if result.videos.ndim == 5 else result.videos[:1]
        scale = max(1, DISPLAY_SIZE // max(video.shape[1:3]))
        display = os.path.join(folder, "display.mp4")
        video_io.write_mp4(display, np.repeat(np.repeat(video, scale, axis=1), scale, axis=2), fps=self.fps)
        return Output(
            folder,
            os.path.join(folder, "0000.mp4"),
            display,
            os.path.join(folder, "contact_sheet.png"),
            int(video.shape[0]),
        )


def _integer(value: Any, what: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an integer, got {value!r}") from None
    if not np.isfinite(f) or not f.is_integer():
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return int(f)


def build_ui(demo: Demo):
    """The gradio page: one tab per action the demo has, `api_name`s "text_to_video" / "image_to_video"."""
    import gradio as gr

    from lumiere_jax.diffusion import samplers

    def guarded(fn):
        def run(*args):
            try:
                out = fn(*args)
            except ValueError as e:  # bad input: shown on the page, the server keeps running
                raise gr.Error(str(e)) from None
            return out.display_mp4, out.contact_sheet, out.mp4

        return run

    def controls(gen):
        s = Demo.settings(gen)
        with gr.Row():
            seed = gr.Number(value=0, precision=0, label="seed")
            steps = gr.Slider(1, 100, value=int(s["num_steps"]), step=1, label="steps")
            guidance = gr.Slider(0.0, 15.0, value=float(s["guidance_scale"]), step=0.5, label="guidance")
            sampler = gr.Dropdown(list(samplers.SAMPLERS), value=s["sampler"], label="sampler")
        return seed, steps, guidance, sampler

    def outputs():
        with gr.Row():
            video = gr.Video(label="video", autoplay=True, loop=True, height=320, elem_id="result_video")
            sheet = gr.Image(label="contact sheet (rows: samples, columns: frames)", type="filepath")
        mp4 = gr.File(label="mp4")
        return [video, sheet, mp4]

    with gr.Blocks(title="lumiere_jax") as ui:
        gr.Markdown("# lumiere_jax: text-to-video and image-to-video")
        if demo.t2v is not None:
            with gr.Tab("Text to video"):
                prompt = gr.Textbox(label="prompt", value="a red square moving left", elem_id="t2v_prompt")
                negative = gr.Textbox(label="negative prompt (empty: the learned null embedding)")
                seed, steps, guidance, sampler = controls(demo.t2v)
                button = gr.Button("Generate", variant="primary", elem_id="t2v_generate")
                outs = outputs()
                button.click(
                    guarded(demo.text_to_video),
                    [prompt, negative, seed, steps, guidance, sampler],
                    outs,
                    api_name="text_to_video",
                    concurrency_limit=1,
                )
        if demo.i2v is not None:
            with gr.Tab("Image to video"):
                image = gr.Image(label="first frame", type="numpy", image_mode="RGB")
                prompt = gr.Textbox(label="prompt", value="a red square moving left")
                seed, steps, guidance, sampler = controls(demo.i2v)
                button = gr.Button("Animate", variant="primary")
                outs = outputs()
                button.click(
                    guarded(demo.image_to_video),
                    [image, prompt, seed, steps, guidance, sampler],
                    outs,
                    api_name="image_to_video",
                    concurrency_limit=1,
                )
    return ui


def theme():
    """The default theme with the system's fonts (the page fetches nothing from the internet)."""
    import gradio as gr

    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def launch(ui, port: int = 7860, block: bool = True):
    """Serve on 127.0.0.1 only; `block=False` returns at once (tests)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return ui.queue().launch(
        server_name="127.0.0.1",
        server_port=port,
        share=False,
        prevent_thread_lock=not block,
        theme=theme(),
        ssr_mode=False,
        quiet=not block,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="", help="text-to-video: an export or workdir of a base model")
    parser.add_argument(
        "--i2v_checkpoint", default="", help="image-to-video: an export or workdir of a conditional model"
    )
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--output_dir", default="", help="where each request's folder goes (default: a temporary one)")
    args = parser.parse_args(argv)
    for flag in ("checkpoint", "i2v_checkpoint"):
        path = getattr(args, flag)
        if path and not os.path.exists(path):
            parser.error(f"--{flag} {path} does not exist")
    if not (args.checkpoint or args.i2v_checkpoint):
        parser.error("give --checkpoint (text-to-video), --i2v_checkpoint (image-to-video), or both")
    if not 0 < args.port < 65536:
        parser.error(f"--port must be in 1..65535, got {args.port}")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401
    except ImportError:
        parser.error("the web demo needs gradio: pip install .[app] (pins: requirements-app.txt)")
    from lumiere_jax import runtime, sampling

    runtime.setup()
    t2v = sampling.Generator.load(args.checkpoint) if args.checkpoint else None
    i2v = sampling.Generator.load(args.i2v_checkpoint) if args.i2v_checkpoint else None
    demo = Demo(t2v, i2v, out_root=args.output_dir or None)
    print(f"serving on http://127.0.0.1:{args.port} (outputs in {demo.out_root})")
    launch(build_ui(demo), port=args.port)


if __name__ == "__main__":
    main()
