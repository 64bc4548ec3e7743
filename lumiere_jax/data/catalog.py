"""Public catalog video datasets (through tensorflow-datasets) in the shared record schema.

Optional: building / decoding the catalog datasets needs TensorFlow, installed by
the ``[tf]`` extra (``pip install lumiere_jax[tf]``). Without it, constructing a
:class:`CatalogSource` by name raises ``ImportError`` saying so; everything else in
``lumiere_jax.data`` works without TensorFlow.

Entries (:data:`CATALOG`):
  * ``ucf101``: tfds ``ucf101`` (config ``ucf101_1_256`` by default: split 1,
    256x256, variable length); caption from the class name,
    ``"ApplyEyeMakeup" -> "a video of apply eye makeup"``.
  * ``moving_mnist``: tfds ``moving_mnist`` (``test`` split only, 20 grayscale
    64x64 frames); constant caption ``"moving handwritten digits"``; gray is
    repeated to RGB.

Records come from ``tfds.data_source`` (random access; datasets are prepared in
the ArrayRecord format) and are mapped to ``{'video': uint8 [T, H, W, 3],
'caption': str, 'label': int (-1 when none), 'index': int}``. Optional per-record
preprocessing, deterministic per index (so the pipeline's order guarantees hold):
``num_frames`` (the centre clip of ``num_frames`` frames taken every
``frame_stride`` frames; a shorter video is padded by repeating its last frame)
and ``resolution`` (resize + centre crop).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from typing import Any, Callable, Sequence

import numpy as np

from lumiere_jax.data import video_io

TF_EXTRA_HINT = "install the optional extra: pip install 'lumiere_jax[tf]' (tensorflow)"


def has_tensorflow() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def require_tensorflow(what: str) -> None:
    if not has_tensorflow():
        raise ImportError(f"{what} needs TensorFlow (tfds builds and decodes it with TF); {TF_EXTRA_HINT}")


def class_name_to_words(name: str) -> str:
    """``"ApplyEyeMakeup" -> "apply eye makeup"``, ``"YoYo" -> "yo yo"``,
    ``"playing_guitar" -> "playing guitar"``."""
    name = re.sub(r"[_\-]+", " ", name)
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return " ".join(name.lower().split())


def class_caption(template: str = "a video of {}") -> Callable[[str], str]:
    return lambda name: template.format(class_name_to_words(name))


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """``tfds_name``: name[/config]; ``video_key``: the video feature;
    ``label_key``: a ``ClassLabel`` feature or ``None``; ``caption``: class name
    -> caption (with a label) or the constant caption (without)."""

    tfds_name: str
    video_key: str = "video"
    label_key: str | None = "label"
    caption: Callable[[str], str] | str = class_caption()
    splits: tuple[str, ...] = ("train", "test")
    description: str = ""


CATALOG: dict[str, CatalogEntry] = {
    "ucf101": CatalogEntry("ucf101/ucf101_1_256", description="UCF101 action recognition, 101 classes"),
    "moving_mnist": CatalogEntry(
        "moving_mnist",
        video_key="image_sequence",
        label_key=None,
        caption="moving handwritten digits",
        splits=("test",),
        description="Moving MNIST, 10k sequences of 20 frames",
    ),
}


def _center_clip(video: np.ndarray, num_frames: int, stride: int) -> np.ndarray:
    span = (num_frames - 1) * stride + 1
    start = max(0, (len(video) - span) // 2)
    idx = np.minimum(start + np.arange(num_frames) * stride, len(video) - 1)
    return video[idx]


class CatalogSource:
    """Random-access adapter: a catalog dataset's records in the shared schema.

    Args:
      name: a :data:`CATALOG` key.
      split: tfds split (``"train"``, ``"test[:10%]"``, ...).
      data_dir: tfds data directory.
      download: let tfds download + prepare the dataset if needed.
      num_frames / frame_stride / resolution: per-record preprocessing (module docstring).
      caption_template: overrides the entry's class-name caption template.
      source: an already opened random-access source (skips tfds; for tests or
        custom readers); ``label_names`` then gives the class names.
    """

    def __init__(
        self,
        name: str,
        split: str = "train",
        *,
        data_dir: str | None = None,
        download: bool = True,
        num_frames: int | None = None,
        frame_stride: int = 1,
        resolution: int | Sequence[int] | None = None,
        caption_template: str | None = None,
        source: Sequence[dict[str, Any]] | None = None,
        label_names: Sequence[str] | None = None,
    ):
        if name not in CATALOG:
            raise KeyError(f"unknown catalog dataset {name!r}; known: {sorted(CATALOG)}")
        self.entry = entry = CATALOG[name]
        if source is None:
            require_tensorflow(f"catalog dataset {name!r}")
            import tensorflow_datasets as tfds

            source = tfds.data_source(
                entry.tfds_name,
                split=split,
                data_dir=data_dir,
                download=download,
                builder_kwargs={"file_format": "array_record"},
            )
            if label_names is None and entry.label_key is not None:
                info = getattr(source, "dataset_info", None) or tfds.builder(entry.tfds_name, data_dir=data_dir).info
                label_names = info.features[entry.label_key].names
        self.source = source
        self.label_names = None if label_names is None else list(label_names)
        self.num_frames, self.frame_stride, self.resolution = num_frames, frame_stride, resolution
        if isinstance(entry.caption, str):
            self._caption = lambda _: entry.caption
        else:
            self._caption = class_caption(caption_template) if caption_template else entry.caption

    def __len__(self) -> int:
        return len(self.source)

    def caption_for_label(self, label: int) -> str:
        if self.entry.label_key is None:
            return self._caption("")
        if self.label_names is None:
            raise ValueError("no label names: pass label_names= with a custom source")
        return self._caption(self.label_names[label])

    def convert(self, record: dict[str, Any], index: int) -> dict[str, Any]:
        """One tfds record -> the shared schema."""
        video = np.asarray(record[self.entry.video_key])
        if video.dtype != np.uint8:
            raise TypeError(f"expected uint8 video, got {video.dtype}")
        if video.ndim == 3:
            video = video[..., None]
        if video.shape[-1] == 1:
            video = np.repeat(video, 3, axis=-1)
        if self.num_frames is not None:
            video = _center_clip(video, self.num_frames, self.frame_stride)
        if self.resolution is not None:
            video = video_io.resize_and_center_crop(video, self.resolution)
        label = -1 if self.entry.label_key is None else int(record[self.entry.label_key])
        caption = self.caption_for_label(label)
        return {"video": np.ascontiguousarray(video), "caption": caption, "label": label, "index": int(index)}

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.convert(self.source[i], i)


def load(name: str, split: str = "train", **kwargs) -> CatalogSource:
    """``CatalogSource(name, split, **kwargs)``."""
    return CatalogSource(name, split, **kwargs)
