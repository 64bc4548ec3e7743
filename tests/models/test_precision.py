"""Mixed precision: bf16 compute with float32 parameters; norms and softmax in float32."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jex_core

from lumiere_jax import config as config_lib
from lumiere_jax.models import STUNet
from lumiere_jax.models.diffusion_model import DiffusionModel
from lumiere_jax.train import validation
from tests.helpers import ROOT


def bf16(cfg):
    return dataclasses.replace(cfg, unet=dataclasses.replace(cfg.unet, dtype="bfloat16"))


def equations(jaxpr):
    """Every equation of a jaxpr, recursing into sub-jaxprs (pjit, custom_jvp, remat, scan...)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(sub, jex_core.ClosedJaxpr):
                    yield from equations(sub.jaxpr)
                elif isinstance(sub, jex_core.Jaxpr):
                    yield from equations(sub)


def input_dtypes(jaxpr, primitive):
    return [
        v.aval.dtype
        for e in equations(jaxpr)
        if e.primitive.name == primitive
        for v in e.invars
        if hasattr(v.aval, "dtype")
    ]


def check_fp32_numerics(jaxpr):
    """Softmax (exp, reduce_max) and norm statistics (rsqrt) in float32; convolutions and matmuls
    in bfloat16 (so the model does compute in bf16)."""
    for prim in ("exp", "reduce_max", "rsqrt"):
        dts = input_dtypes(jaxpr, prim)
        assert dts, f"no {prim} in the program"
        assert set(dts) == {jnp.dtype(jnp.float32)}, (prim, set(dts))
    for prim in ("conv_general_dilated", "dot_general"):
        assert jnp.dtype(jnp.bfloat16) in set(input_dtypes(jaxpr, prim)), prim


def test_bf16_stunet_keeps_fp32_params_and_computes_norms_softmax_in_fp32(micro):
    cfg16 = bf16(micro.cfg)
    x, t, text, mask = micro.inputs
    # Parameters (and hence optimizer state and gradients) stay float32.
    abstract = jax.eval_shape(lambda: STUNet(cfg16).init(jax.random.PRNGKey(0), *micro.inputs)["params"])
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(abstract)} == {jnp.dtype(jnp.float32)}
    loss = lambda p: jnp.mean(STUNet(cfg16).apply({"params": p}, *micro.inputs) ** 2)
    grads = jax.eval_shape(jax.grad(loss), micro.params)
    assert {g.dtype for g in jax.tree_util.tree_leaves(grads)} == {jnp.dtype(jnp.float32)}
    jaxpr = jax.make_jaxpr(lambda p: STUNet(cfg16).apply({"params": p}, *micro.inputs))(micro.params)
    check_fp32_numerics(jaxpr.jaxpr)  # (the text encoder's test covers the "reference" kernel)
    # The bf16 model computes what the float32 one does, to bf16 accuracy.
    out32 = jax.jit(lambda p: STUNet(micro.cfg).apply({"params": p}, *micro.inputs))(micro.params)
    out16 = jax.jit(lambda p: STUNet(cfg16).apply({"params": p}, *micro.inputs))(micro.params)
    assert out16.dtype == jnp.float32
    rel = float(jnp.linalg.norm(out16 - out32) / jnp.linalg.norm(out32))
    assert rel < 0.05, rel


def test_text_encoder_follows_the_denoiser_dtype():
    config = config_lib.load_config_file(os.path.join(ROOT, "configs", "tiny.py"), "video")
    config.model.unet.dtype = "bfloat16"
    model = DiffusionModel(validation.validate(config))
    assert model.config.text_encoder.dtype == "bfloat16"
    assert model.config.text_encoder.param_dtype == "float32"
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(params)} == {jnp.dtype(jnp.float32)}
    ids = jnp.ones((2, 16), jnp.int32)
    mask = jnp.arange(16)[None] < jnp.array([[3], [16]])
    jaxpr = jax.make_jaxpr(model.encode_text)(params, ids, mask)
    for prim in ("exp", "rsqrt"):
        dts = input_dtypes(jaxpr.jaxpr, prim)
        assert dts and set(dts) == {jnp.dtype(jnp.float32)}, (prim, dts)
    assert jnp.dtype(jnp.bfloat16) in set(input_dtypes(jaxpr.jaxpr, "dot_general"))
    assert np.dtype(jax.eval_shape(model.encode_text, params, ids, mask).dtype) == np.float32
