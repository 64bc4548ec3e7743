r"""Turns a diffusers DeepFloyd-IF U-Net folder into a project export that a video / SSR run inflates.

  # IF-I (64x64 text-to-image) -> export of stage t2i
  python tools/import_diffusers.py --unet=/data/IF-I-XL-v1.0/unet --out=runs/if_i_xl
  # IF-II (64 -> 256 super-resolution) -> export of stage ssr_image
  python tools/import_diffusers.py --unet=/data/IF-II-L-v1.0/unet --out=runs/if_ii_l \
      --stage=ssr_image --resolution=256 --low_resolution=64
  # optional: the T5 embedding of "" [77, 4096] (.npy) as the classifier-free-guidance null text
  python tools/import_diffusers.py ... --null_embedding=/data/t5_empty_prompt.npy

Then inflate and train (configs/if_stage1.py, configs/if_stage2.py; docs/pretrained.md).
The logic is lumiere_jax.train.pretrained.import_diffusers_unet.
"""

from __future__ import annotations

import argparse

import numpy as np

from lumiere_jax.train import pretrained


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--unet", required=True, help="diffusers UNet2DConditionModel folder (config.json + safetensors)")
    p.add_argument("--out", required=True, help="export directory to create")
    p.add_argument("--stage", default="t2i", choices=("t2i", "ssr_image"))
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--low_resolution", type=int, default=0)
    p.add_argument("--null_embedding", default="", help=".npy [77, text_dim]: the text encoder's output for ''")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    a = p.parse_args(argv)
    null = np.load(a.null_embedding) if a.null_embedding else None
    c = pretrained.import_diffusers_unet(
        a.unet,
        a.out,
        stage=a.stage,
        resolution=a.resolution,
        low_resolution=a.low_resolution,
        null_embedding=null,
        dtype=a.dtype,
    )
    print(
        f"wrote {a.out}: stage {c.stage}, {c.model.resolution}px, "
        f"unet {c.model.unet.base_channels} x {tuple(c.model.unet.channel_mult)}"
    )


if __name__ == "__main__":
    main()
