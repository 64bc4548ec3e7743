r"""moving_shapes: the CPU quickstart and the shipped reference model.

Two stages, chosen by the config argument:

  # 1. pre-train the T2I U-Net (and text encoder) on single frames: 1000 steps, then 1000 more from
  #    them with a fresh schedule (after 1000 a quarter of its shapes read wrong: docs/reference_model.md)
  python main.py --config=configs/moving_shapes.py:t2i --workdir=runs/ms_t2i_1
  python main.py --config=configs/moving_shapes.py:t2i --workdir=runs/ms_t2i \
      --config.train.init_from=runs/ms_t2i_1
  # 2. inflate it into a STUNet, train the temporal layers (spatial frozen) in seven phases, each
  #    from the previous one's EMA parameters: high noise, the top of the noise range (four times),
  #    then two settle phases that mix mid noise (shape) with the top of the range (direction)
  #    (docs/motion_text.md, docs/reference_model.md)
  python main.py --config=configs/moving_shapes.py:video --workdir=runs/ms_video_1 \
      --config.train.init_from=runs/ms_t2i
  for p in 2 3 4 5; do
    python main.py --config=configs/moving_shapes.py:video_high_noise --workdir=runs/ms_video_$p \
        --config.train.init_from=runs/ms_video_$((p - 1))
  done
  python main.py --config=configs/moving_shapes.py:video_mixture --workdir=runs/ms_video_6 \
      --config.train.init_from=runs/ms_video_5
  python main.py --config=configs/moving_shapes.py:video_mixture_settle --workdir=runs/ms_video \
      --config.train.init_from=runs/ms_video_6
  # sample, evaluate with the probe, export
  python main.py --config=configs/moving_shapes.py:video --workdir=runs/ms_video --mode=sample \
      --prompt="a red square moving left"
  python main.py --config=configs/moving_shapes.py:video --workdir=runs/ms_video --mode=eval

  # 3. super-resolution 32 -> 64: pre-train on frames (random 32px patches), inflate for
  #    8-frame windows (no temporal down-sampling), train the temporal layers
  python main.py --config=configs/moving_shapes.py:ssr_image --workdir=runs/ms_ssr_image
  python main.py --config=configs/moving_shapes.py:ssr --workdir=runs/ms_ssr \
      --config.train.init_from=runs/ms_ssr_image
  # 4. the cascade: text -> base STUNet (32px) -> SSR with MultiDiffusion (64px)
  python main.py --config=configs/moving_shapes.py:cascade --mode=sample \
      --prompt="a red square moving left"
  # 5. the conditional (7-channel) model: fine-tune the base export on a mixture of masks, then
  #    image-to-video / inpainting / outpainting / cinemagraphs (docs/conditional.md)
  python main.py --config=configs/moving_shapes.py:conditional --workdir=runs/ms_conditional
  python main.py --config=configs/moving_shapes.py:conditional --workdir=runs/ms_conditional \
      --mode=sample --task=i2v --image=frame.png --prompt="a red square moving left"
  #    presets set config.task instead of --task: :i2v (the conditional model), :sdedit (the base)
  python main.py --config=configs/moving_shapes.py:i2v --mode=sample --checkpoint=assets/moving_shapes_conditional \
      --image=frame.png --prompt="a red square moving left"
  python main.py --config=configs/moving_shapes.py:sdedit --mode=sample --checkpoint=assets/moving_shapes_base \
      --input_video=clip.mp4 --config.task.strength=0.5 --prompt="a blue square moving left"
  # 6. stylized generation: fine-tune the T2I on outlined shapes, interpolate its spatial weights
  #    into the base STUNet (alpha * W_style + (1 - alpha) * W_orig)
  python main.py --config=configs/moving_shapes.py:style --workdir=runs/ms_style
  python main.py --config=configs/moving_shapes.py:video --mode=sample --checkpoint=assets/moving_shapes_base \
      --style_checkpoint=runs/ms_style --style_alpha=0.5 --prompt="a red square moving left"

16 frames at 32x32 with no temporal down-sampling (temporal attention on all 16 frames at 8x8:
at this size the coarsest level is cheap, and App. B's nearest-neighbour temporal resizing at init
costs the inflated model 2.4x its x0 error); the temporal layers read the prompt through a
cross-attention whose queries carry their frame and pixel position (over the encoder output and 64
fixed byte 3-gram features) and a FiLM of the pooled prompt and the timestep, all zero-initialised
(App. B's identity at init). The video phases train at high noise, which made the motion coherent,
then at the top of the noise range, where the direction word decides the trajectory, then back at mid
noise, which restores shape on unseen combinations (docs/motion_text.md); SSR windows of 8 frames
overlapping by 2 (App. C), so a 16-frame video is covered by windows starting at frames 0, 6 and 8.
Expected results and wall times: docs/reference_model.md.
"""

from lumiere_jax import config as config_lib


ARGS = (
    "t2i", "video", "video_high_noise", "video_settle", "video_mixture", "video_mixture_settle",
    "ssr_image", "ssr", "cascade", "conditional", "style", "i2v", "sdedit",
)  # fmt: skip
# Sampling presets: the model's config with config.task set (main.py's --task and friends override it).
PRESETS = {"i2v": ("conditional", "i2v"), "sdedit": ("video", "sdedit")}
# The base STUNet's training phases (video_settle: the last phase of the base shipped until 2026-12-03)
VIDEO_ARGS = ("video", "video_high_noise", "video_settle", "video_mixture", "video_mixture_settle")
BASE_EXPORT = "assets/moving_shapes_base"
CONDITIONAL_EXPORT = "assets/moving_shapes_conditional"
T2I_EXPORT = "assets/moving_shapes_t2i"
SSR_EXPORT = "assets/moving_shapes_ssr"
# The quickstart's U-Net (of every stage; the library defaults are a larger model's)
UNET = dict(base_channels=32, channel_mult=(1, 2, 2), num_res_blocks=1, head_dim=16, norm_groups=8, text_dim=64)
TEMPORAL_HEAD_DIM = 16


def get_config(arg: str = "video"):
    if arg not in ARGS:
        raise ValueError(f"configs/moving_shapes.py takes one of {ARGS}, got {arg!r}")
    if arg in PRESETS:
        model_arg, task = PRESETS[arg]
        c = get_config(model_arg)
        with c.unlocked():
            c.task.name = task
        return c
    if arg in ("ssr_image", "ssr", "cascade"):
        return _ssr_config(arg)
    c = config_lib.default_config()
    c.stage = "t2i" if arg == "style" else "video" if arg in VIDEO_ARGS else arg
    if arg == "conditional":
        c.model.unet.in_channels = 7  # <noisy video, masked video, mask>
    c.model.unet.update(UNET)
    c.model.unet.attention_resolutions = (2, 4)
    c.model.temporal.num_temporal_downsamples = 0
    c.model.temporal.temporal_head_dim = TEMPORAL_HEAD_DIM
    if c.stage in ("video", "conditional"):  # the video models' text pathway into the temporal layers
        t = c.model.temporal
        t.temporal_text = "cross_attention"
        t.temporal_text_features = 64
        t.temporal_text_query_positions = "space_time"  # the text queries know their frame and pixel
        t.temporal_text_film = True  # pooled prompt FiLM in every conv inflation block,
        t.temporal_time_film = True  # also reading the timestep
    c.data.dataset = "moving_shapes"
    c.data.config_name = "32px_16f"
    c.diffusion.prediction_type = "v_prediction"
    c.sample.prompts = (
        "a red square moving left",
        "a green circle moving right",
        "a blue triangle moving up",
        "a yellow square moving down",
    )
    c.train.sample_every = 500  # stages below that sample nothing set 0
    if arg == "style":  # fine-tune the T2I U-Net on outlined shapes (Lumiere §4.1)
        c.data.style = "outline"
        c.train.init_from = T2I_EXPORT
        c.train.trainable = ("denoiser/",)  # the text encoder stays the base model's
        c.data.global_batch = 16
        c.optim.lr = 3e-4
        c.optim.warmup_steps = 20
        c.train.num_steps = 300
        c.train.sample_every = 0
    elif arg == "t2i":
        c.data.global_batch = 32
        c.optim.lr = 1e-3
        c.optim.warmup_steps = 100
        c.train.num_steps = 1000
    elif c.stage == "video":  # phases (docs/motion_text.md), each from the last's EMA
        c.data.global_batch = 4
        c.optim.lr = 2e-3
        c.diffusion.timestep_sampling = "logit_normal"
        if arg == "video":  # from the T2I: most of the batch at high noise (t/T > 0.88
            c.optim.warmup_steps = 100  # for half of it), where layout and trajectory are decided
            c.train.num_steps = 600
            c.diffusion.timestep_logit_mean = 2.0
            c.diffusion.timestep_logit_std = 1.2
        elif arg == "video_high_noise":  # run 4 times: the top of the noise range, where the
            c.optim.warmup_steps = 20  # direction word is worth most (ideal: +134 % x0 error)
            c.train.num_steps = 300
            c.diffusion.timestep_logit_mean = 2.5
        else:  # the settle phases: back to mid noise, where shape is drawn
            c.optim.warmup_steps = 20
            c.train.num_steps = 300
            c.diffusion.timestep_logit_mean = 1.0
            if arg in ("video_mixture", "video_mixture_settle"):  # ... while part of each batch stays at
                c.diffusion.timestep_sampling = "logit_normal_mixture"  # the top of the range (direction)
                c.diffusion.timestep_logit_mean2 = 3.0
                c.diffusion.timestep_mixture_weight = 0.5 if arg == "video_mixture" else 0.25
                if arg == "video_mixture_settle":
                    c.optim.lr = 1e-3
    else:  # conditional: full fine-tune of the base export
        c.train.init_from = BASE_EXPORT
        c.train.train_spatial = True
        c.data.global_batch = 4
        c.optim.lr = 2e-4
        c.optim.warmup_steps = 50
        c.train.num_steps = 400  # 800 until 2026-12-04: 400 met every goal too (docs/conditional.md), in half the time
        c.train.sample_every = 0
        # a guidance interval: 8 at t >= 0.8 T (where the trajectory is decided), 3 below (shape); at
        # 64 clips per split image-to-video direction 0.75 (16 held-out clips) -> 1.00 / 0.95, shape
        # kept (docs/conditional.md)
        c.sample.high_noise_guidance_scale = 8.0
    c.train.checkpoint_every = 250
    c.train.log_every = 50
    c.eval.fvd_num_real = 192  # of the 256 clips a split holds: the same reference for up to 64 videos
    c.lock()
    return c


def _ssr_config(arg: str):
    """The 32 -> 64 super-resolution stages; `cascade` samples base + SSR exports."""
    c = config_lib.default_config()
    c.stage = "ssr_image" if arg == "ssr_image" else "ssr"
    u = c.model.unet
    u.in_channels = 6  # noisy 64px sample + up-sampled 32px input
    u.aug_embedding = True
    u.update(UNET)
    u.attention_resolutions = ()  # attention only in the mid block (16x16 at 64px)
    c.model.temporal.num_temporal_downsamples = 0  # SSR windows keep their frame rate
    c.model.temporal.temporal_head_dim = TEMPORAL_HEAD_DIM
    c.model.resolution = 64
    c.model.low_resolution = 32
    c.model.num_frames = 8  # the MultiDiffusion window
    c.data.dataset = "moving_shapes"
    c.data.config_name = "64px_16f"
    c.data.num_frames = 16
    c.data.num_train = 1024
    c.diffusion.prediction_type = "v_prediction"
    c.sample.num_steps = 20
    c.sample.guidance_scale = 1.0  # the low-res input carries the content
    c.sample.prompts = ("a red square moving left", "a green circle moving right")
    if c.stage == "ssr_image":
        c.ssr.patch_size = 32  # patches: 4x cheaper steps on the CPU
        c.data.global_batch = 16
        c.optim.lr = 1e-3
        # 600 steps (shipped until 2026-12-05) left small triangles rounded (fill ratio 0.65 against
        # 0.55 real at 64 px): the cascade read 7 of 128 base triangles as circles. docs/ssr.md.
        c.train.num_steps = 1500
    else:
        c.data.global_batch = 2
        c.optim.lr = 5e-4
        c.train.num_steps = 300
    c.optim.warmup_steps = 50
    c.train.checkpoint_every = 100
    c.train.log_every = 25
    c.cascade.base = BASE_EXPORT if arg == "cascade" else ""
    c.cascade.ssr = SSR_EXPORT if arg == "cascade" else ""
    c.eval.fvd_num_real = 192  # as the base model's (256 clips a split)
    c.lock()
    return c
