r"""moving_shapes: the CPU quickstart and the shipped reference model.

Two stages, chosen by the config argument:

  # 1. pre-train the T2I U-Net (and text encoder) on single frames
  python main.py --config=configs/moving_shapes.py:t2i --workdir=runs/ms_t2i
  # 2. inflate it into a STUNet, train the temporal layers (spatial frozen)
  python main.py --config=configs/moving_shapes.py:video --workdir=runs/ms_video \
      --config.train.init_from=runs/ms_t2i
  # sample, evaluate with the probe, export
  python main.py --config=configs/moving_shapes.py:video --workdir=runs/ms_video --mode=sample \
      --prompt="a red square moving left"
  python main.py --config=configs/moving_shapes.py:video --workdir=runs/ms_video --mode=eval

16 frames at 32x32, N = 4 (two temporal down-samplings; temporal attention on 4
frames). Expected results and wall times: docs/reference_model.md.
"""
from lumiere_jax import config as config_lib


def get_config(arg: str = "video"):
    if arg not in ("t2i", "video"):
        raise ValueError(f"configs/moving_shapes.py takes 't2i' or 'video', got {arg!r}")
    c = config_lib.default_config()
    c.stage = arg
    c.model.unet.base_channels = 32
    c.model.unet.channel_mult = (1, 2, 2)
    c.model.unet.num_res_blocks = 1
    c.model.unet.attention_resolutions = (2, 4)
    c.model.temporal.num_temporal_downsamples = 2
    c.data.dataset = "moving_shapes"
    c.data.config_name = "32px_16f"
    c.diffusion.prediction_type = "v_prediction"
    c.sample.prompts = ("a red square moving left", "a green circle moving right", "a blue triangle moving up",
                        "a yellow square moving down")
    if arg == "t2i":
        c.data.global_batch = 32
        c.optim.lr = 1e-3
        c.optim.warmup_steps = 100
        c.train.num_steps = 1000
    else:
        c.data.global_batch = 4
        c.optim.lr = 5e-4
        c.optim.warmup_steps = 100
        c.train.num_steps = 1200
    c.train.checkpoint_every = 250
    c.train.log_every = 50
    c.train.sample_every = 500
    c.lock()
    return c
