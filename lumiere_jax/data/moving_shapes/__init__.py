"""``moving_shapes``: the built-in synthetic text-to-video dataset.

Every clip shows one object on a black background, moving in a straight line at a
constant speed. The object is described by a (colour, shape, direction) triple and the
caption is exactly ``"a {color} {shape} moving {direction}"``.

* colours: pure RGB primaries / secondaries and white (channel values 0 or 255);
* shapes: ``square`` (side D), ``circle`` (diameter D), ``triangle`` (isosceles, apex
  up, base and height D), with D = min(H, W) / 4;
* directions: ``left`` / ``right`` / ``up`` / ``down`` (image coordinates, y down);
* motion: the centre travels ~L/2 over the clip (L = W for horizontal motion, H for
  vertical; x U(0.85, 1.15) jitter); the path is centred in the frame up to a random
  shift that keeps the object fully inside every frame (with a 0.5 px margin); the
  perpendicular coordinate is the frame centre +- U(-1/8, 1/8) of the frame.

Rendering is 4x4 super-sampled (anti-aliased). Edge pixels are the object colour scaled
by their coverage, so hue stays pure and colour is unambiguous.

Coordinates are "pixel-index" coordinates: the centre of pixel ``[i, j]`` is at
``(y, x) = (i, j)``; pixel ``i`` spans ``[i - 0.5, i + 0.5]``.

A fixed set of combinations, :data:`HELD_OUT`, never appears in ``train`` / ``test``
(compositional generalisation probe); every colour, shape and direction - and every
pair of them - still appears in train.

The numpy renderer (``render.py``: :class:`ClipSpec`, :func:`sample_spec`,
:func:`render_clip`, :func:`caption`, :func:`parse_caption`) needs no tensorflow-datasets. The
tfds builder (``builder.py``: :class:`MovingShapes`, ArrayRecord files readable with
``tfds.data_source`` without TensorFlow) and the :func:`build` / :func:`load_source` helpers are
defined when tensorflow-datasets is importable. This package exports both.

Builder configs: ``32px_16f`` (default; CPU quickstart) and ``64px_16f`` (super-
resolution target), each with 4096 train / 256 test / 256 held_out clips, seed 0;
:func:`get_config` overrides any field (``num_train=...``, ``seed=...``; overridden
counts / seed get a distinct config name). Building all three splits takes ~5 s
(32 px, ~4 MB) and ~15 s (64 px, ~7 MB) on 2 CPU cores.

Records (shared schema with the input pipeline)::

    {'video': uint8 [T, H, W, 3], 'caption': str, 'color': str, 'shape': str,
     'direction': str, 'start': float32 [2] (y, x), 'velocity': float32 [2] (vy, vx)
     px / frame, 'diameter': float32 scalar (px)}
"""

from lumiere_jax.data.moving_shapes.render import (  # noqa: F401
    ALL_COMBOS,
    COLORS,
    ClipSpec,
    Combo,
    DIRECTIONS,
    DIRECTION_VECTORS,
    EDGE_MARGIN,
    HELD_OUT,
    HELD_OUT_COMBOS,
    PERPENDICULAR_JITTER,
    SHAPES,
    SPEED_JITTER,
    SPLITS,
    SUPERSAMPLE,
    TRAIN_COMBOS,
    TRAVEL_FRACTION,
    caption,
    centroid_offset,
    coverage,
    decode_record,
    example_spec,
    make_record,
    object_diameter,
    parse_caption,
    render_clip,
    sample_spec,
    spec_from_record,
    split_combos,
)
from lumiere_jax.data.moving_shapes.builder import MovingShapesSource, tfds  # noqa: F401

if tfds is not None:
    from lumiere_jax.data.moving_shapes.builder import (  # noqa: F401
        DEFAULT_CONFIG,
        MovingShapes,
        MovingShapesConfig,
        build,
        builder,
        get_config,
        load_source,
    )
