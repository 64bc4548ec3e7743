"""flax's parameter shape check, without a trace per parameter.

On every `apply`, `flax.core.scope.Scope.param` checks that a stored parameter has the shape its
module asks for by tracing the module's initializer under `jax.eval_shape` (flax PR #530). That is
one small trace per parameter per trace of the model: 528 for the shipped base STUNet, 0.42 of the
1.09 s its sampling step takes to trace, and about 7 % of tests/models' time.

Inside `declared_shapes()` a stored parameter whose initializer follows the `init(key, shape, dtype)`
convention of `jax.nn.initializers` (all of this package's, and flax's Dense, Conv, Embed and norms,
whose shape is a tuple or a list) is checked against that `shape` argument directly, with no trace.
Anything else (a shape that does not match, an initializer called without a shape, a parameter that
is a tree, a parameter being created) takes flax's own path, so a wrong shape raises flax's
`ScopeParamShapeError` as before. Outside the context, and in every other thread or task (a
`contextvars.ContextVar`), flax behaves exactly as shipped.

`Scope.param` is wrapped once, at import; where the context variable is unset the wrapper calls
flax's method unchanged. Written against flax 0.12.8 (requirements.txt); tests/models/
test_param_check.py checks the outputs, the error and the absence of traces, so a flax release that
changes `Scope.param` shows up there.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

import numpy as np
from flax.core import meta, scope

_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("lumiere_declared_shapes", default=False)
_FLAX_PARAM = getattr(scope.Scope.param, "__wrapped_flax_param__", scope.Scope.param)


def _is_shape(s: Any) -> bool:
    return isinstance(s, (tuple, list)) and all(isinstance(d, (int, np.integer)) for d in s)


def _param(self, name, init_fn, *init_args, unbox: bool = True, **init_kwargs):
    if _ENABLED.get() and init_args and _is_shape(init_args[0]) and self.has_variable("params", name):
        value = self.get_variable("params", name)
        plain = meta.unbox(value)
        if hasattr(plain, "shape") and tuple(plain.shape) == tuple(int(d) for d in init_args[0]):
            self.reserve(name, "params")
            return plain if unbox else value
    return _FLAX_PARAM(self, name, init_fn, *init_args, unbox=unbox, **init_kwargs)


_param.__wrapped_flax_param__ = _FLAX_PARAM  # type: ignore[attr-defined]
scope.Scope.param = _param


@contextlib.contextmanager
def declared_shapes(enabled: bool = True) -> Iterator[None]:
    """Within this context (this thread or task), stored parameters are checked against the shape
    their initializer is called with instead of against a trace of the initializer
    (`enabled=False`: flax's own check again, inside an enclosing context)."""
    token = _ENABLED.set(bool(enabled))
    try:
        yield
    finally:
        _ENABLED.reset(token)
