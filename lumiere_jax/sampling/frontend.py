"""Sampling front-ends: each application is a small class registered here by name.

A front-end is built once per `Engine` (`Generator.frontend(name)`), and checks then, once, that
the model is of a kind it can sample (`check`); calling it samples. The registered names are what
`Generator`'s methods, the CLI's `--task` and the task evaluation dispatch on.
"""

from __future__ import annotations

from typing import Any

FRONTENDS: dict[str, type["Frontend"]] = {}


class Frontend:
    """Base class: `name` (the registry key), `check(model_config)` (None, or why the model cannot
    be sampled by this front-end), and the `engine` it samples with."""

    name = ""

    def __init__(self, engine: Any):
        problem = self.check(engine.model.config)
        if problem:
            raise ValueError(problem)
        self.engine = engine

    @staticmethod
    def check(model_config: Any) -> str | None:
        return None


def register(cls: type[Frontend]) -> type[Frontend]:
    """Class decorator: `FRONTENDS[cls.name] = cls` (a name registered twice raises)."""
    if not cls.name or cls.name in FRONTENDS:
        raise ValueError(f"front-end name {cls.name!r} is empty or already registered")
    FRONTENDS[cls.name] = cls
    return cls
