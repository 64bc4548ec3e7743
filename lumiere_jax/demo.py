"""Core-library demo (`make demo`): inflate a T2I U-Net into a STUNet and sample.

Builds a tiny random T2I U-Net and text encoder, inflates the U-Net into a STUNet,
checks the App. B property numerically (every N-th frame equals the T2I output),
then samples a 16-frame video with DDIM and classifier-free guidance. Prints what
it measured; the weights are untrained, so the video itself is noise-like.
"""
from __future__ import annotations

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lumiere_jax.diffusion import guidance, samplers, schedules
from lumiere_jax.models import STUNet, STUNetConfig, UNet, UNetConfig, inflate_params
from lumiere_jax.models.text_encoder import TextEncoder, TextEncoderConfig
from lumiere_jax.models.tokenizer import ByteTokenizer

FRAMES, SIZE = 16, 32


def main() -> None:
    t0 = time.time()
    text_cfg = TextEncoderConfig(max_length=32, width=64)
    cfg = STUNetConfig(unet=UNetConfig(base_channels=32, channel_mult=(1, 2, 2), num_res_blocks=1,
                                       attention_resolutions=(2, 4), head_dim=16, norm_groups=8,
                                       text_dim=text_cfg.width),
                       temporal_head_dim=16)
    prompts = ["a red square moving left", "a white circle moving up"]
    ids, mask = ByteTokenizer(text_cfg.max_length)(prompts)
    encoder = TextEncoder(text_cfg)
    enc_params = jax.jit(encoder.init)(jax.random.PRNGKey(0), ids, mask)
    text = jax.jit(encoder.apply)(enc_params, ids, mask)

    t2i = UNet(cfg.unet)
    frame = jnp.zeros((len(prompts), SIZE, SIZE, 3))
    t2i_params = nn.meta.unbox(jax.jit(t2i.init)(jax.random.PRNGKey(1), frame, jnp.zeros(2, jnp.int32),
                                                 text, mask))["params"]
    params = inflate_params(cfg, t2i_params, jax.random.PRNGKey(2), num_frames=FRAMES, size=SIZE)
    n_sp = sum(a.size for a in jax.tree_util.tree_leaves(params["spatial"]))
    n_tm = sum(a.size for a in jax.tree_util.tree_leaves(params["temporal"]))
    print(f"STUNet: {n_sp:,} spatial (T2I) + {n_tm:,} temporal parameters; "
          f"N = 2**{cfg.temporal_downsamples} = {cfg.temporal_factor}")

    stunet = STUNet(cfg)
    apply = jax.jit(lambda p, x, t, e, m: stunet.apply({"params": p}, x, t, e, m))
    t2i_apply = jax.jit(lambda p, x, t, e, m: t2i.apply({"params": p}, x, t, e, m))
    x = jax.random.normal(jax.random.PRNGKey(3), (len(prompts), FRAMES, SIZE, SIZE, 3))
    t = jnp.array([100, 700])
    out = apply(params, x, t, text, mask)
    errs = [float(jnp.max(jnp.abs(out[:, f] - t2i_apply(t2i_params, x[:, f], t, text, mask))))
            for f in range(FRAMES)]
    nth = [e for f, e in enumerate(errs) if f % cfg.temporal_factor == 0]
    other = [e for f, e in enumerate(errs) if f % cfg.temporal_factor]
    print(f"App. B at init: max |STUNet - T2I| on every N-th frame {max(nth):.2e}, "
          f"on the other frames min {min(other):.2e}")

    sched = schedules.get_schedule("squaredcos_cap_v2")
    null_e, null_m = guidance.null_text(len(prompts), text.shape[1], text.shape[2])

    @jax.jit
    def generate(params, key):
        model_fn = lambda x, t, ctx: stunet.apply({"params": params}, x, t, *ctx)
        guided = guidance.cfg_model_fn(model_fn, (text, mask), (null_e, null_m), guidance_scale=3.0)
        x_T = jax.random.normal(key, (len(prompts), FRAMES, SIZE, SIZE, 3))
        return samplers.sample(guided, x_T, sched, sampler="ddim", num_steps=10, thresholding=True)

    t1 = time.time()
    video = np.asarray(generate(params, jax.random.PRNGKey(4)))
    print(f"DDIM (10 steps, CFG 3.0) video {video.shape} in [{video.min():.2f}, {video.max():.2f}], "
          f"{time.time() - t1:.1f}s incl. compile; demo total {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
