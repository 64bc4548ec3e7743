"""Datasets and input pipelines.

Modules are imported explicitly (e.g. ``from lumiere_jax.data import moving_shapes``);
this package imports nothing itself so that importing one module (and its optional
dependencies, such as tensorflow-datasets) never pulls in the others.

Record schema shared by every video source: ``{'video': uint8 [T, H, W, 3],
'caption': str, ...}`` (extra keys are dataset-specific metadata).
"""
