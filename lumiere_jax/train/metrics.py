"""Metrics to TensorBoard (tensorboardX: event files without TensorFlow) and the console."""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np


class MetricWriter:
    def __init__(self, workdir: str, enabled: bool = True):
        self._tb = None
        if enabled:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, float(v), step)

    def video(self, step: int, tag: str, videos: np.ndarray, fps: int = 8) -> None:
        """videos: uint8 [N, T, H, W, 3]."""
        if self._tb is not None:
            self._tb.add_video(tag, np.transpose(videos, (0, 1, 4, 2, 3)), step, fps=fps)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def format_metrics(step: int, values: Mapping[str, float]) -> str:
    parts = [f"{k}={v:.4g}" for k, v in values.items()]
    return f"step {step}: " + " ".join(parts)
