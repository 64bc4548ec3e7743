"""Reference fixtures for the DeepFloyd-IF import (tests/models/test_convert_diffusers.py) and the
learned-range DDPM variance (tests/diffusion/test_learned_range.py).

Not a dependency of the package: run once in a throwaway virtualenv outside the repo. The committed
fixtures were made with Python 3.11, torch 2.13.0+cpu, diffusers 0.42.1, safetensors 0.8.0, numpy 2.4.6:

    python3 -m venv /work/venvs/fx7b
    /work/venvs/fx7b/bin/pip install torch==2.13.0 diffusers==0.42.1 safetensors==0.8.0 numpy==2.4.6
    /work/venvs/fx7b/bin/python tools/make_if_fixtures.py tests/fixtures

Writes, under the given folder:
  if_tiny/, if_sr_tiny/   tiny randomly initialised ``UNet2DConditionModel`` folders (config.json +
                          diffusion_pytorch_model.safetensors): an IF-I-like text-to-image model
                          (ResnetDownsampleBlock2D + SimpleCrossAttnDownBlock2D, text_proj, attention
                          pooling of the text [addition_embed_type="text"], scale-shift, GELU, 6 output
                          channels) and an IF-II-like super-resolution model (6 input channels,
                          class_embed_type="timestep", per-level layers_per_block, skip_time_act,
                          output scale factors, time_embedding_act_fn="gelu"). Every parameter
                          (norms included) is perturbed so no weight sits at an init constant.
  if_unet_outputs.npz     per model: sample (NCHW), timestep, encoder_hidden_states, class_labels (SR),
                          output (NCHW), all float32 / int64; and ``param_count_if_i_xl``: the parameter
                          count of ``UNet2DConditionModel(**if_i_xl_unet_config.json)`` built on the meta device.
  learned_range_ddpm.npz  DDPMScheduler(variance_type="learned_range") trajectories of a closed-form fake
                          model with a 2*C-channel output (see ``fake_output``), with the noise bank fed in
                          place of ``randn_tensor``; per config k: ``traj_<k>`` [n + 1, B, C, H, W],
                          ``timesteps_<k>``; ``meta``: UTF-8 JSON (uint8) with the configs.

``if_i_xl_unet_config.json`` (read here, committed) is DeepFloyd/IF-I-XL-v1.0's unet/config.json as
published with the diffusers weights (architecture keys; fields of later diffusers versions at their
defaults): block_out_channels 704..2816, cross_attention_dim 2816, encoder_hid_dim 4096, 64 pooling heads.
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from diffusers.schedulers import scheduling_ddpm

TEXT_LEN, TEXT_DIM = 7, 16

IF_TINY = dict(
    sample_size=16,
    in_channels=3,
    out_channels=6,
    block_out_channels=(8, 16),
    layers_per_block=1,
    down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
    up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
    mid_block_type="UNetMidBlock2DSimpleCrossAttn",
    attention_head_dim=8,
    norm_num_groups=4,
    encoder_hid_dim=TEXT_DIM,
    encoder_hid_dim_type="text_proj",
    cross_attention_dim=32,
    addition_embed_type="text",
    addition_embed_type_num_heads=2,
    act_fn="gelu",
    resnet_time_scale_shift="scale_shift",
    cross_attention_norm="group_norm",
)
IF_SR_TINY = dict(
    IF_TINY,
    in_channels=6,
    layers_per_block=(1, 2),
    class_embed_type="timestep",
    resnet_skip_time_act=True,
    resnet_out_scale_factor=1.4142271248762552,
    mid_block_scale_factor=1.4142271248762552,
    time_embedding_act_fn="gelu",
)


def perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def unet_case(name: str, cfg: dict, seed: int, out_dir: str, arrays: dict) -> None:
    torch.manual_seed(seed)
    model = perturbed(UNet2DConditionModel(**cfg), seed + 1)
    model.save_pretrained(os.path.join(out_dir, name), safe_serialization=True)
    g = torch.Generator().manual_seed(seed + 2)
    sample = torch.randn((2, cfg["in_channels"], 16, 16), generator=g)
    timestep = torch.tensor([37, 901])
    text = torch.randn((2, TEXT_LEN, TEXT_DIM), generator=g)
    kw = {}
    if cfg.get("class_embed_type") == "timestep":
        kw["class_labels"] = torch.tensor([250, 20])
        arrays[f"{name}_class_labels"] = kw["class_labels"].numpy()
    with torch.no_grad():
        out = model(sample, timestep, encoder_hidden_states=text, **kw).sample
    arrays.update(
        {
            f"{name}_sample": sample.numpy(),
            f"{name}_timestep": timestep.numpy(),
            f"{name}_encoder_hidden_states": text.numpy(),
            f"{name}_output": out.numpy(),
        }
    )


def if_i_xl_param_count(config_path: str) -> int:
    with open(config_path) as f:
        cfg = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
    with torch.device("meta"):
        model = UNet2DConditionModel(**cfg)
    return sum(p.numel() for p in model.parameters())


# ---- learned-range DDPM --------------------------------------------------------------------------

SHAPE = (2, 3, 4, 5)  # [B, C, H, W]; the model outputs 2*C channels


def fake_coefs(t: int) -> tuple[np.float32, np.float32, np.float32]:
    return (
        np.float32(0.3 * math.cos(t / 137.0)),
        np.float32(0.1 * (1.0 + t / 500.0)),
        np.float32(0.9 * math.cos(t / 91.0)),
    )


def fake_output(x: torch.Tensor, t: int) -> torch.Tensor:
    """eps = a x + b x / (1 + x^2); variance value v = d x / (1 + x^2) in [-0.45, 0.45]."""
    a, b, d = (torch.tensor(c) for c in fake_coefs(t))
    r = x / (1 + x * x)
    return torch.cat([a * x + b * r, d * r], dim=1)


LR_CONFIGS = [
    dict(
        schedule="squaredcos_cap_v2",
        spacing="leading",
        num_steps=7,
        thresholding=True,
        dynamic_thresholding_ratio=0.95,
        sample_max_value=1.5,
    ),  # IF stage I settings
    dict(
        schedule="squaredcos_cap_v2",
        spacing="trailing",
        num_steps=5,
        thresholding=False,
        dynamic_thresholding_ratio=0.995,
        sample_max_value=1.0,
    ),
    dict(
        schedule="linear",
        spacing="linspace",
        num_steps=6,
        thresholding=False,
        dynamic_thresholding_ratio=0.995,
        sample_max_value=1.0,
    ),
]


def learned_range_trajectory(cfg: dict, x_T: torch.Tensor, bank: torch.Tensor):
    sched = DDPMScheduler(
        beta_schedule=cfg["schedule"],
        variance_type="learned_range",
        prediction_type="epsilon",
        clip_sample=False,
        timestep_spacing=cfg["spacing"],
        thresholding=cfg["thresholding"],
        dynamic_thresholding_ratio=cfg["dynamic_thresholding_ratio"],
        sample_max_value=cfg["sample_max_value"],
    )
    sched.set_timesteps(cfg["num_steps"])
    step = {"i": 0}
    scheduling_ddpm.randn_tensor = lambda shape, **_: bank[step["i"]].reshape(shape)
    x, traj = x_T, [x_T.numpy()]
    for i, t in enumerate(sched.timesteps):
        step["i"] = i
        x = sched.step(fake_output(x, int(t)), t, x).prev_sample
        traj.append(x.numpy())
    return np.stack(traj), sched.timesteps.numpy()


def main(out_dir: str) -> None:
    arrays: dict = {}
    unet_case("if_tiny", IF_TINY, 0, out_dir, arrays)
    unet_case("if_sr_tiny", IF_SR_TINY, 10, out_dir, arrays)
    arrays["param_count_if_i_xl"] = np.array(
        if_i_xl_param_count(os.path.join(out_dir, "if_i_xl_unet_config.json")), np.int64
    )
    np.savez_compressed(os.path.join(out_dir, "if_unet_outputs.npz"), **arrays)

    g = torch.Generator().manual_seed(3)
    x_T = torch.randn(SHAPE, generator=g)
    bank = torch.randn((8,) + SHAPE, generator=g)
    lr = {"x_T": x_T.numpy(), "noise": bank.numpy()}
    for k, cfg in enumerate(LR_CONFIGS):
        lr[f"traj_{k:03d}"], lr[f"timesteps_{k:03d}"] = learned_range_trajectory(cfg, x_T, bank)
    lr["meta"] = np.frombuffer(json.dumps({"configs": LR_CONFIGS}).encode(), np.uint8)
    np.savez_compressed(os.path.join(out_dir, "learned_range_ddpm.npz"), **lr)
    print("IF-I-XL parameters:", int(arrays["param_count_if_i_xl"]))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures")
