"""The trained object: text encoder + null ("empty prompt") embedding + denoiser.

Parameters are a plain dict, so stages can copy, freeze and swap parts:
  ``text_encoder`` -- `TextEncoder` params, or a pretrained `T5Encoder`'s (frozen; model.text_source
                      "t5"); absent when text embeddings are precomputed,
  ``null_text``    -- [L, D] learned null embedding (absent for a zero null embedding),
  ``denoiser``     -- `UNet` params (image model) or `STUNet` params (video model:
                      ``{"spatial": <UNet params>, "temporal": ...}``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from lumiere_jax import config as config_lib
from lumiere_jax.diffusion import conditioning as conditioning_lib
from lumiere_jax.diffusion import guidance
from lumiere_jax.models.stunet import (
    SPATIAL,
    TEMPORAL,
    STUNet,
    STUNetConfig,
    dummy_inputs,
    dummy_kwargs,
    inflate_params,
)
from lumiere_jax.models.param_check import declared_shapes
from lumiere_jax.models.t5 import T5Config, T5Encoder
from lumiere_jax.models.text_encoder import TextEncoder, TextEncoderConfig
from lumiere_jax.models.text_features import byte_ngram_features
from lumiere_jax.models.unet import UNet

KINDS = ("image", "video")
TEXT_SOURCES = ("encoder", "t5", "precomputed")
T5_PATH_KEYS = config_lib.T5_PATH_KEYS
NULL_TEXT = ("learned", "zero")
# Extra input channels concatenated to the noisy sample, per kind of conditioning (diffusion/conditioning.py).
CONDITIONINGS = {name: c.channels for name, c in conditioning_lib.CONDITIONINGS.items()}


def _from_mapping(cls, d: Mapping[str, Any], what: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {what} keys {unknown}; valid keys: {sorted(known)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclasses.dataclass(frozen=True)
class DiffusionModelConfig:
    kind: str = "video"  # "image": T2I UNet on [B,H,W,C]; "video": STUNet
    stunet: STUNetConfig = STUNetConfig()  # for "image" only .unet is used
    # TextEncoderConfig: the small trainable encoder; T5Config: a pretrained, frozen T5; None: precomputed
    text_encoder: TextEncoderConfig | T5Config | None = TextEncoderConfig()
    null_text: str = "learned"  # "learned" | "zero"
    num_frames: int = 16
    resolution: int = 32
    precomputed_text_length: int = 77  # tokens per precomputed embedding (T5 in IF: 77)
    conditioning: str = "none"  # see CONDITIONINGS
    low_resolution: int = 0  # "low_res": the input resolution (< resolution)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"model kind must be one of {KINDS}, got {self.kind!r}")
        if self.null_text not in NULL_TEXT:
            raise ValueError(f"null_text must be one of {NULL_TEXT}, got {self.null_text!r}")
        if self.text_encoder is not None and self.text_encoder.width != self.stunet.unet.text_dim:
            what = "t5.d_model" if isinstance(self.text_encoder, T5Config) else "text_encoder.width"
            raise ValueError(f"{what}={self.text_encoder.width} must equal unet.text_dim={self.stunet.unet.text_dim}")
        if self.stunet.unet.text_dim is None:
            raise ValueError("the diffusion model is text-conditioned: set unet.text_dim")
        if self.stunet.temporal_text_features and self.kind != "video":
            raise ValueError(
                f"temporal_text_features are read by a video model's temporal layers; this is an {self.kind} model"
            )
        if self.stunet.temporal_text_features and not isinstance(self.text_encoder, TextEncoderConfig):
            raise ValueError(
                "temporal_text_features (byte n-gram features) need the byte text encoder "
                "(model.text_source='encoder'); a T5 already keeps words distinct"
            )
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {sorted(CONDITIONINGS)}, got {self.conditioning!r}")
        u = self.stunet.unet
        if u.in_channels != self.sample_channels + self.cond_channels or self.sample_channels < 1:
            raise ValueError(
                f"conditioning={self.conditioning!r} concatenates {self.cond_channels} channels to the noisy "
                f"sample: unet.in_channels={u.in_channels} must be 3 + {self.cond_channels} = "
                f"{3 + self.cond_channels}"
            )
        if self.conditioning == "low_res":
            if not 0 < self.low_resolution < self.resolution:
                raise ValueError(
                    f"a super-resolution model needs 0 < low_resolution < resolution, got "
                    f"low_resolution={self.low_resolution}, resolution={self.resolution}"
                )
            if not u.aug_embedding:
                raise ValueError(
                    "a super-resolution model (conditioning='low_res') needs unet.aug_embedding=True "
                    "(the noise-augmentation level of its low-resolution input)"
                )
        elif self.low_resolution:
            raise ValueError(f"low_resolution={self.low_resolution} is only used with conditioning='low_res'")

    @property
    def cond_channels(self) -> int:
        return CONDITIONINGS[self.conditioning]

    @property
    def sample_channels(self) -> int:
        """Channels of the generated sample (the U-Net input minus the conditioning)."""
        return self.stunet.unet.out_channels if self.stunet.unet.out_channels <= 3 else 3

    @property
    def text_dim(self) -> int:
        """Channels of the text input the denoiser takes: the encoder's, plus the temporal-only features."""
        return self.stunet.unet.text_dim + self.stunet.temporal_text_features

    @property
    def text_length(self) -> int:
        return self.text_encoder.max_length if self.text_encoder else self.precomputed_text_length

    def sample_shape(self, batch: int) -> tuple[int, ...]:
        c = self.sample_channels
        r = self.resolution
        return (batch, r, r, c) if self.kind == "image" else (batch, self.num_frames, r, r, c)

    def replace(self, **kw) -> "DiffusionModelConfig":
        return dataclasses.replace(self, **kw)

    @classmethod
    def from_config(cls, model: Mapping[str, Any], kind: str) -> "DiffusionModelConfig":
        """From the `config.model` section: keys unet, temporal, text_source ("encoder" | "t5" |
        "precomputed"), text_encoder, t5, null_text, num_frames, resolution. Unknown keys raise."""
        model = dict(model)
        unet = dict(model.pop("unet", {}))
        temporal = dict(model.pop("temporal", {}))
        text = dict(model.pop("text_encoder", {}))
        t5 = {k: v for k, v in dict(model.pop("t5", {})).items() if k not in T5_PATH_KEYS}
        source = model.pop("text_source", "encoder")
        if source not in TEXT_SOURCES:
            raise ValueError(f"model.text_source must be one of {TEXT_SOURCES}, got {source!r}")
        unet["remat"] = model.pop("remat", unet.get("remat", "none"))
        # The text encoder computes in the denoiser's dtype unless its section says otherwise.
        for key in ("dtype", "param_dtype"):
            if key in unet:
                text.setdefault(key, unet[key])
        stunet = STUNetConfig.from_dict({"unet": unet, **temporal})
        text_cfg = None
        if source == "encoder":
            text_cfg = _from_mapping(TextEncoderConfig, text, "text_encoder")
        elif source == "t5":
            text_cfg = _from_mapping(T5Config, t5, "t5")
        allowed = {"null_text", "num_frames", "resolution", "conditioning", "low_resolution"}
        unknown = sorted(set(model) - allowed)
        if unknown:
            raise ValueError(
                f"unknown model keys {unknown}; valid keys: "
                f"{sorted(allowed | {'unet', 'temporal', 'text_source', 'text_encoder', 't5', 'remat'})}"
            )
        if source == "precomputed":
            model["precomputed_text_length"] = int(text.get("max_length", 77))
        return cls(kind=kind, stunet=stunet, text_encoder=text_cfg, **model)


@functools.lru_cache(maxsize=32)
def _abstract_init(config: DiffusionModelConfig, text_encoder: bool) -> dict:
    """`DiffusionModel.abstract_params`' cache: the boxed tree (unboxing gives the plain one) of plain
    shapes and dtypes (no sharding the caller's context may have put in them)."""
    tree = jax.eval_shape(
        lambda r: DiffusionModel(config).init(r, boxed=True, text_encoder=text_encoder), jax.random.PRNGKey(0)
    )
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), tree)


class DiffusionModel:
    """Pure functions over the parameter dict described in the module docstring."""

    def __init__(self, config: DiffusionModelConfig):
        self.config = config
        text = config.text_encoder
        self.text_module = (
            None if text is None else (T5Encoder(text) if isinstance(text, T5Config) else TextEncoder(text))
        )
        self.denoiser = UNet(config.stunet.unet) if config.kind == "image" else STUNet(config.stunet)

    # -- parameters --------------------------------------------------------------------
    @property
    def pretrained_text(self) -> bool:
        """The text encoder is a pretrained T5: loaded from a checkpoint, never trained by default."""
        return isinstance(self.config.text_encoder, T5Config)

    def init(self, rng: jax.Array, *, boxed: bool = False, text_encoder: bool = True) -> dict:
        """Fresh parameters. With `boxed`, leaves keep their logical-axis metadata
        (for `nn.get_partition_spec` on `jax.eval_shape(model.init, ...)`). `text_encoder=False`
        leaves out the text encoder's (a pretrained T5's come from its checkpoint)."""
        cfg = self.config
        k_text, k_den = jax.random.split(rng)
        unbox = (lambda v: v) if boxed else nn.meta.unbox
        params = {}
        length, dim = cfg.text_length, cfg.stunet.unet.text_dim
        if self.text_module is not None and text_encoder:
            ids = jnp.zeros((1, length), jnp.int32)
            params["text_encoder"] = unbox(self.text_module.init(k_text, ids, ids > 0))["params"]
        if cfg.null_text == "learned":
            params["null_text"] = unbox(guidance.NullTextEmbedding(length, dim).init(k_text))["params"]["embedding"]
        x, t, text, mask = dummy_inputs(cfg.stunet, cfg.num_frames, cfg.resolution, text_len=length)
        if cfg.kind == "image":
            x = x[:, 0]
        params["denoiser"] = unbox(self.denoiser.init(k_den, x, t, text, mask, **dummy_kwargs(cfg.stunet)))["params"]
        return params

    def abstract_params(self, *, boxed: bool = False, text_encoder: bool = True) -> dict:
        """`jax.eval_shape` of `init` (shapes and dtypes; with `boxed`, the logical axes too), traced
        once per model config in a process: a run's set-up asks for it several times (trainable labels,
        state shardings), and each trace of a network's `init` takes seconds at full size."""
        tree = _abstract_init(self.config, text_encoder)
        return jax.tree_util.tree_map(lambda a: a, tree) if boxed else nn.meta.unbox(tree)  # a copy either way

    def inflate(self, t2i_params: dict, rng: jax.Array) -> dict:
        """Video-model parameters from a trained image model's: text encoder and null
        embedding copied, the U-Net becomes the STUNet's spatial subtree verbatim."""
        if self.config.kind != "video":
            raise ValueError("inflate() builds a video model; this model is an image model")
        needed = {"denoiser"} | ({"text_encoder"} if self.text_module else set())
        missing = sorted(needed - set(t2i_params))
        if missing:
            raise ValueError(f"T2I parameters lack {missing}")
        out = {k: v for k, v in t2i_params.items() if k != "denoiser"}
        if self.config.null_text == "learned" and "null_text" not in out:
            out["null_text"] = jnp.zeros((self.config.text_length, self.config.stunet.unet.text_dim))
        out["denoiser"] = inflate_params(
            self.config.stunet,
            t2i_params["denoiser"],
            rng,
            num_frames=self.config.num_frames,
            size=self.config.resolution,
        )
        return out

    def trainable_labels(self, params: dict, train_spatial: bool, patterns: Sequence[str] = ()) -> dict:
        """ "train"/"frozen" per leaf. With `patterns` (regexes matched at the start of the leaf's
        "/"-joined path, e.g. "denoiser/temporal/", "denoiser/spatial/conv_in/"), exactly the
        matching leaves train. Otherwise the stage default: an image model trains everything; a video
        model its temporal subtree, plus the input convolution of a masked (7-channel) model, where
        the new, zero-initialised conditioning channels enter (an SSR's input convolution was
        trained with its conditioning at the image stage and stays frozen); with `train_spatial`
        everything (full fine-tuning). A pretrained T5 text encoder stays frozen in every stage
        (only `patterns` can train it)."""
        compiled = [re.compile(p) for p in patterns]
        used = set()

        def label(path, _):
            keys = [str(getattr(p, "key", getattr(p, "idx", p))) for p in path]
            if compiled:
                hits = {i for i, c in enumerate(compiled) if c.match("/".join(keys))}
                used.update(hits)
                return "train" if hits else "frozen"
            if keys[0] == "text_encoder" and self.pretrained_text:
                return "frozen"
            if self.config.kind == "image" or train_spatial:
                return "train"
            if keys[:2] == ["denoiser", TEMPORAL]:
                return "train"
            if self.config.conditioning == "masked" and keys[:3] == ["denoiser", SPATIAL, "conv_in"]:
                return "train"
            return "frozen"

        labels = jax.tree_util.tree_map_with_path(label, params)
        unused = [p for i, p in enumerate(patterns) if i not in used]
        if unused:
            raise ValueError(
                f"trainable patterns {unused} match no parameter (paths look like "
                f"'denoiser/{SPATIAL}/conv_in/kernel', 'denoiser/{TEMPORAL}/...', 'text_encoder/...')"
            )
        return labels

    # -- computation -------------------------------------------------------------------
    def encode_text(self, params: dict, ids: jax.Array, mask: jax.Array) -> jax.Array:
        """[B, L, text_dim]: the encoder's output, followed by the fixed byte n-gram features when the
        temporal layers read them (`STUNetConfig.temporal_text_features`)."""
        if self.text_module is None:
            raise ValueError("this model takes precomputed text embeddings (text_encoder=None)")
        with declared_shapes():
            emb = self.text_module.apply({"params": params["text_encoder"]}, ids, mask)
        extra = self.config.stunet.temporal_text_features
        if extra:
            feats = byte_ngram_features(ids, mask, extra, self.config.text_encoder.vocab_size)
            emb = jnp.concatenate([emb, feats.astype(emb.dtype)], axis=-1)
        return emb

    def null_embedding(self, params: dict) -> jax.Array | None:
        """The learned null embedding [L, text_dim] (zeros in the temporal-only feature channels), or
        None for a zero null."""
        null = params.get("null_text") if self.config.null_text == "learned" else None
        extra = self.config.stunet.temporal_text_features
        if null is not None and extra:
            null = jnp.concatenate([null, jnp.zeros(null.shape[:-1] + (extra,), null.dtype)], axis=-1)
        return null

    def null_text(self, params: dict, batch: int) -> tuple[jax.Array, jax.Array]:
        return guidance.null_text(batch, self.config.text_length, self.config.text_dim, self.null_embedding(params))

    def denoise(
        self,
        params: dict,
        x: jax.Array,
        t: jax.Array,
        text: jax.Array,
        mask: jax.Array,
        *,
        cond: jax.Array | None = None,
        aug_level: jax.Array | None = None,
        train: bool = False,
        rng: jax.Array | None = None,
    ) -> jax.Array:
        """Model output for noisy `x` at timesteps `t`. A conditional model also takes `cond`
        (channels concatenated to x: for "low_res", the up-sampled, noise-augmented low-resolution
        input) and `aug_level` (its augmentation timestep, [B])."""
        cfg = self.config
        if (cond is None) != (cfg.cond_channels == 0):
            raise ValueError(
                f"conditioning={cfg.conditioning!r}: cond must be {'given' if cfg.cond_channels else 'None'}"
            )
        if cond is not None:
            if cond.shape[:-1] != x.shape[:-1] or cond.shape[-1] != cfg.cond_channels:
                raise ValueError(
                    f"cond of shape {cond.shape} does not fit x of shape {x.shape} "
                    f"({cfg.cond_channels} conditioning channels)"
                )
            x = jnp.concatenate([x, cond.astype(x.dtype)], axis=-1)
        kw = {"aug_level": aug_level} if aug_level is not None else {}
        rngs = {"dropout": rng} if rng is not None else None
        with declared_shapes():
            return self.denoiser.apply({"params": params["denoiser"]}, x, t, text, mask, train=train, rngs=rngs, **kw)


def expand_input_channels(params: dict, in_channels: int) -> dict:
    """A conditional model's parameters from an unconditional one's (Lumiere §4.2): the first
    convolution's kernel [kh, kw, c, out] gets zero weights for the new input channels c..in_channels,
    so at conversion the model computes exactly what the unconditional one did, whatever the
    conditioning. Works for image (U-Net) and video (STUNet) models; other leaves are shared."""
    den = params["denoiser"]
    unet = den.get(SPATIAL, den)
    kernel = jnp.asarray(unet["conv_in"]["kernel"])
    have = kernel.shape[-2]
    if in_channels < have:
        raise ValueError(f"cannot shrink the input convolution from {have} to {in_channels} channels")
    pad = [(0, 0)] * (kernel.ndim - 2) + [(0, in_channels - have), (0, 0)]
    new_unet = {**unet, "conv_in": {**unet["conv_in"], "kernel": jnp.pad(kernel, pad)}}
    new_den = {**den, SPATIAL: new_unet} if SPATIAL in den else new_unet
    return {**params, "denoiser": new_den}


def spatial_params(params: dict) -> dict:
    """The T2I U-Net parameters inside a video model's parameters."""
    return params["denoiser"][SPATIAL]
