r"""DeepFloyd IF stage II (IF-II-L, 64 -> 256 super-resolution) inflated into the video SSR.

  python tools/import_diffusers.py --unet=/data/IF-II-L-v1.0/unet --out=runs/if_ii_l \
      --stage=ssr_image --resolution=256 --low_resolution=64
  python main.py --config=configs/if_stage2.py:ssr --workdir=runs/if2_ssr --config.train.init_from=runs/if_ii_l \
      --config.data.dataset=video_folder --config.data.video_folder=...

The SSR has no temporal down-sampling and runs on 16-frame windows with MultiDiffusion at sampling.
The U-Net section is IF-II-L's unet/config.json (block_out_channels 160..1280, layers_per_block
2,2,3,5,5, class_embed_type="timestep", resnet_skip_time_act, output scales sqrt(2)); if your
unet/config.json differs, copy ``model.unet`` from the export config.json the import wrote.
Sampling: DDPM, dynamic thresholding 0.95 / 1.0, low-res augmentation level 250 (IF's defaults).
"""

from lumiere_jax import config as config_lib, presets

IF_II_L = presets.IF_II_L  # the U-Net (every field; lumiere_jax/presets.py)

ARGS = ("ssr_image", "ssr")


def get_config(arg: str = "ssr"):
    arg = arg or "ssr"
    if arg not in ARGS:
        raise ValueError(f"configs/if_stage2.py takes one of {ARGS}, got {arg!r}")
    c = config_lib.default_config()
    c.stage = arg
    presets.set_unet(c, IF_II_L)
    presets.apply_if_preset(c, 2)
    c.model.resolution = 256
    c.model.low_resolution = 64
    c.model.null_text = "zero"
    c.model.num_frames = 16
    c.model.temporal.num_temporal_downsamples = 0
    c.model.temporal.temporal_head_dim = 64
    c.model.unet.dtype = "bfloat16"
    c.data.global_batch = 8
    c.ssr.window = 16
    c.optim.lr = 1e-4
    c.train.num_steps = 100_000
    c.lock()
    return c
