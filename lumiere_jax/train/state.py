"""Train state: everything a checkpoint must hold for an exact resume.

Randomness is a pure function of (seed, step) and the data order of (seed, step),
so step, parameters, optimiser state and EMA are the whole state.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: number of updates applied
    params: Any
    opt_state: Any
    ema_params: Any


def create(params: Any, tx) -> TrainState:
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        ema_params=jax.tree_util.tree_map(jnp.copy, params),
    )
