"""Tiny model configurations and shared (session-scoped) compiled fixtures."""

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from lumiere_jax.models import STUNet, STUNetConfig, UNet, UNetConfig, inflate_params
from lumiere_jax.models.param_check import declared_shapes
from tests.helpers import random_params

FRAMES, SIZE, TEXT_LEN, TEXT_DIM = 8, 16, 5, 12


@pytest.fixture(autouse=True)
def _applied_as_the_package_applies_them():
    """Modules are applied here as `DiffusionModel` applies them, with `models.param_check`'s
    declared-shape check (flax's own check traces every initializer at every trace of a model:
    about 7 % of these tests' time); tests/models/test_param_check.py compares the two."""
    with declared_shapes():
        yield


# Imagen-style: strided-conv resampling, mean-pooled text, SiLU; N = 4.
IMAGEN_TINY = STUNetConfig(
    unet=UNetConfig(
        base_channels=16,
        channel_mult=(1, 2, 2),
        num_res_blocks=1,
        attention_resolutions=(2, 4),
        head_dim=8,
        norm_groups=4,
        text_dim=TEXT_DIM,
    ),
    temporal_head_dim=8,
)
# DeepFloyd-IF-style blocks: resnet resampling, text projection, attention pooling,
# GELU, skip_time_act, output scaling; one temporal down-sampling (N = 2), RoPE,
# two stacked temporal attention blocks, each also cross-attending to the text.
IF_TINY = STUNetConfig(
    unet=UNetConfig(
        base_channels=16,
        channel_mult=(1, 2, 2),
        num_res_blocks=1,
        attention_resolutions=(2, 4),
        head_dim=8,
        norm_groups=4,
        text_dim=TEXT_DIM,
        cross_attention_dim=16,
        text_pooling="attention",
        text_pool_heads=2,
        text_pool_use_mask=False,
        act="gelu",
        time_embed_act="gelu",
        skip_time_act=True,
        resnet_output_scale=1.414,
        resample="resnet",
        out_channels=6,
    ),
    num_temporal_downsamples=1,
    temporal_attention_depth=2,
    temporal_position_encoding="rope",
    temporal_head_dim=8,
    temporal_text="cross_attention",
)
CONFIGS = {"imagen": IMAGEN_TINY, "if": IF_TINY}


def random_inputs(seed: int, cfg: STUNetConfig, batch: int = 2, frames: int = FRAMES):
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    x = jax.random.normal(k[0], (batch, frames, SIZE, SIZE, cfg.unet.in_channels))
    t = jax.random.randint(k[1], (batch,), 0, 1000)
    text = jax.random.normal(k[2], (batch, TEXT_LEN, TEXT_DIM))
    lengths = jax.random.randint(k[3], (batch,), 1, TEXT_LEN + 1)
    mask = jnp.arange(TEXT_LEN)[None] < lengths[:, None]
    return x, t, text, mask


@dataclasses.dataclass
class Models:
    cfg: STUNetConfig
    t2i_params: dict
    params: dict  # inflated STUNet params {"spatial", "temporal"}
    t2i_apply: callable  # jitted (params, x[B,H,W,C], t, text, mask) -> out
    apply: callable  # jitted (params, video, t, text, mask) -> out


_CACHE = {}


def build_models(name: str) -> Models:
    if name not in _CACHE:
        cfg = CONFIGS[name]
        t2i = UNet(cfg.unet)
        x, t, text, mask = random_inputs(0, cfg)
        # random T2I weights (no compile of `init`, whose per-leaf random draws cost seconds; and no
        # zero-initialised projections that would hide a frame mixed into another)
        abstract = nn.meta.unbox(jax.eval_shape(t2i.init, jax.random.PRNGKey(1), x[:, 0], t, text, mask))
        t2i_params = random_params(abstract["params"], 1)
        params = inflate_params(cfg, t2i_params, jax.random.PRNGKey(2), num_frames=FRAMES, size=SIZE)
        t2i_apply = jax.jit(lambda p, *a: t2i.apply({"params": p}, *a))
        apply = jax.jit(lambda p, *a: STUNet(cfg).apply({"params": p}, *a))
        _CACHE[name] = Models(cfg, t2i_params, params, t2i_apply, apply)
    return _CACHE[name]


@pytest.fixture(scope="session", params=sorted(CONFIGS))
def models(request) -> Models:
    return build_models(request.param)


@pytest.fixture(scope="session")
def imagen_models() -> Models:
    return build_models("imagen")


# The smallest STUNet with every kind of block (conv inflation at level 0; spatial + text attention,
# temporal attention at level 1; one temporal down/up-sampling): for tests that compile gradients.
MICRO = STUNetConfig(
    unet=UNetConfig(
        base_channels=8,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_resolutions=(2,),
        head_dim=8,
        norm_groups=4,
        text_dim=8,
    ),
    num_temporal_downsamples=1,
    temporal_head_dim=8,
)


@dataclasses.dataclass
class Micro:
    cfg: STUNetConfig
    params: dict
    inputs: tuple  # (x [2, 4, 8, 8, 3], t, text [2, 5, 8], text_mask with one padded example)


@pytest.fixture(scope="session")
def micro() -> Micro:
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(k[0], (2, 4, 8, 8, 3))
    t = jnp.array([3, 700])
    text = jax.random.normal(k[1], (2, 5, 8))
    mask = jnp.arange(5)[None] < jnp.array([[2], [5]])

    # random parameters (the zero-initialised temporal projections of `init` would stop gradients
    # reaching most temporal parameters)
    abstract = nn.meta.unbox(jax.eval_shape(STUNet(MICRO).init, jax.random.PRNGKey(1), x, t, text, mask))
    params = random_params(abstract["params"], 0)
    return Micro(MICRO, params, (x, t, text, mask))


@functools.lru_cache(maxsize=None)
def loss_and_grad(cfg: STUNetConfig):
    """Jitted (params, x, t, text, mask) -> (mean(STUNet(cfg) output ** 2), its gradient): one
    compiled gradient of the micro STUNet for the tests that need one (seconds to compile)."""
    loss = lambda p, *inputs: jnp.mean(STUNet(cfg).apply({"params": p}, *inputs) ** 2)  # noqa: E731
    return jax.jit(jax.value_and_grad(loss))
