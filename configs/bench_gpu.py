r"""Benchmark STUNet for `bench/step_perf.py` (step time, FLOPs, MFU; docs/performance.md).

`h100` (default): a mid-size STUNet in bf16 compute (float32 parameters and optimizer state),
32 frames at 64x64, 3 temporal down-samplings (4 frames at the 8x8 coarsest level), precomputed 1024-d
text embeddings, the whole network trained; cuDNN attention where it pays (`attention_impl=auto`).
Meant to fill one 80 GB H100 / 141 GB H200 at the batch below; raise `--set data.global_batch=...` on a bigger card or
lower it (or set `--set model.remat=dots_and_convs_saveable`) if it runs out of memory.

  JAX_PLATFORMS=cuda python bench/step_perf.py --config=configs/bench_gpu.py:h100 --steps=20

`cpu`: the same family shrunk to seconds per step on a CPU (recorded for regressions).

  JAX_PLATFORMS=cpu python bench/step_perf.py --config=configs/bench_gpu.py:cpu --steps=5
"""

from lumiere_jax import config as config_lib


def get_config(arg: str = "h100"):
    if arg not in ("h100", "cpu"):
        raise ValueError(f"configs/bench_gpu.py takes 'h100' or 'cpu', got {arg!r}")
    c = config_lib.default_config()
    c.stage = "video"
    u = c.model.unet
    u.base_channels, u.channel_mult, u.num_res_blocks = 192, (1, 2, 3, 4), 2
    u.attention_resolutions, u.head_dim, u.norm_groups = (4, 8), 64, 32
    u.text_dim, u.cross_attention_dim = 1024, None
    u.dtype, u.param_dtype, u.attention_impl = "bfloat16", "float32", "auto"
    c.model.text_source = "precomputed"
    c.model.text_encoder.max_length = 64
    c.model.temporal.num_temporal_downsamples = 3
    c.model.temporal.temporal_attention_depth = 1
    c.model.temporal.temporal_head_dim = 64
    c.model.num_frames = 32
    c.model.resolution = 64
    c.data.global_batch = 8
    c.train.train_spatial = True
    c.sample.guidance_scale = 7.5
    if arg == "cpu":
        u.base_channels, u.channel_mult, u.num_res_blocks = 32, (1, 2, 2), 1
        u.attention_resolutions, u.head_dim, u.norm_groups = (2, 4), 16, 8
        u.text_dim = 64
        u.dtype, u.attention_impl = "float32", "xla"
        c.model.text_encoder.max_length = 16
        c.model.temporal.num_temporal_downsamples = 2
        c.model.temporal.temporal_head_dim = 16
        c.model.num_frames = 16
        c.model.resolution = 32
        c.data.global_batch = 2
    c.lock()
    return c
