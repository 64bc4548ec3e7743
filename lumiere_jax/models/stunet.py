"""Space-Time U-Net (Lumiere §3.1, Fig. 4, App. B): a T2I U-Net inflated in time.

Parameters live in two subtrees:
  ``params["spatial"]``  -- exactly the T2I U-Net's parameters (pretrained; frozen
                            during video training; swappable for style interpolation),
  ``params["temporal"]`` -- the new modules, one per hook point of the U-Net:
      every level but the coarsest: a `ConvInflationBlock` after each pretrained layer;
      the coarsest level (last encoder/decoder level and the mid block): a stack of
      `TemporalAttentionBlock`s after each pretrained layer;
      after each of the first `num_temporal_downsamples` spatial down-samplings a
      `TemporalDownsample`, mirrored by a `TemporalUpsample` after the spatial
      up-sampling back to that level.

With freshly initialised temporal parameters, frames 0, N, 2N, ... of the output
equal the T2I U-Net applied to those frames alone (N = 2**num_temporal_downsamples).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from lumiere_jax import runtime
from lumiere_jax.models import layers
from lumiere_jax.models import remat as remat_lib
from lumiere_jax.models import temporal as tmp
from lumiere_jax.models.unet import UNet, UNetConfig, check_image_size, to_dtype

SPATIAL, TEMPORAL = "spatial", "temporal"
TIME_FILM_DIM = 64  # width of the timestep embedding the temporal FiLM reads (temporal_time_film)


@dataclasses.dataclass(frozen=True)
class STUNetConfig:
    unet: UNetConfig = UNetConfig()
    num_temporal_downsamples: Optional[int] = None  # None: after every spatial down-sampling
    temporal_kernel_size: int = 3
    temporal_attention_depth: int = 1  # blocks stacked after each coarsest-level layer
    temporal_head_dim: int = 32
    temporal_position_encoding: str = "sinusoidal"  # sinusoidal | rope | learned | none
    temporal_max_frames: int = 128  # for learned positions
    temporal_mlp_ratio: int = 4
    # How the temporal layers see the prompt: "none" (only through the frozen spatial features, as
    # in the paper) or "cross_attention" (each temporal attention block also attends to the text
    # tokens; zero-initialised output, so App. B's identity at init holds). docs/motion_text.md
    temporal_text: str = "none"
    # > 0: the text input carries this many extra feature channels after the encoder's text_dim ones
    # (fixed byte n-gram features, models/text_features.py); the spatial U-Net gets the first text_dim,
    # the temporal layers all of them. Needs temporal_text="cross_attention" or temporal_text_film.
    temporal_text_features: int = 0
    # What the temporal cross-attention's queries carry besides their token's content (sinusoidal, no
    # parameters): "none", "frame" (the frame index) or "space_time" (the frame index and the pixel's
    # row and column at that level). With "none" every frame and place gets the same text signal from
    # the same content, so what a direction word says (which frame holds the object where) cannot be
    # expressed there (docs/motion_text.md). "none" keeps exports trained before it.
    temporal_text_query_positions: str = "none"
    # True: every conv inflation block's temporal conv reads features scaled and shifted by the pooled
    # prompt (FiLM, zero-initialised: App. B's identity holds), so the prompt can pick which spatial
    # patterns move forward or backward in time at every level (docs/motion_text.md).
    temporal_text_film: bool = False
    # True: that FiLM also reads the timestep (a sinusoidal embedding of its own; the frozen spatial
    # U-Net's is not touched), so the temporal convs may act differently at high noise, where a
    # video's trajectory is decided, than at low noise. Needs temporal_text_film.
    temporal_time_film: bool = False

    def __post_init__(self):
        max_down = self.unet.num_levels - 1
        if self.num_temporal_downsamples is not None and not 0 <= self.num_temporal_downsamples <= max_down:
            raise ValueError(
                f"num_temporal_downsamples={self.num_temporal_downsamples} must be in [0, {max_down}] "
                f"(one per spatial down-sampling of the {self.unet.num_levels}-level U-Net)"
            )
        if self.temporal_position_encoding not in tmp.POSITION_ENCODINGS:
            raise ValueError(
                f"temporal_position_encoding must be one of {tmp.POSITION_ENCODINGS}, "
                f"got {self.temporal_position_encoding!r}"
            )
        if self.temporal_text not in tmp.TEMPORAL_TEXT:
            raise ValueError(f"temporal_text must be one of {tmp.TEMPORAL_TEXT}, got {self.temporal_text!r}")
        if self.temporal_text_features < 0 or (self.temporal_text_features and not self.reads_text):
            raise ValueError(
                f"temporal_text_features={self.temporal_text_features} must be >= 0 and needs "
                "temporal_text='cross_attention' or temporal_text_film=True (only the temporal "
                "layers read them)"
            )
        if self.temporal_text_query_positions not in tmp.TEXT_QUERY_POSITIONS:
            raise ValueError(
                f"temporal_text_query_positions must be one of {tmp.TEXT_QUERY_POSITIONS}, "
                f"got {self.temporal_text_query_positions!r}"
            )
        if self.temporal_text_query_positions != "none" and self.temporal_text == "none":
            raise ValueError(
                f"temporal_text_query_positions={self.temporal_text_query_positions!r} needs "
                "temporal_text='cross_attention' (it sets the text cross-attention's queries)"
            )
        if self.temporal_time_film and not self.temporal_text_film:
            raise ValueError("temporal_time_film=True needs temporal_text_film=True (the FiLM it feeds)")
        if self.temporal_kernel_size % 2 != 1:
            raise ValueError(f"temporal_kernel_size must be odd, got {self.temporal_kernel_size}")

    @property
    def reads_text(self) -> bool:
        """Whether the temporal layers read the prompt themselves (not only through spatial features)."""
        return self.temporal_text != "none" or self.temporal_text_film

    @property
    def temporal_downsamples(self) -> int:
        n = self.num_temporal_downsamples
        return self.unet.num_levels - 1 if n is None else n

    @property
    def temporal_factor(self) -> int:
        """N: total temporal down-sampling; frame counts must be multiples of it."""
        return 2**self.temporal_downsamples

    @classmethod
    def from_dict(cls, d: dict) -> "STUNetConfig":
        d = dict(d)
        unet = UNetConfig.from_dict(dict(d.pop("unet", {})))
        known = {f.name for f in dataclasses.fields(cls)} - {"unet"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown STUNetConfig keys {unknown}; valid keys: {sorted(known)}")
        return cls(unet=unet, **d)


def check_num_frames(cfg: STUNetConfig, num_frames: int) -> None:
    n = cfg.temporal_factor
    if num_frames < 1 or num_frames % n:
        ok = sorted({max(n, (num_frames // n) * n), (num_frames // n + 1) * n})
        raise ValueError(
            f"num_frames={num_frames} is not divisible by 2**num_temporal_downsamples={n} "
            f"({cfg.temporal_downsamples} temporal down-samplings); use a multiple of {n}, "
            f"e.g. {' or '.join(map(str, ok))}"
        )


def hook_plan(cfg: STUNetConfig) -> dict[str, str]:
    """Which temporal module sits at which U-Net hook point: name -> kind, kind in
    {"conv", "attention", "down", "up"}."""
    u = cfg.unet
    last = u.num_levels - 1
    plan = {}
    for level in range(u.num_levels):
        kind = "attention" if level == last else "conv"
        for i in range(u.res_blocks(level)):
            plan[f"down_{level}_{i}"] = kind
        for i in range(u.res_blocks(level) + 1):
            plan[f"up_{level}_{i}"] = kind
    plan["mid_0"] = plan["mid_1"] = "attention"
    for j in range(cfg.temporal_downsamples):
        plan[f"tdown_{j}"], plan[f"tup_{j}"] = "down", "up"
    return plan


class TemporalLayers(nn.Module):
    """All temporal modules of a STUNet, addressed by U-Net hook name."""

    config: STUNetConfig

    def setup(self):
        cfg, u = self.config, self.config.unet
        kw = dict(dtype=to_dtype(u.dtype), param_dtype=to_dtype(u.param_dtype))
        conv_block = remat_lib.wrap(tmp.ConvInflationBlock, u.remat)
        make = {
            "conv": lambda: conv_block(
                u.norm_groups, cfg.temporal_kernel_size, u.act, text_film=cfg.temporal_text_film, **kw
            ),
            "attention": lambda: tmp.TemporalAttentionStack(
                cfg.temporal_attention_depth,
                cfg.temporal_head_dim,
                cfg.temporal_position_encoding,
                cfg.temporal_max_frames,
                cfg.temporal_mlp_ratio,
                u.attention_impl,
                attention_min_length=u.attention_min_length,
                remat=u.remat,
                text_cross_attention=cfg.temporal_text == "cross_attention",
                text_query_positions=cfg.temporal_text_query_positions,
                **kw,
            ),
            "down": lambda: tmp.TemporalDownsample(cfg.temporal_kernel_size, **kw),
            "up": lambda: tmp.TemporalUpsample(cfg.temporal_kernel_size, **kw),
        }
        self.plan = hook_plan(cfg)
        self.blocks = {name: make[kind]() for name, kind in self.plan.items()}

    def __call__(
        self,
        name: str,
        h: jax.Array,
        text: jax.Array | None = None,
        text_mask: jax.Array | None = None,
        time: jax.Array | None = None,
    ) -> jax.Array:
        block = self.blocks.get(name)
        if block is None:
            return h
        kind = self.plan[name]
        if kind == "conv" and self.config.temporal_text_film:
            return block(h, text, text_mask, time)
        if kind == "attention" and self.config.temporal_text != "none":
            return block(h, text, text_mask)
        return block(h)


class STUNet(nn.Module):
    """x: [B, T, H, W, C] noisy video; t: [B]; text: [B, L, D]; text_mask: [B, L]."""

    config: STUNetConfig

    def setup(self):
        self.spatial = UNet(self.config.unet)
        self.temporal = TemporalLayers(self.config)

    def __call__(
        self,
        x: jax.Array,
        t: jax.Array,
        text: jax.Array | None = None,
        text_mask: jax.Array | None = None,
        *,
        train: bool = False,
        aug_level: jax.Array | None = None,
    ) -> jax.Array:
        if x.ndim != 5:
            raise ValueError(f"STUNet expects a video [B, T, H, W, C], got shape {x.shape}")
        check_num_frames(self.config, x.shape[1])
        check_image_size(self.config.unet, x.shape[2], x.shape[3])
        hook = self.temporal
        if self.config.reads_text:
            time = None
            if self.config.temporal_time_film:
                t_b = jnp.broadcast_to(jnp.asarray(t), (x.shape[0],))
                time = layers.sinusoidal_embedding(t_b, TIME_FILM_DIM)
            hook = lambda name, h: self.temporal(name, h, text, text_mask, time)
        spatial_text = text
        extra = self.config.temporal_text_features
        if extra:
            want = self.config.unet.text_dim + extra
            if text is None or text.shape[-1] != want:
                raise ValueError(
                    f"text must have text_dim + temporal_text_features = {want} channels, got "
                    f"{None if text is None else text.shape}"
                )
            spatial_text = text[..., : self.config.unet.text_dim]
        return self.spatial(x, t, spatial_text, text_mask, train=train, hook=hook, aug_level=aug_level)


def dummy_inputs(cfg: STUNetConfig, num_frames: int, size: int, batch: int = 1, text_len: int = 8):
    """Zero inputs of the right shapes, for `init` / `eval_shape`."""
    u = cfg.unet
    x = jnp.zeros((batch, num_frames, size, size, u.in_channels), jnp.float32)
    t = jnp.zeros((batch,), jnp.int32)
    if u.text_dim is None:
        return x, t, None, None
    dim = u.text_dim + cfg.temporal_text_features
    return x, t, jnp.zeros((batch, text_len, dim), jnp.float32), jnp.ones((batch, text_len), bool)


def dummy_kwargs(cfg: STUNetConfig) -> dict:
    """Keyword inputs some configurations need (the SSR's noise-augmentation level)."""
    return {"aug_level": jnp.zeros((1,), jnp.int32)} if cfg.unet.aug_embedding else {}


def inflate_params(cfg: STUNetConfig, t2i_params: Any, rng: jax.Array, *, num_frames: int, size: int) -> dict:
    """STUNet parameters from a trained T2I U-Net: the spatial subtree is `t2i_params`
    verbatim (same leaves, not copies), the temporal subtree freshly initialised
    (zero-init projections, identity-init temporal resampling)."""
    check_num_frames(cfg, num_frames)
    model = STUNet(cfg)
    inputs = dummy_inputs(cfg, num_frames, size)
    t2i_params = nn.meta.unbox(t2i_params)
    # Check shapes abstractly first: a mismatch fails before anything is compiled.
    want = _spatial_shapes(cfg, num_frames, size)
    got = jax.tree_util.tree_map(lambda a: (jnp.shape(a), jnp.asarray(a).dtype), t2i_params)
    if jax.tree_util.tree_structure(want) != jax.tree_util.tree_structure(got) or want != got:
        raise ValueError(
            "T2I parameters do not match the STUNet's spatial U-Net (config.unet): "
            "check that the checkpoint was trained with the same UNetConfig"
        )
    init = functools.partial(model.init, **dummy_kwargs(cfg))
    # Only the temporal subtree leaves the program, so XLA drops the spatial parameters' random
    # draws: the tiny IF-style test STUNet's inflation compiled in 12 s, now 4 s (same values).
    fresh = runtime.jit_once(lambda r, *i: nn.meta.unbox(init(r, *i))["params"][TEMPORAL])(rng, *inputs)
    return {SPATIAL: t2i_params, TEMPORAL: fresh}


@functools.lru_cache(maxsize=16)
def _spatial_shapes(cfg: STUNetConfig, num_frames: int, size: int) -> Any:
    """(shape, dtype) of every leaf of the STUNet's spatial subtree (its `init` traced once per
    config: the inflation's own program traces it again)."""
    model, inputs = STUNet(cfg), dummy_inputs(cfg, num_frames, size)
    init = functools.partial(model.init, **dummy_kwargs(cfg))
    abstract = nn.meta.unbox(jax.eval_shape(init, jax.random.PRNGKey(0), *inputs))["params"]
    return jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), abstract[SPATIAL])


def param_labels(params: dict) -> dict:
    """Tree of "spatial"/"temporal" labels, for `optax.multi_transform` freezing."""
    return {k: jax.tree_util.tree_map(lambda _: k, v) for k, v in params.items()}
