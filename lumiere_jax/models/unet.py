"""Pixel-space, text-conditioned T2I U-Net (Imagen / DeepFloyd-IF family), channels-last.

The network runs on video-shaped tensors [B, T, H, W, C] and processes every frame
independently (an image batch is [B, H, W, C], treated as T = 1). It exposes *hook
points* after each pretrained block and after each spatial resize; the STUNet
(`models/stunet.py`) inflates it by inserting temporal modules there, while the
U-Net's own parameters stay in one subtree that is exactly a T2I checkpoint.

Hook names (in call order):
  ``down_{level}_{i}``   after layer i (resnet [+ attention]) of encoder level `level`
  ``tdown_{level}``      after the spatial down-sampling from `level` to `level + 1`
  ``mid_{i}``            after mid-block layer i (i = 0, 1)
  ``up_{level}_{i}``     after layer i of decoder level `level`
  ``tup_{level}``        after the spatial up-sampling from `level + 1` to `level`
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from lumiere_jax import axes
from lumiere_jax.models import layers
from lumiere_jax.models import remat as remat_lib
from lumiere_jax.models.attention import ATTENTION_IMPLS, AttentionPooling, SpatialAttention
from lumiere_jax.models.resnet import ConvDownsample, ConvUpsample, ResnetBlock

Hook = Callable[[str, jax.Array], jax.Array]
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def to_dtype(name: str) -> Any:
    if name not in _DTYPES:
        raise ValueError(f"unknown dtype {name!r}; choose one of {sorted(_DTYPES)}")
    return _DTYPES[name]


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Architecture of the T2I U-Net. Defaults are an Imagen-style model; `if_preset`
    style settings (diffusers names in brackets) express DeepFloyd IF's U-Net."""

    in_channels: int = 3
    out_channels: int = 3  # 6 = epsilon + learned variance
    base_channels: int = 64  # [block_out_channels[0]]
    channel_mult: tuple[int, ...] = (1, 2, 4)  # block_out_channels = base * mult
    num_res_blocks: int = 2  # [layers_per_block] (an int)
    # per-level counts [layers_per_block as a list, IF-II]; () = num_res_blocks
    layers_per_level: tuple[int, ...] = ()
    attention_resolutions: tuple[int, ...] = (4,)  # down-sampling factors (2**level) with attention
    mid_attention: bool = True
    head_dim: int = 32  # [attention_head_dim]
    dropout: float = 0.0
    # Text conditioning. text_dim=None builds an unconditional model.
    text_dim: Optional[int] = 64  # width of incoming text embeddings [encoder_hid_dim]
    cross_attention_dim: Optional[int] = None  # project text to this width [text_proj]; None: no projection
    text_pooling: str = "mean"  # "mean" | "attention" [addition_embed_type="text"] | "none"
    text_pool_heads: int = 4  # [addition_embed_type_num_heads]
    text_pool_use_mask: bool = True  # IF pools over all tokens (False)
    text_norm: Optional[str] = "group_norm"  # norm on text before added K/V [cross_attention_norm]
    text_norm_groups: Optional[int] = None  # its groups [cross_attention_norm_num_groups: 32]; None = norm_groups
    # False: the U-Net ignores text_mask in attention and the text GroupNorm (IF: its pipelines pass
    # no encoder_attention_mask, padding tokens are attended to like the others).
    use_text_mask: bool = True
    # Noise-augmentation level of a super-resolution model's low-resolution input, embedded
    # like the timestep and added to it [class_embed_type="timestep"]; the call then takes aug_level.
    aug_embedding: bool = False
    only_cross_attention: bool = False
    # Embeddings and blocks.
    time_embed_dim: Optional[int] = None  # default 4 * base_channels
    time_embed_act: Optional[str] = None  # activation after time+text emb [time_embedding_act_fn]
    flip_sin_to_cos: bool = True
    freq_shift: float = 0.0
    act: str = "silu"  # [act_fn]
    norm_groups: int = 32
    norm_eps: float = 1e-5
    time_scale_shift: bool = True  # [resnet_time_scale_shift="scale_shift"]
    skip_time_act: bool = False  # [resnet_skip_time_act]
    resnet_output_scale: float = 1.0  # [resnet_out_scale_factor]
    mid_block_scale: float = 1.0  # the mid block's resnets' output scale [mid_block_scale_factor]
    resample: str = "conv"  # "conv" (strided conv / nearest+conv) | "resnet" [Resnet{Down,Up}sample]
    # Numerics and kernels (dtype: compute; param_dtype: parameters. Norms and softmax always run in
    # float32). Fields with compare=False do not change the network: a checkpoint resumes under any value.
    attention_impl: str = "xla"  # models/attention.py: auto | xla | cudnn | pallas_tpu | reference
    attention_min_length: int = dataclasses.field(default=128, compare=False)  # shorter: xla (attention.py)
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat: str = dataclasses.field(default="none", compare=False)  # models/remat.py; set as config.model.remat

    def __post_init__(self):
        if not self.channel_mult:
            raise ValueError("channel_mult must name at least one level")
        if self.resample not in ("conv", "resnet"):
            raise ValueError(f"resample must be 'conv' or 'resnet', got {self.resample!r}")
        if self.text_pooling not in ("mean", "attention", "none"):
            raise ValueError(f"text_pooling must be 'mean', 'attention' or 'none', got {self.text_pooling!r}")
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ValueError(f"attention_impl must be one of {ATTENTION_IMPLS}, got {self.attention_impl!r}")
        if self.layers_per_level and len(self.layers_per_level) != self.num_levels:
            raise ValueError(
                f"layers_per_level={self.layers_per_level} must name one count per level ({self.num_levels} levels)"
            )
        if any(n < 1 for n in self.layers_per_level) or self.num_res_blocks < 1:
            raise ValueError("every level needs at least one resnet layer")
        for c in self.channels:
            if c % self.norm_groups:
                raise ValueError(f"level width {c} not divisible by norm_groups={self.norm_groups}")
        to_dtype(self.dtype), to_dtype(self.param_dtype)
        layers.activation(self.act)
        remat_lib.check_policy(self.remat)
        if self.attention_min_length < 0:
            raise ValueError(f"attention_min_length must be >= 0, got {self.attention_min_length}")

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(self.base_channels * m for m in self.channel_mult)

    @property
    def num_levels(self) -> int:
        return len(self.channel_mult)

    @property
    def spatial_factor(self) -> int:
        """Total spatial down-sampling factor: H and W must be multiples of it."""
        return 2 ** (self.num_levels - 1)

    @property
    def temb_dim(self) -> int:
        return self.time_embed_dim or 4 * self.base_channels

    def res_blocks(self, level: int) -> int:
        """Resnet layers of encoder level `level` (its decoder level has one more)."""
        return self.layers_per_level[level] if self.layers_per_level else self.num_res_blocks

    def has_attention(self, level: int) -> bool:
        return 2**level in self.attention_resolutions

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        """Build from a (ml_collections) mapping; unknown keys raise."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown UNetConfig keys {unknown}; valid keys: {sorted(known)}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)


def check_image_size(cfg: UNetConfig, height: int, width: int) -> None:
    f = cfg.spatial_factor
    for name, n in (("height", height), ("width", width)):
        if n % f:
            ok = sorted({(n // f) * f or f, (n // f + 1) * f})
            raise ValueError(
                f"image {name}={n} is not divisible by 2**(num_levels-1)={f} "
                f"({cfg.num_levels} U-Net levels); use a multiple of {f}, e.g. {' or '.join(map(str, ok))}"
            )


class UNet(nn.Module):
    """T2I U-Net. x: [B, H, W, C] or [B, T, H, W, C]; t: [B] (or scalar) diffusion
    timesteps; text: [B, L, text_dim] embeddings (precomputed or from a text
    encoder) with text_mask [B, L]. Returns float32 of x's shape with out_channels."""

    config: UNetConfig

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        t: jax.Array,
        text: jax.Array | None = None,
        text_mask: jax.Array | None = None,
        *,
        train: bool = False,
        hook: Hook | None = None,
        aug_level: jax.Array | None = None,
    ) -> jax.Array:
        cfg = self.config
        dtype, pdt = to_dtype(cfg.dtype), to_dtype(cfg.param_dtype)
        kw = dict(dtype=dtype, param_dtype=pdt)
        hook = hook or (lambda name, h: h)
        image = x.ndim == 4
        if image:
            x = x[:, None]
        if x.ndim != 5:
            raise ValueError(f"expected x of shape [B, H, W, C] or [B, T, H, W, C], got {x.shape}")
        b, _, height, width, c = x.shape
        if c != cfg.in_channels:
            raise ValueError(f"input has {c} channels, the model expects in_channels={cfg.in_channels}")
        check_image_size(cfg, height, width)
        t = jnp.broadcast_to(jnp.asarray(t), (b,))
        if (text is None) != (cfg.text_dim is None):
            raise ValueError(
                "text embeddings must be given iff config.text_dim is set "
                f"(text_dim={cfg.text_dim}, text given: {text is not None})"
            )
        if text is not None and text.shape[-1] != cfg.text_dim:
            raise ValueError(f"text embeddings have width {text.shape[-1]}, config.text_dim={cfg.text_dim}")
        x = nn.with_logical_constraint(x.astype(dtype), axes.VIDEO)
        act = layers.activation(cfg.act)

        # Time (+ pooled text) embedding, [B, temb_dim].
        emb = layers.sinusoidal_embedding(
            t, cfg.base_channels, flip_sin_to_cos=cfg.flip_sin_to_cos, freq_shift=cfg.freq_shift
        )
        emb = layers.dense(cfg.temb_dim, name="time_embed_1", **kw)(emb.astype(dtype))
        emb = layers.dense(cfg.temb_dim, name="time_embed_2", **kw)(act(emb))
        if cfg.aug_embedding != (aug_level is not None):
            raise ValueError(
                "aug_level (the low-resolution input's noise-augmentation timestep) must be given "
                f"iff config.aug_embedding is set (aug_embedding={cfg.aug_embedding})"
            )
        if aug_level is not None:
            aug = jnp.broadcast_to(jnp.asarray(aug_level), (b,))
            aug = layers.sinusoidal_embedding(
                aug, cfg.base_channels, flip_sin_to_cos=cfg.flip_sin_to_cos, freq_shift=cfg.freq_shift
            )
            aug = layers.dense(cfg.temb_dim, name="aug_embed_1", **kw)(aug.astype(dtype))
            emb = emb + layers.dense(cfg.temb_dim, name="aug_embed_2", **kw)(act(aug))
        text_h = None
        if text is not None:
            text = text.astype(dtype)
            emb = emb + self._pooled_text(text, text_mask, kw)
            text_h = text
            if cfg.cross_attention_dim is not None:
                text_h = layers.dense(cfg.cross_attention_dim, name="text_proj", **kw)(text)
        if cfg.time_embed_act is not None:
            emb = layers.activation(cfg.time_embed_act)(emb)

        # Blocks rematerialised under config.remat (`deterministic` is passed positionally: static).
        resnet_cls = remat_lib.wrap(ResnetBlock, cfg.remat, static_argnums=(3,))
        attn_cls = remat_lib.wrap(SpatialAttention, cfg.remat)
        res = lambda ch, name, resample=None, scale=cfg.resnet_output_scale: resnet_cls(
            ch,
            cfg.norm_groups,
            cfg.norm_eps,
            cfg.act,
            cfg.time_scale_shift,
            cfg.skip_time_act,
            scale,
            cfg.dropout,
            resample,
            name=name,
            **kw,
        )
        attn = lambda name: attn_cls(
            cfg.head_dim,
            cfg.norm_groups,
            cfg.text_norm,
            cfg.only_cross_attention,
            text_norm_groups=cfg.text_norm_groups,
            attention_impl=cfg.attention_impl,
            attention_min_length=cfg.attention_min_length,
            name=name,
            **kw,
        )
        attn_mask = text_mask if cfg.use_text_mask else None
        det = not train

        h = layers.conv(cfg.base_channels, (3, 3), name="conv_in", **kw)(x)
        skips = [h]
        last = cfg.num_levels - 1
        for level, ch in enumerate(cfg.channels):
            for i in range(cfg.res_blocks(level)):
                h = res(ch, f"down_{level}_res_{i}")(h, emb, det)
                if cfg.has_attention(level):
                    h = attn(f"down_{level}_attn_{i}")(h, text_h, attn_mask)
                h = hook(f"down_{level}_{i}", h)
                skips.append(h)
            if level != last:
                if cfg.resample == "resnet":
                    h = res(ch, f"down_{level}_downsample", "down")(h, emb, det)
                else:
                    h = ConvDownsample(ch, name=f"down_{level}_downsample", **kw)(h)
                h = hook(f"tdown_{level}", h)
                skips.append(h)

        mid_scale = cfg.mid_block_scale
        h = res(cfg.channels[-1], "mid_res_0", scale=mid_scale)(h, emb, det)
        if cfg.mid_attention:
            h = attn("mid_attn")(h, text_h, attn_mask)
        h = hook("mid_0", h)
        h = res(cfg.channels[-1], "mid_res_1", scale=mid_scale)(h, emb, det)
        h = hook("mid_1", h)

        for level in reversed(range(cfg.num_levels)):
            ch = cfg.channels[level]
            for i in range(cfg.res_blocks(level) + 1):
                h = jnp.concatenate([h, skips.pop()], axis=-1)
                h = res(ch, f"up_{level}_res_{i}")(h, emb, det)
                if cfg.has_attention(level):
                    h = attn(f"up_{level}_attn_{i}")(h, text_h, attn_mask)
                h = hook(f"up_{level}_{i}", h)
            if level != 0:
                if cfg.resample == "resnet":
                    h = res(ch, f"up_{level}_upsample", "up")(h, emb, det)
                else:
                    h = ConvUpsample(ch, name=f"up_{level}_upsample", **kw)(h)
                h = hook(f"tup_{level - 1}", h)

        h = layers.GroupNorm(cfg.norm_groups, cfg.norm_eps, name="norm_out", act=cfg.act, **kw)(h)
        out = layers.conv(cfg.out_channels, (3, 3), name="conv_out", **kw)(h).astype(jnp.float32)
        return out[:, 0] if image else out

    def _pooled_text(self, text: jax.Array, mask: jax.Array | None, kw: dict) -> jax.Array:
        cfg = self.config
        if cfg.text_pooling == "none":
            return jnp.zeros((text.shape[0], cfg.temb_dim), text.dtype)
        if cfg.text_pooling == "attention":  # IF's TextTimeEmbedding
            p = layers.LayerNorm(name="text_pool_norm1", **kw)(text)
            p = AttentionPooling(cfg.text_pool_heads, cfg.text_pool_use_mask, name="text_pool", **kw)(p, mask)
            p = layers.dense(cfg.temb_dim, name="text_pool_proj", **kw)(p)
            return layers.LayerNorm(name="text_pool_norm2", **kw)(p)
        return layers.dense(cfg.temb_dim, name="text_pool_proj", **kw)(layers.masked_mean(text, mask))
