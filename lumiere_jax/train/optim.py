"""AdamW with linear warm-up + cosine decay, global-norm clipping, freezing, and per-parameter
learning-rate multipliers."""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import jax
import optax


def learning_rate_schedule(optim: Mapping[str, Any], num_steps: int) -> optax.Schedule:
    warmup = int(optim["warmup_steps"])
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=float(optim["lr"]),
        warmup_steps=warmup,
        decay_steps=max(num_steps, warmup + 1),
        end_value=float(optim["lr"]) * float(optim["end_lr_factor"]),
    )


def parse_multipliers(specs: Sequence[str]) -> list[tuple[re.Pattern, float]]:
    """("regex=multiplier", ...) -> [(compiled regex, float)]; bad entries raise naming them."""
    out = []
    for spec in specs:
        pattern, sep, value = str(spec).rpartition("=")
        try:
            mult = float(value)
        except ValueError:
            mult = None
        if not sep or not pattern or mult is None or mult < 0:
            raise ValueError(
                f"config.optim.lr_multipliers entry {spec!r} must be 'regex=multiplier' with a "
                "multiplier >= 0, e.g. 'denoiser/spatial/conv_in/=10'"
            )
        out.append((re.compile(pattern), mult))
    return out


def multiplier_tree(params: Any, specs: Sequence[str]) -> Any | None:
    """Per-leaf learning-rate multipliers: the first pattern (matched at the start of the leaf's
    "/"-joined path) that matches sets it, else 1. None when `specs` is empty. A pattern that matches
    no parameter raises."""
    rules = parse_multipliers(specs)
    if not rules:
        return None
    used = set()

    def mult(path, _):
        name = "/".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)
        for i, (rx, m) in enumerate(rules):
            if rx.match(name):
                used.add(i)
                return m
        return 1.0

    tree = jax.tree_util.tree_map_with_path(mult, params)
    unused = [specs[i] for i in range(len(rules)) if i not in used]
    if unused:
        raise ValueError(
            f"config.optim.lr_multipliers {unused} match no parameter (paths look like "
            "'denoiser/spatial/conv_in/kernel')"
        )
    return tree


def make_optimizer(
    optim: Mapping[str, Any], num_steps: int, labels: Any, multipliers: Any | None = None
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """`labels`: tree of "train"/"frozen"; frozen leaves get zero updates and no
    optimiser state (`optax.multi_transform`). `multipliers` (a tree like the parameters', from
    `multiplier_tree`): each leaf's update is scaled by its multiplier (its learning rate times it)."""
    schedule = learning_rate_schedule(optim, num_steps)
    adamw = optax.chain(
        optax.clip_by_global_norm(float(optim["grad_clip"])),
        optax.adamw(
            schedule,
            b1=float(optim["b1"]),
            b2=float(optim["b2"]),
            eps=float(optim["eps"]),
            weight_decay=float(optim["weight_decay"]),
        ),
    )
    tx = optax.multi_transform({"train": adamw, "frozen": optax.set_to_zero()}, labels)
    if multipliers is not None:
        scale = optax.stateless(
            lambda updates, params=None: jax.tree_util.tree_map(
                lambda u, m: u * m if m != 1.0 else u, updates, multipliers
            )
        )
        tx = optax.chain(tx, scale)
    return tx, schedule
