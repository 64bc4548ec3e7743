"""Sampling: the one denoising loop (`loop`), a loaded model (`engine.Engine`), the applications
as registered front-ends (`text_to_video`, `super_resolution`, `conditional`, `sdedit`), the
`Generator` facade and `Cascade`, settings precedence (`settings`) and output writing (`outputs`).

    from lumiere_jax.sampling import Generator, Cascade, write_outputs

The names below are imported on first use, so `lumiere_jax.sampling.settings` (plain data) can be
read without importing jax.
"""

import importlib

_EXPORTS = {
    "Cascade": "cascade",
    "Generator": "generator",
    "write_training_samples": "generator",
    "Result": "outputs",
    "write_outputs": "outputs",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"lumiere_jax.sampling.{_EXPORTS[name]}"), name)
    try:  # a submodule: sampling.outputs, sampling.engine, ...
        return importlib.import_module(f"lumiere_jax.sampling.{name}")
    except ModuleNotFoundError:
        raise AttributeError(f"module 'lumiere_jax.sampling' has no attribute {name!r}") from None
