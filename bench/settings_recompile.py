r"""What a notebook pays when it changes a sampling setting: `Generator.load` of an export, then one
video per call with the default settings, again (nothing compiles), with other numbers of steps and
other guidance scales. The persistent compilation cache is off, so a call that compiles shows it;
a call that reuses the compiled step takes its steps' time alone (a 10-step call about 10/25 of the
second call). Prints one line per call.

    JAX_PLATFORMS=cpu .venv/bin/python bench/settings_recompile.py [--checkpoint=assets/moving_shapes_base]
"""

from __future__ import annotations

import argparse
import time

import jax


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="assets/moving_shapes_base")
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)
    from lumiere_jax import sampling

    start = time.perf_counter()
    gen = sampling.Generator.load(args.checkpoint)
    print(f"load: {time.perf_counter() - start:.2f} s")
    calls = [{}, {}, {"num_steps": 10, "guidance_scale": 5.0}, {"num_steps": 50, "guidance_scale": 2.0}]
    for kw in calls:
        start = time.perf_counter()
        gen.generate(["a green triangle moving right"], seed=1, progress=False, **kw)
        print(f"generate({kw or 'defaults'}): {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
