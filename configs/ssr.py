r"""Paper-scale spatial super-resolution (Lumiere §3.2, App. C): 128 -> 1024 per frame, applied
with temporal MultiDiffusion to the base model's 80-frame videos.

  # image SSR pre-training on frames (random 256px patches), then the video SSR
  python main.py --config=configs/ssr.py:ssr_image --workdir=gs://.../ssr_image \
      --config.data.dataset=video_folder --config.data.video_folder=... --config.data.captions=...
  python main.py --config=configs/ssr.py --workdir=gs://.../ssr --config.train.init_from=gs://.../ssr_image ...
  # the cascade (base 80x128x128 -> 80x1024x1024)
  python main.py --config=configs/ssr.py:cascade --mode=sample --prompt="..." \
      --config.cascade.base=gs://.../base/export --config.cascade.ssr=gs://.../ssr/export

The SSR U-Net is Imagen-SR-like (no self-attention at high resolution; text enters through the
pooled embedding and the 64x64 mid block's joint attention), in_channels = 3 + 3 (noisy sample
+ up-sampled, noise-augmented low-resolution frame), with the augmentation level embedded. The
video SSR adds temporal convolutions and temporal attention and no temporal down-sampling; it
runs on windows of 16 frames (the paper does not state T'; 16 is our choice) overlapping by 2,
so 80 frames take 6 windows (starts 0, 14, 28, 42, 56, 64). Builds and validates anywhere
(tests/test_configs.py traces it abstractly); training needs a pod.
"""

from lumiere_jax import config as config_lib

ARGS = ("ssr", "ssr_image", "cascade")


def get_config(arg: str = "ssr"):
    arg = arg or "ssr"
    if arg not in ARGS:
        raise ValueError(f"configs/ssr.py takes one of {ARGS}, got {arg!r}")
    c = config_lib.default_config()
    c.stage = "ssr_image" if arg == "ssr_image" else "ssr"
    u = c.model.unet
    u.in_channels = 6
    u.aug_embedding = True
    u.base_channels = 128
    u.channel_mult = (1, 1, 2, 4, 8)  # 1024 -> 64 px at the coarsest level
    u.num_res_blocks = 2
    u.attention_resolutions = ()
    u.head_dim = 64
    u.norm_groups = 32
    u.text_dim = 4096  # T5-XXL embeddings, precomputed
    u.cross_attention_dim = 1024
    u.dtype = "bfloat16"
    c.model.text_source = "precomputed"
    c.model.text_encoder.max_length = 77
    c.model.temporal.num_temporal_downsamples = 0
    c.model.temporal.temporal_head_dim = 64
    c.model.resolution = 1024
    c.model.low_resolution = 128
    c.model.num_frames = 16  # the MultiDiffusion window T'
    c.data.num_frames = 80
    c.ssr.overlap = 2
    c.ssr.chunk_size = 2
    c.sample.guidance_scale = 1.0
    if c.stage == "ssr_image":
        c.ssr.patch_size = 256
        c.data.global_batch = 256
        c.train.num_steps = 200_000
    else:
        c.data.global_batch = 64
        c.train.num_steps = 100_000
        c.train.init_from = "REQUIRED: an ssr_image workdir or export"
    c.optim.lr = 1e-4
    c.optim.warmup_steps = 5_000
    c.train.checkpoint_every = 2000
    c.train.log_every = 100
    if arg == "cascade":
        c.cascade.base = "REQUIRED: a configs/base.py export"
        c.cascade.ssr = "REQUIRED: a configs/ssr.py export"
    c.lock()
    return c
