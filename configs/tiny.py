r"""A tiny config for tests and smoke runs (seconds per step on a CPU).

  python main.py --config=configs/tiny.py:video --workdir=/tmp/tiny \
      --config.train.train_spatial=True

`ssr_image` / `ssr`: a 4 -> 8 px super-resolution model on 2-frame windows of 4-frame clips.
`conditional`: the 7-channel masked model (init_from a tiny `video` run).
"""

from lumiere_jax import config as config_lib


def get_config(arg: str = "video"):
    if arg not in ("t2i", "video", "ssr_image", "ssr", "conditional"):
        raise ValueError(f"configs/tiny.py takes 't2i', 'video', 'ssr_image', 'ssr' or 'conditional', got {arg!r}")
    c = config_lib.default_config()
    c.stage = arg
    c.model.unet.base_channels = 8
    c.model.unet.channel_mult = (1, 2)
    c.model.unet.num_res_blocks = 1
    c.model.unet.attention_resolutions = (2,)
    c.model.unet.head_dim = 8
    c.model.unet.norm_groups = 4
    c.model.unet.text_dim = 16
    c.model.text_encoder.width = 16
    c.model.text_encoder.depth = 1
    c.model.text_encoder.num_heads = 2
    c.model.text_encoder.max_length = 32  # the sample prompts fit (longer ones are cut, with a warning)
    c.model.temporal.num_temporal_downsamples = 1
    c.model.temporal.temporal_head_dim = 8
    c.model.num_frames = 4
    c.model.resolution = 8
    c.data.dataset = "moving_shapes"
    c.data.global_batch = 2
    c.data.num_train = 16
    c.data.num_eval = 8
    c.optim.warmup_steps = 2
    c.train.num_steps = 6
    c.train.log_every = 2
    c.train.checkpoint_every = 2
    c.train.progress = False
    c.sample.num_steps = 3
    c.sample.num_samples = 1
    c.sample.prompts = ("a red square moving left",)
    c.eval.fvd_num_real = 0  # no I3D in the tests' evaluations; tests/eval/test_fvd.py checks FVD in --mode=eval
    if arg.startswith("ssr"):
        c.model.unet.in_channels = 6
        c.model.unet.aug_embedding = True
        c.model.temporal.num_temporal_downsamples = 0
        c.model.low_resolution = 4
        c.model.num_frames = 2
        c.data.num_frames = 4
        c.ssr.overlap = 1
        c.sample.guidance_scale = 1.0
    if arg == "conditional":
        c.model.unet.in_channels = 7
    c.lock()
    return c
