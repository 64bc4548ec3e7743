"""FLOPs of the U-Net / STUNet from its config (convolutions, dense layers, attention matmuls).

`denoiser_flops` counts, block by block as `models/unet.py`, `models/stunet.py` and
`models/temporal.py` build them, the multiply-adds of every convolution, dense layer and the two
attention matmuls (QK^T, PV), 2 FLOPs each. Norms, activations, softmax and additions are not
counted: they are a few percent of a U-Net's FLOPs (XLA's cost analysis counts them; the bench
compares the two). `program_matmul_flops` counts the same quantities from a traced program
(jaxpr), which the tests use to check the formulas exactly.

Conventions: forward pass of one denoiser call; a train step costs ~3x (forward + backward for
activations and weights); a sampling step with classifier-free guidance is one call on 2x the batch.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from typing import Any

from lumiere_jax.models.stunet import STUNetConfig, hook_plan
from lumiere_jax.models.unet import UNetConfig


def _conv(positions: int, taps: int, cin: int, cout: int) -> int:
    return 2 * positions * taps * cin * cout


def _dense(rows: int, din: int, dout: int) -> int:
    return 2 * rows * din * dout


def _attention(seqs: int, lq: int, lk: int, width: int) -> int:
    """QK^T and PV over all heads: 2 * (2 * seqs * lq * lk * width)."""
    return 4 * seqs * lq * lk * width


@dataclasses.dataclass
class _Counter:
    by_kind: Counter = dataclasses.field(default_factory=Counter)

    def add(self, kind: str, flops: int) -> None:
        self.by_kind[kind] += int(flops)


def _resnet(
    c: _Counter, u: UNetConfig, n_frames: int, h: int, w: int, cin: int, cout: int, resample: str | None = None
) -> tuple[int, int]:
    """A ResnetBlock on [n_frames (= B*T), h, w, cin]; returns the output size."""
    if resample == "down":
        h, w = h // 2, w // 2
    elif resample == "up":
        h, w = h * 2, w * 2
    n = n_frames * h * w
    c.add("spatial_conv", _conv(n, 9, cin, cout) + _conv(n, 9, cout, cout))
    if cin != cout:
        c.add("spatial_conv", _conv(n, 1, cin, cout))
    return h, w


def _spatial_attention(
    c: _Counter,
    u: UNetConfig,
    batch: int,
    n_frames: int,
    h: int,
    w: int,
    ch: int,
    text_len: int,
    text_width: int | None,
) -> None:
    rows = n_frames * h * w
    c.add("spatial_dense", _dense(rows, ch, ch) * 2)  # to_q, to_out
    lk = 0
    if text_width is not None:
        c.add("spatial_dense", _dense(batch * text_len, text_width, ch) * 2)  # add_k_proj, add_v_proj
        lk += text_len
    if not u.only_cross_attention:
        c.add("spatial_dense", _dense(rows, ch, ch) * 2)  # to_k, to_v
        lk += h * w
    c.add("spatial_attention", _attention(n_frames, h * w, lk, ch))


def _temporal(
    c: _Counter, cfg: STUNetConfig, kind: str, batch: int, frames: int, h: int, w: int, ch: int, text_len: int = 0
) -> None:
    k = cfg.temporal_kernel_size
    if kind == "conv":
        n = batch * frames * h * w
        c.add("temporal_conv", _conv(n, 9, ch, ch) + _conv(n, k, ch, ch) + _dense(n, ch, ch))
        if cfg.temporal_text_film:  # pooled text -> hidden -> (scale, shift), then y * (1 + g) + b
            dim = cfg.unet.text_dim + cfg.temporal_text_features
            c.add("temporal_dense", _dense(batch, dim, ch) + _dense(batch, ch, 2 * ch) + 2 * n * ch)
    elif kind == "attention":
        n = batch * frames * h * w
        r = cfg.temporal_mlp_ratio
        per_block = _dense(n, ch, ch) * 4 + _dense(n, ch, r * ch) * 2  # q, k, v, proj_out; mlp in/out
        c.add("temporal_dense", cfg.temporal_attention_depth * per_block)
        c.add("temporal_attention", cfg.temporal_attention_depth * _attention(batch * h * w, frames, frames, ch))
        if cfg.temporal_text == "cross_attention":  # text_q, text_proj_out; text_k, text_v
            per_block = _dense(n, ch, ch) * 2 + _dense(batch * text_len, cfg.unet.text_dim, ch) * 2
            c.add("temporal_dense", cfg.temporal_attention_depth * per_block)
            c.add("temporal_attention", cfg.temporal_attention_depth * _attention(batch, frames * h * w, text_len, ch))
    elif kind == "down":
        c.add("temporal_conv", _conv(batch * (frames // 2) * h * w, k, ch, ch))
    elif kind == "up":
        c.add("temporal_conv", _conv(batch * (frames * 2) * h * w, k, ch, ch))


def denoiser_flops(
    cfg: STUNetConfig | UNetConfig, *, batch: int, frames: int, size: int, text_len: int, by_kind: bool = False
) -> int | dict[str, int]:
    """Forward FLOPs of one call of the STUNet (or of the T2I U-Net, given a UNetConfig, on `frames`
    independent frames) on [batch, frames, size, size, C] with `text_len` text tokens."""
    video = isinstance(cfg, STUNetConfig)
    u = cfg.unet if video else cfg
    plan = hook_plan(cfg) if video else {}
    n_down = cfg.temporal_downsamples if video else 0
    c = _Counter()
    last = u.num_levels - 1
    frames_at = lambda level: frames // 2 ** min(level, n_down)

    def hook(name: str, level: int, h: int, w: int, ch: int, frames_in: int) -> None:
        if name in plan:
            _temporal(c, cfg, plan[name], batch, frames_in, h, w, ch, text_len)

    # Embeddings.
    temb = u.temb_dim
    c.add("embedding", _dense(batch, u.base_channels, temb) + _dense(batch, temb, temb))
    if u.aug_embedding:
        c.add("embedding", _dense(batch, u.base_channels, temb) + _dense(batch, temb, temb))
    text_width = None
    if u.text_dim is not None:
        if u.text_pooling == "mean":
            c.add("embedding", _dense(batch, u.text_dim, temb))
        elif u.text_pooling == "attention":
            d = u.text_dim
            c.add(
                "embedding",
                _dense(batch, d, d)
                + 2 * _dense(batch * (text_len + 1), d, d)
                + _attention(batch, 1, text_len + 1, d)
                + _dense(batch, d, temb),
            )
        text_width = u.text_dim
        if u.cross_attention_dim is not None:
            c.add("embedding", _dense(batch * text_len, u.text_dim, u.cross_attention_dim))
            text_width = u.cross_attention_dim
    # Every ResnetBlock projects the embedding: counted with the blocks below.
    mult = 2 if u.time_scale_shift else 1

    def res(n_frames, h, w, cin, cout, resample=None):
        c.add("embedding", _dense(batch, temb, cout * mult))
        return _resnet(c, u, n_frames, h, w, cin, cout, resample)

    def attn(n_frames, h, w, ch):
        _spatial_attention(c, u, batch, n_frames, h, w, ch, text_len, text_width)

    h = w = size
    c.add("spatial_conv", _conv(batch * frames * h * w, 9, u.in_channels, u.base_channels))
    skips = [u.base_channels]
    ch = u.base_channels
    for level, width in enumerate(u.channels):
        t = frames_at(level)
        for i in range(u.num_res_blocks):
            res(batch * t, h, w, ch, width)
            ch = width
            if u.has_attention(level):
                attn(batch * t, h, w, ch)
            hook(f"down_{level}_{i}", level, h, w, ch, t)
            skips.append(ch)
        if level != last:
            if u.resample == "resnet":
                h, w = res(batch * t, h, w, ch, ch, "down")
            else:
                h, w = h // 2, w // 2
                c.add("spatial_conv", _conv(batch * t * h * w, 9, ch, ch))
            hook(f"tdown_{level}", level, h, w, ch, t)
            skips.append(ch)
    t = frames_at(last)
    res(batch * t, h, w, ch, u.channels[-1])
    ch = u.channels[-1]
    if u.mid_attention:
        attn(batch * t, h, w, ch)
    hook("mid_0", last, h, w, ch, t)
    res(batch * t, h, w, ch, ch)
    hook("mid_1", last, h, w, ch, t)
    for level in reversed(range(u.num_levels)):
        width = u.channels[level]
        t = frames_at(level)
        for i in range(u.num_res_blocks + 1):
            res(batch * t, h, w, ch + skips.pop(), width)
            ch = width
            if u.has_attention(level):
                attn(batch * t, h, w, ch)
            hook(f"up_{level}_{i}", level, h, w, ch, t)
        if level != 0:
            if u.resample == "resnet":
                h, w = res(batch * t, h, w, ch, ch, "up")
            else:
                h, w = h * 2, w * 2
                c.add("spatial_conv", _conv(batch * t * h * w, 9, ch, ch))
            hook(f"tup_{level - 1}", level - 1, h, w, ch, t)
    c.add("spatial_conv", _conv(batch * frames * h * w, 9, ch, u.out_channels))
    return dict(c.by_kind) if by_kind else sum(c.by_kind.values())


def text_encoder_flops(width: int, depth: int, mlp_ratio: int, *, batch: int, length: int) -> int:
    """Forward FLOPs of `models/text_encoder.TextEncoder`."""
    rows = batch * length
    per_layer = (
        _dense(rows, width, width) * 4
        + _attention(batch, length, length, width)
        + _dense(rows, width, mlp_ratio * width) * 2
    )
    return depth * per_layer


# -- counting from a program --------------------------------------------------------------------


def _eqn_flops(eqn) -> int:
    name = eqn.primitive.name
    if name == "dot_general":
        (lhs_contract, _), _ = eqn.params["dimension_numbers"]
        lhs = eqn.invars[0].aval.shape
        return 2 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lhs_contract)
    if name == "conv_general_dilated":
        rhs = eqn.invars[1].aval.shape
        out_feature_dim = eqn.params["dimension_numbers"].rhs_spec[0]
        per_output = math.prod(rhs) // rhs[out_feature_dim]  # taps * input channels per group
        return 2 * math.prod(eqn.outvars[0].aval.shape) * per_output
    return 0


def program_matmul_flops(jaxpr: Any) -> int:
    """FLOPs of the dot_general and conv_general_dilated equations of a (closed) jaxpr, recursing
    into sub-jaxprs (pjit, remat, custom_jvp); scan/while bodies are counted once."""
    from jax.extend import core as jex_core

    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    total = 0
    for eqn in jaxpr.eqns:
        total += _eqn_flops(eqn)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(sub, (jex_core.ClosedJaxpr, jex_core.Jaxpr)):
                    total += program_matmul_flops(sub)
    return total
