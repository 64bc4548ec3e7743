"""bench/profile_cpu.py's pure parts: interval union and the HLO labels of a compiled program."""

import os
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import profile_cpu  # noqa: E402


def test_union_ns_merges_overlaps_and_keeps_gaps():
    assert profile_cpu.union_ns([]) == 0
    assert profile_cpu.union_ns([(0, 10), (5, 15), (20, 30)]) == 25  # [0, 15) + [20, 30)
    assert profile_cpu.union_ns([(20, 30), (0, 40)]) == 40  # a contained interval adds nothing


def test_hlo_ops_labels_convolutions_with_window_and_dims():
    def f(x, w):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sum(jax.nn.silu(y))

    x, w = jnp.ones((2, 8, 8, 4)), jnp.ones((3, 3, 4, 4))
    desc = profile_cpu.hlo_ops(jax.jit(jax.grad(f, argnums=1)).lower(x, w).compile().as_text())
    convs = [d for d in desc.values() if "conv[" in d]
    assert convs, desc
    # The weight gradient is a convolution whose window is the whole 8 x 8 image.
    assert any("conv[8x8 " in d for d in convs), convs
    cats = {profile_cpu.category(d) for d in convs}
    assert all(c.startswith("conv ") for c in cats), cats
    assert all("->" in d for d in desc.values())
