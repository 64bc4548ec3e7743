r"""Paper-scale base STUNet (Lumiere §3.1): 80 frames at 128x128, inflating the
Imagen-base-like T2I of `configs/t2i_base.py`.

  python main.py --config=configs/base.py --workdir=gs://.../base \
      --config.train.init_from=gs://.../t2i_base \
      --config.data.dataset=video_folder --config.data.video_folder=... --config.data.captions=...

Four temporal down-samplings (N = 16): the coarsest level (8x8) holds 80 / 16 = 5
frames, where a stack of temporal attention blocks runs. It builds and validates on
any machine (tests/test_configs.py traces it abstractly); training needs a pod.
"""

from configs import t2i_base
from lumiere_jax import config as config_lib


def get_config(arg: str = ""):
    del arg
    c = config_lib.default_config()
    c.stage = "video"
    for k, v in t2i_base.T2I_UNET.items():
        c.model.unet[k] = v
    c.model.text_source = "precomputed"
    c.model.text_encoder.max_length = 77
    c.model.temporal.num_temporal_downsamples = 4
    c.model.temporal.temporal_attention_depth = 2
    c.model.temporal.temporal_head_dim = 64
    c.model.num_frames = 80
    c.model.resolution = 128
    c.data.global_batch = 256
    c.optim.lr = 1e-4
    c.optim.warmup_steps = 5_000
    c.train.num_steps = 500_000
    c.train.checkpoint_every = 2000
    c.train.log_every = 100
    c.train.init_from = "REQUIRED: a t2i_base workdir or export"
    c.lock()
    return c
