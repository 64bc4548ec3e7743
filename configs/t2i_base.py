r"""Paper-scale T2I base: an Imagen-base-like pixel U-Net at 128x128 with
precomputed T5-XXL text embeddings (4096-d, 77 tokens).

  python main.py --config=configs/t2i_base.py --workdir=gs://.../t2i_base \
      --config.data.dataset=video_folder --config.data.video_folder=... --config.data.captions=...

826.5 M U-Net parameters (counted abstractly by tests/test_configs.py). It builds
and validates anywhere; training it needs an accelerator pod.
"""

from lumiere_jax import config as config_lib

T2I_UNET = dict(
    base_channels=256,
    channel_mult=(1, 2, 3, 4, 4),
    num_res_blocks=3,
    attention_resolutions=(4, 8, 16),
    head_dim=64,
    norm_groups=32,
    text_dim=4096,
    cross_attention_dim=1024,
    text_pooling="attention",
    text_pool_heads=64,
    dropout=0.0,
    out_channels=3,
    dtype="bfloat16",
)


def get_config(arg: str = ""):
    del arg
    c = config_lib.default_config()
    c.stage = "t2i"
    for k, v in T2I_UNET.items():
        c.model.unet[k] = v
    c.model.text_source = "precomputed"
    c.model.text_encoder.max_length = 77
    c.model.resolution = 128
    c.model.num_frames = 1
    c.data.global_batch = 2048
    c.optim.lr = 1e-4
    c.optim.warmup_steps = 10_000
    c.train.num_steps = 1_000_000
    c.train.checkpoint_every = 5000
    c.train.log_every = 100
    c.lock()
    return c
