"""Writes notebooks/sampling.ipynb (cells as code here, so the notebook has no outputs and diffs
stay readable): python tools/make_notebook.py"""

import json
import os

cells = []


def md(src):
    cells.append({"cell_type": "markdown", "metadata": {}, "source": src.strip("\n").splitlines(True)})


def code(src, tags=()):
    cells.append(
        {
            "cell_type": "code",
            "metadata": {"tags": list(tags)} if tags else {},
            "execution_count": None,
            "outputs": [],
            "source": src.strip("\n").splitlines(True),
        }
    )


md("""
# lumiere_jax: sampling the shipped models

Text-to-video with the Space-Time U-Net, the cascade to 64 px with MultiDiffusion, the conditional
model (image-to-video, inpainting, a cinemagraph), SDEdit and stylized generation, on the built-in
`moving_shapes` task, each shown inline with the probe's reading (colour, shape, direction).

**Runtime.** Everything here runs on a CPU runtime (a few minutes at the default 25 steps). On a GPU
runtime install the CUDA build of jax that matches `requirements.txt`
(`pip install "jax[cuda12]==0.10.2"`) and set `JAX_PLATFORMS=cuda`; on a TPU runtime,
`pip install "jax[tpu]==0.10.2"` and `JAX_PLATFORMS=tpu`. Sampling splits its batch over all
devices when given a mesh (`Generator.load(path, mesh_config)`, see WORKSPACE.md).
""")
code(
    """
# Parameters (CI runs this notebook with small settings: tools/run_notebook.py overrides this cell).
INSTALL = True        # clone and pip-install the repository (Colab); False inside a checkout
REPO = ""            # Colab: the git URL of your lumiere_jax repository (or upload a checkout)
NUM_STEPS = 25        # denoising steps (the CLI's default)
SEED = 0
""",
    tags=["parameters"],
)
code("""
import os, subprocess, sys
if INSTALL and not os.path.isdir("lumiere_jax"):
    if not REPO:
        raise ValueError("set REPO (the git URL of the repository) in the parameters cell, or run from a checkout")
    subprocess.run(["git", "clone", "--depth=1", REPO, "lumiere_jax_repo"], check=True)
    os.chdir("lumiere_jax_repo")
if INSTALL:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", "requirements.txt", "-c", "constraints.txt"],
                   check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", "."], check=True)
ASSETS = os.path.abspath("assets")
print("exports:", sorted(os.listdir(ASSETS)))
""")
code("""
import base64, tempfile, warnings
import numpy as np
from IPython.display import HTML, display

from lumiere_jax.data import moving_shapes, video_io
from lumiere_jax.eval import evaluate, probe
from lumiere_jax.sampling import Cascade, Generator


def show(videos, titles, fps=8, scale=4):
    \"\"\"uint8 videos [N, T, H, W, 3] side by side as looping HTML5 videos.\"\"\"
    cells = []
    for v, title in zip(videos, titles):
        v = np.repeat(np.repeat(v, scale, axis=1), scale, axis=2)      # nearest-neighbour upscale for display
        with tempfile.NamedTemporaryFile(suffix=".mp4") as f, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="os.fork")      # ffmpeg runs as a subprocess: harmless
            video_io.write_mp4(f.name, v, fps=fps)
            data = base64.b64encode(open(f.name, "rb").read()).decode()
        cells.append(f'<figure style="display:inline-block;margin:4px"><video autoplay loop muted playsinline '
                     f'src="data:video/mp4;base64,{data}"></video><figcaption>{title}</figcaption></figure>')
    display(HTML("".join(cells)))


def reading(videos, prompts):
    \"\"\"The probe's scores of moving_shapes videos against their prompts.\"\"\"
    print(evaluate.format_scores(probe.score(videos, prompts)))
""")
md("## Text-to-video (the base STUNet, 16 frames at 32 px)")
code("""
base = Generator.load(f"{ASSETS}/moving_shapes_base")
prompts = ["a red square moving left", "a green circle moving down", "a blue triangle moving right",
           "a yellow circle moving up"]
t2v = base.generate(prompts, seed=SEED, num_steps=NUM_STEPS)
show(t2v.videos, t2v.prompts)
reading(t2v.videos, t2v.prompts)
""")
md(
    "A negative prompt replaces the learned null embedding as the unconditional branch of guidance; "
    "`latents` fixes the initial noise:"
)
code("""
neg = base.generate(prompts[:2], seed=SEED, num_steps=NUM_STEPS, negative_prompt="a white square moving right")
show(neg.videos, [f"{p} (negative: a white square moving right)" for p in neg.prompts])
reading(neg.videos, neg.prompts)
""")
md("## The cascade: base model, then spatial super-resolution to 64 px on overlapping windows (MultiDiffusion)")
code("""
cascade = Cascade(base, Generator.load(f"{ASSETS}/moving_shapes_ssr"))
casc = cascade.generate(prompts[:2], seed=SEED, base_overrides={"num_steps": NUM_STEPS},
                        ssr_overrides={"num_steps": NUM_STEPS})
show(casc.videos, casc.prompts, scale=2)
reading(casc.videos, casc.prompts)
""")
md("## The conditional model: image-to-video, inpainting, a cinemagraph")
code("""
cond = Generator.load(f"{ASSETS}/moving_shapes_conditional")
rng = np.random.default_rng(SEED)
spec = moving_shapes.sample_spec(rng, 32, 16, combo=("magenta", "square", "up"))
clip = moving_shapes.render_clip(spec, 16, 32)                         # a real clip: frames [16, 32, 32, 3]
i2v = cond.i2v(clip[0], "a magenta square moving up", seed=SEED, num_steps=NUM_STEPS)
psnr = 10 * np.log10(255.0 ** 2 / max(np.mean((i2v.videos[0, 0].astype(float) - clip[0]) ** 2), 1e-10))
show([clip, i2v.videos[0]], ["the clip (its first frame is given)", f"image-to-video (frame 0: {psnr:.1f} dB)"])
reading(i2v.videos, i2v.prompts)
""")
code("""
region = np.zeros((32, 32), bool)
region[:, 16:] = True                                                  # regenerate the right half
inp = cond.inpaint(clip, region, "a magenta square moving up", seed=SEED, num_steps=NUM_STEPS)
keep = ~region
psnr = 10 * np.log10(255.0 ** 2 / max(np.mean((inp.videos[0][:, keep].astype(float) - clip[:, keep]) ** 2), 1e-10))
show([clip, inp.videos[0]], ["input", f"inpainted right half (outside: {psnr:.1f} dB)"])

still = moving_shapes.render_clip(moving_shapes.sample_spec(rng, 32, 16, combo=("cyan", "circle", "left")), 16, 32)[0]
area = np.zeros((32, 32), bool)
area[8:24, 8:24] = True                                                # only this square may move
cine = cond.cinemagraph(still, area, "a cyan circle moving left", seed=SEED, num_steps=NUM_STEPS)
outside = np.abs(cine.videos[0][:, ~area].astype(float) - still[~area]).mean(axis=(1, 2)).max()
show([cine.videos[0]], [f"cinemagraph (outside the region: mean change {outside:.2f} / 255)"])
""")
md("## SDEdit: video-to-video with another prompt (Lumiere Fig. 9)")
code("""
edits = [base.sdedit(clip, "a yellow circle moving down", strength=s, seed=SEED, num_steps=NUM_STEPS)
         for s in (0.3, 0.6, 0.9)]
show([clip] + [e.videos[0] for e in edits], ["input"] + [f"strength {s}" for s in (0.3, 0.6, 0.9)])
for s, e in zip((0.3, 0.6, 0.9), edits):
    print(f"strength {s}:", end=" ")
    reading(e.videos, e.prompts)
""")
md("## Stylized generation: a style-fine-tuned T2I's spatial weights blended into the video model (§4.1)")
code("""
styled = base.with_style(f"{ASSETS}/moving_shapes_style_outline", 0.5)
sty = styled.generate(prompts[:2], seed=SEED, num_steps=NUM_STEPS)
show(sty.videos, [f"{p} (outline style, alpha 0.5)" for p in sty.prompts])
reading(sty.videos, sty.prompts)
""")

nb = {
    "cells": cells,
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}
for i, c in enumerate(nb["cells"]):
    c["id"] = f"cell-{i}"
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks", "sampling.ipynb")
with open(OUT, "w") as f:
    json.dump(nb, f, indent=1)
print(len(cells), "cells")
