"""AdamW with linear warm-up + cosine decay, global-norm clipping, and freezing."""
from __future__ import annotations

from typing import Any, Mapping

import optax


def learning_rate_schedule(optim: Mapping[str, Any], num_steps: int) -> optax.Schedule:
    warmup = int(optim["warmup_steps"])
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=float(optim["lr"]), warmup_steps=warmup,
        decay_steps=max(num_steps, warmup + 1), end_value=float(optim["lr"]) * float(optim["end_lr_factor"]))


def make_optimizer(optim: Mapping[str, Any], num_steps: int, labels: Any) -> tuple[optax.GradientTransformation,
                                                                                     optax.Schedule]:
    """`labels`: tree of "train"/"frozen"; frozen leaves get zero updates and no
    optimiser state (`optax.multi_transform`)."""
    schedule = learning_rate_schedule(optim, num_steps)
    adamw = optax.chain(
        optax.clip_by_global_norm(float(optim["grad_clip"])),
        optax.adamw(schedule, b1=float(optim["b1"]), b2=float(optim["b2"]), eps=float(optim["eps"]),
                    weight_decay=float(optim["weight_decay"])))
    return optax.multi_transform({"train": adamw, "frozen": optax.set_to_zero()}, labels), schedule
