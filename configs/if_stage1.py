r"""DeepFloyd IF stage I (IF-I-XL, 64x64, 4.3 B parameters) inflated into a STUNet.

  # 1. import the diffusers weights into a project export (stage t2i)
  python tools/import_diffusers.py --unet=/data/IF-I-XL-v1.0/unet --out=runs/if_i_xl
  # 2. train the temporal layers on videos with precomputed T5 embeddings; IF's spatial weights stay frozen
  python main.py --config=configs/if_stage1.py:video --workdir=runs/if1_video \
      --config.train.init_from=runs/if_i_xl --config.data.dataset=video_folder --config.data.video_folder=...

`t2i` is the imported image model itself (e.g. to fine-tune it). The U-Net section is IF-I-XL's
unet/config.json converted by lumiere_jax.models.convert_diffusers (tests check the conversion);
for IF-I-L / IF-I-M override ``model.unet`` with the values of your import's export config.json.
Diffusion and sampling follow IF: squaredcos_cap_v2, epsilon, learned-range variance (the hybrid
loss trains the variance channels of the new layers' outputs), DDPM with dynamic thresholding
0.95 / 1.5. Builds and validates anywhere; training needs accelerators.
"""

from lumiere_jax import config as config_lib, presets

IF_I_XL = presets.IF_I_XL  # the U-Net (every field; lumiere_jax/presets.py)

ARGS = ("t2i", "video")


def get_config(arg: str = "video"):
    arg = arg or "video"
    if arg not in ARGS:
        raise ValueError(f"configs/if_stage1.py takes one of {ARGS}, got {arg!r}")
    c = config_lib.default_config()
    c.stage = arg
    presets.set_unet(c, IF_I_XL)
    presets.apply_if_preset(c, 1)
    c.model.resolution = 64
    c.model.null_text = "zero"  # set "learned" if the import stored the T5 embedding of ""
    c.model.num_frames = 16
    c.model.temporal.num_temporal_downsamples = 3  # 16 frames -> 2 at the coarsest level (8x8)
    c.model.temporal.temporal_head_dim = 64
    c.model.unet.dtype = "bfloat16"
    c.data.global_batch = 8
    c.optim.lr = 1e-4
    c.train.num_steps = 100_000
    c.lock()
    return c
