r"""Minimal reproduction of the XLA SPMD-partitioner bug that `models/layers.Conv` works around.

  python tools/repro_spmd_conv_grad.py                 # expect: MISMATCH (exit 1)
  python tools/repro_spmd_conv_grad.py --constrain     # expect: match (exit 0)

On a data x fsdp x tensor = 2 x 2 x 2 mesh, with the batch split over (data, fsdp), the input's
channels split over tensor, and a 3x3 convolution kernel split as (in: fsdp, out: tensor), the
gradient with respect to the convolution's input comes out wrong when a channel-group reduction
(what GroupNorm does) precedes the convolution: in the partitioned HLO the backward convolution runs
on a collective-permuted batch shard (devices 2 <-> 4 and 3 <-> 5 swap their batch rows) and the
result is never permuted back. The loss is right. Seen with jax/jaxlib 0.10.2 on XLA:CPU with both
partitioners (Shardy, and GSPMD via JAX_USE_SHARDY_PARTITIONER=false); the permutation is chosen
by the partitioner, before any backend code, so check accelerators with this script too (it uses
the first 8 devices of the default backend, or 8 host CPU devices when there are fewer).

`--constrain` adds what `layers.Conv` does: a sharding constraint on the convolution's input
(batch over data x fsdp, channels unsplit); the gradients then match.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--constrain", action="store_true", help="constrain the convolution input (the workaround)")
    args = p.parse_args(argv)
    if "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

    devices = jax.devices()
    if len(devices) < 8:
        devices = jax.devices("cpu")
    if len(devices) < 8:
        print(f"needs 8 devices, found {len(devices)}")
        return 2
    mesh = Mesh(np.asarray(devices[:8]).reshape(2, 2, 2), ("data", "fsdp", "tensor"), axis_types=(AxisType.Auto,) * 3)
    batch, size, cin, cout, groups = 4, 8, 16, 8, 4
    kx, kw, kt = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(kx, (batch, size, size, cin))
    w = jax.random.normal(kw, (3, 3, cin, cout)) * 0.2
    target = jax.random.normal(kt, (batch, size, size, cout))
    x_sharding = NamedSharding(mesh, P(("data", "fsdp"), None, None, "tensor"))
    w_sharding = NamedSharding(mesh, P(None, None, "fsdp", "tensor"))

    def loss(x, w):
        g = x.reshape(batch, size, size, groups, cin // groups)
        h = (g * g.sum(axis=-1, keepdims=True)).reshape(x.shape)  # a per-group reduction
        if args.constrain:
            h = jax.lax.with_sharding_constraint(h, NamedSharding(mesh, P(("data", "fsdp"))))
        y = jax.lax.conv_general_dilated(h, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.mean((y - target) ** 2)

    ref_loss, ref_grad = jax.jit(jax.value_and_grad(loss))(x, w)
    sharded = jax.jit(jax.value_and_grad(loss), in_shardings=(x_sharding, w_sharding))
    got_loss, got_grad = sharded(jax.device_put(x, x_sharding), jax.device_put(w, w_sharding))
    err = float(jnp.abs(got_grad - ref_grad).max() / jnp.abs(ref_grad).max())
    print(
        f"jax {jax.__version__} on {devices[0].platform}; loss {float(ref_loss):.6f} (one device) vs "
        f"{float(got_loss):.6f} (2x2x2 mesh); input gradient max |diff| / max |grad| = {err:.3g}"
    )
    ok = err < 1e-5
    print("match" if ok else "MISMATCH: the partitioned input gradient is wrong")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
