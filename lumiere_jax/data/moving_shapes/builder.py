"""The moving_shapes tfds builder (ArrayRecord files, read with `tfds.data_source` without
TensorFlow) and the random-access source over a built split; defined when tensorflow-datasets is
importable. The dataset as a whole: the package docstring (`lumiere_jax.data.moving_shapes`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

import numpy as np

from lumiere_jax.data.moving_shapes.render import (
    HELD_OUT,
    SPLITS,
    decode_record,
    example_spec,
    make_record,
)

try:  # The builder needs tfds; the renderer does not.
    import tensorflow_datasets as tfds
    from etils import epath
except ImportError:  # pragma: no cover - exercised only without tfds
    tfds = None


class MovingShapesSource:
    """Random-access source over a built split: ``len(src)``, ``src[i]`` -> decoded
    record (see module docstring), ``src.__getitems__(indices)`` -> list of records."""

    def __init__(self, source: Any):
        self._source = source

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} records")
        return decode_record(self._source[index])

    def __getitems__(self, indices: Iterable[int]) -> list[dict[str, Any]]:
        indices = [int(i) for i in indices]
        getitems = getattr(self._source, "__getitems__", None)
        if getitems is None or any(i < 0 for i in indices):
            return [self[i] for i in indices]
        return [decode_record(r) for r in getitems(indices)]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"MovingShapesSource({self._source!r})"


if tfds is not None:

    @dataclasses.dataclass(eq=False)
    class MovingShapesConfig(tfds.core.BuilderConfig):
        """Frames / resolution / split sizes / seed of a ``moving_shapes`` build."""

        size: int = 32
        num_frames: int = 16
        num_train: int = 4096
        num_test: int = 256
        num_held_out: int = 256
        seed: int = 0

        def num_examples(self, split: str) -> int:
            return {"train": self.num_train, "test": self.num_test, "held_out": self.num_held_out}[split]

    BUILDER_CONFIGS: tuple[MovingShapesConfig, ...] = (
        MovingShapesConfig(
            name="32px_16f", size=32, num_frames=16, description="16 frames at 32x32 (CPU quickstart, base model)."
        ),
        MovingShapesConfig(
            name="64px_16f", size=64, num_frames=16, description="16 frames at 64x64 (spatial super-resolution target)."
        ),
    )
    DEFAULT_CONFIG = "32px_16f"

    class MovingShapes(tfds.core.GeneratorBasedBuilder):
        """tfds builder for moving_shapes (ArrayRecord; no TensorFlow needed)."""

        VERSION = tfds.core.Version("1.0.0")
        RELEASE_NOTES = {"1.0.0": "Initial release."}
        BUILDER_CONFIGS = list(BUILDER_CONFIGS)
        DEFAULT_BUILDER_CONFIG_NAME = DEFAULT_CONFIG
        # tfds derives this from the package via `importlib_resources` (a backport that
        # is not installed) and fails; the module's own path is what it would return.
        code_path = epath.Path(__file__)

        def __init__(self, *, file_format: str | None = None, **kwargs):
            super().__init__(file_format=file_format or "array_record", **kwargs)

        def _info(self):
            cfg = self.builder_config
            t, s = cfg.num_frames, cfg.size
            features = tfds.features.FeaturesDict(
                {
                    # tfds.features.Video needs TensorFlow; a zlib-encoded uint8 Tensor does not.
                    "video": tfds.features.Tensor(shape=(t, s, s, 3), dtype=np.uint8, encoding="zlib"),
                    "caption": tfds.features.Text(),
                    "color": tfds.features.Text(),
                    "shape": tfds.features.Text(),
                    "direction": tfds.features.Text(),
                    "start": tfds.features.Tensor(
                        shape=(2,), dtype=np.float32, doc="object centre (y, x) at frame 0, px"
                    ),
                    "velocity": tfds.features.Tensor(shape=(2,), dtype=np.float32, doc="(vy, vx), px / frame"),
                    "diameter": tfds.features.Scalar(dtype=np.float32, doc="object diameter, px"),
                }
            )
            # Built directly (not dataset_info_from_configs): that reads metadata files
            # from this module's package directory.
            return tfds.core.DatasetInfo(
                builder=self,
                description=(
                    "One coloured shape moving in a straight line on a black "
                    "background; caption 'a {color} {shape} moving {direction}'. "
                    f"held_out holds the combinations {sorted(HELD_OUT)}."
                ),
                features=features,
                supervised_keys=None,
            )

        def _split_generators(self, dl_manager):
            del dl_manager
            return {split: self._generate_examples(split) for split in SPLITS}

        def _generate_examples(self, split: str):
            cfg = self.builder_config
            for i in range(cfg.num_examples(split)):
                spec = example_spec(cfg.seed, split, i, cfg.size, cfg.num_frames)
                yield i, make_record(spec, cfg.num_frames, cfg.size)

    def get_config(config: str | MovingShapesConfig = DEFAULT_CONFIG, **overrides) -> MovingShapesConfig:
        """A named config (``'32px_16f'``, ``'64px_16f'``) or a config object, with
        field ``overrides`` (e.g. ``num_train=64``). Overridden split sizes or seed get
        a distinct name, so builds never collide in one data_dir."""
        if isinstance(config, str):
            by_name = {c.name: c for c in BUILDER_CONFIGS}
            if config not in by_name:
                raise ValueError(f"unknown moving_shapes config {config!r}; known: {sorted(by_name)}")
            config = by_name[config]
        if not overrides:
            return config
        cfg = dataclasses.replace(config, **overrides)
        name = f"{cfg.size}px_{cfg.num_frames}f"
        base = MovingShapesConfig(name="_")
        counts = (cfg.num_train, cfg.num_test, cfg.num_held_out, cfg.seed)
        if counts != (base.num_train, base.num_test, base.num_held_out, base.seed):
            name += f"_n{cfg.num_train}-{cfg.num_test}-{cfg.num_held_out}_s{cfg.seed}"
        for known in BUILDER_CONFIGS:  # e.g. get_config('32px_16f', size=64) is '64px_16f'
            if known.name == name and _data_fields(known) == _data_fields(cfg):
                return known
        return dataclasses.replace(cfg, name=name)

    def _data_fields(cfg: MovingShapesConfig) -> tuple:
        return (cfg.size, cfg.num_frames, cfg.num_train, cfg.num_test, cfg.num_held_out, cfg.seed)

    def builder(data_dir: str, config: str | MovingShapesConfig = DEFAULT_CONFIG, **overrides) -> MovingShapes:
        """The (possibly not yet built) builder for ``config`` under ``data_dir``."""
        cfg = get_config(config, **overrides)
        # Registered configs by name: a builder re-creates itself from its init kwargs
        # when unpickled, and tfds rejects an equal-named copy of a registered config.
        registered = any(cfg is c for c in BUILDER_CONFIGS)
        return MovingShapes(data_dir=str(data_dir), config=cfg.name if registered else cfg)

    def build(data_dir: str, config: str | MovingShapesConfig = DEFAULT_CONFIG, **overrides) -> MovingShapes:
        """Builds (if not already built) and returns the builder. Output lives in
        ``{data_dir}/moving_shapes/{config name}/{version}/``."""
        b = builder(data_dir, config, **overrides)
        b.download_and_prepare(
            download_config=tfds.download.DownloadConfig(compute_stats=tfds.download.ComputeStatsMode.SKIP)
        )
        return b

    def load_source(
        data_dir: str,
        config: str | MovingShapesConfig = DEFAULT_CONFIG,
        split: str = "train",
        *,
        build_if_missing: bool = True,
        **overrides,
    ) -> MovingShapesSource:
        """Random-access source over ``split`` (records decoded: strings are ``str``).
        Builds the dataset first if it is missing and ``build_if_missing``."""
        b = builder(data_dir, config, **overrides)
        if not b.is_prepared():
            if not build_if_missing:
                raise FileNotFoundError(f"moving_shapes/{b.builder_config.name} is not built under {data_dir}")
            b = build(data_dir, config, **overrides)
        return MovingShapesSource(b.as_data_source(split=split))
