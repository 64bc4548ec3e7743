"""Where a run's data lives on disk."""

from __future__ import annotations

import os

import ml_collections


def data_dir(config: ml_collections.ConfigDict) -> str:
    """config.data.data_dir, else $LUMIERE_DATA_DIR, else ~/lumiere_data (user-expanded)."""
    return os.path.expanduser(config.data.data_dir or os.environ.get("LUMIERE_DATA_DIR", "~/lumiere_data"))
