"""A folder of the user's own clips + captions, built into a tfds ArrayRecord dataset.

Source folder layout::

    my_clips/
      captions.csv            # columns: path,caption   (or captions.jsonl:
      cat.mp4                 #   {"path": ..., "caption": ...} per line)
      waves.webm
      sub/dance.gif
      walk_frames/            # a folder of frames (png/jpg, natural name order)
        0001.png ...

``path`` is relative to the folder (a frames folder is named like a file). Each
caption row becomes clips: the video is decoded (:mod:`lumiere_jax.data.video_io`),
resampled to ``fps`` (frame folders and files without a frame rate are assumed to
be at ``fps`` already), cut into ``num_frames``-frame clips every ``stride``
resampled frames (default ``stride = num_frames``: non-overlapping), resized to
``resolution`` with a centre crop, and written as one example per clip::

    {'video': uint8 [num_frames, H, W, 3] (tfds Tensor, zlib), 'caption': Text,
     'path': Text, 'clip_start': int32 (first frame, in resampled frames)}

Features are chosen to work without TensorFlow: ``tfds.features.Video`` needs TF,
a uint8 ``Tensor`` with ZLIB encoding does not; ``tfds.features.Text`` is written
and read back through tfds' numpy path (a data source returns it as ``bytes``;
:class:`VideoFolderSource` decodes it to ``str``).

Policy for problems (never abort the whole build for one bad video):
  * no caption file, or a caption file without ``path`` / ``caption`` columns, or
    a malformed row: ``ValueError`` before anything is decoded (nothing sensible
    to build; a typo in the file is better fixed than silently skipped);
  * a caption row whose path does not exist: skipped, reason ``missing``;
  * a video that cannot be decoded: skipped, reason ``decode_error: ...``;
  * a video shorter than ``num_frames`` after resampling: skipped, ``too_short``;
  * video files in the folder without a caption row: ignored, listed as
    ``uncaptioned`` in the report;
  * if nothing at all could be used: ``ValueError`` with the skip summary.
Skips are logged (``logging.warning``) and written to ``build_report.json`` in the
dataset's version directory (next to ``dataset_info.json``); :func:`read_build_report`
loads it. Several rows may name the same video (several captions): each row
yields its own clips.

Videos are decoded whole into memory (fine for clip-sized inputs; split very long
videos beforehand). The built data lives in
``data_dir/video_folder/<config name>/1.0.0``; the default config name combines the
folder's name, a hash of its absolute path + caption file, and the parameters, so
several folders can share one ``data_dir``. A finished build is reused: after
editing the folder pass ``rebuild=True`` (:func:`load_source` warns when the
folder's fingerprint no longer matches the build's).

Typical use::

    source = load_source("~/tfds", "my_clips", resolution=64, fps=8, num_frames=16)
    # or: builder = build_video_folder(...); source = VideoFolderSource(builder)
    # later, without the source folder:
    source = VideoFolderSource.from_directory(source.builder.data_dir)
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import os
import re
from typing import Any, Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from lumiere_jax.data import video_io
from lumiere_jax.data.views import as_str

log = logging.getLogger(__name__)

CAPTION_FILES = ("captions.csv", "captions.jsonl")
REPORT_FILE = "build_report.json"


@dataclasses.dataclass(eq=False)
class VideoFolderConfig(tfds.core.BuilderConfig):
    """``resolution``: int (square) or (height, width); ``fps``: target frame rate
    (``None``: keep source frames); ``num_frames``: clip length; ``stride``: a clip
    every ``stride`` resampled frames (``None`` = ``num_frames``);
    ``max_clips_per_video``: cap (``None``: all); ``captions_file``: name relative
    to the source folder (``None``: ``captions.csv`` or ``captions.jsonl``)."""

    name: str = "default"
    resolution: int | tuple[int, int] = 64
    fps: float | None = 8.0
    num_frames: int = 16
    stride: int | None = None
    max_clips_per_video: int | None = None
    captions_file: str | None = None

    def __post_init__(self):
        if self.num_frames <= 0:
            raise ValueError(f"num_frames must be positive, got {self.num_frames}")
        if self.stride is not None and self.stride <= 0:
            raise ValueError(f"stride must be positive, got {self.stride}")
        if self.name == "default":
            h, w = video_io._size_hw(self.resolution)
            fps = "src" if self.fps is None else f"{self.fps:g}".replace(".", "p")
            stride = self.num_frames if self.stride is None else self.stride
            self.name = f"r{h}x{w}_f{self.num_frames}_fps{fps}_s{stride}"
            if self.max_clips_per_video is not None:
                self.name += f"_m{self.max_clips_per_video}"

    @property
    def height_width(self) -> tuple[int, int]:
        return video_io._size_hw(self.resolution)


def read_captions(source_dir: str | os.PathLike, captions_file: str | None = None) -> list[tuple[str, str]]:
    """``[(relative path, caption)]`` from ``captions.csv`` / ``captions.jsonl``.

    Raises ``FileNotFoundError`` when there is no caption file and ``ValueError``
    for a malformed one (missing columns / keys, bad JSON), naming file and line.
    """
    source_dir = os.fspath(source_dir)
    if captions_file is None:
        found = [f for f in CAPTION_FILES if os.path.isfile(os.path.join(source_dir, f))]
        if not found:
            raise FileNotFoundError(
                f"no caption file in {source_dir!r}: expected one of {', '.join(CAPTION_FILES)} (rows: path,caption)"
            )
        captions_file = found[0]
    path = os.path.join(source_dir, captions_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"caption file {path!r} not found")
    try:
        return _read_captions(path)
    except UnicodeDecodeError as e:
        raise ValueError(
            f"caption file {path} is not UTF-8 text ({e.reason} at byte {e.start}): re-save it as UTF-8"
        ) from None


def _read_captions(path: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if path.lower().endswith(".jsonl"):
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is accepted
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    rows.append((str(obj["path"]), str(obj["caption"])))
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise ValueError(
                        f'{path}:{n}: expected {{"path": ..., "caption": ...}}, got {line.strip()[:80]!r} ({e})'
                    ) from e
    else:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = {"path", "caption"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(
                    f"{path}: header must have columns path,caption "
                    f"(missing {sorted(missing)}; got {reader.fieldnames})"
                )
            for n, row in enumerate(reader, 2):
                if row["path"] is None or row["caption"] is None:
                    raise ValueError(f"{path}:{n}: row needs path and caption, got {row}")
                rows.append((row["path"].strip(), row["caption"]))
    return rows


def _find_videos(source_dir: str) -> set[str]:
    """Relative paths of video files and frame folders under ``source_dir``."""
    found = set()
    for root, dirs, files in os.walk(source_dir):
        rel_root = os.path.relpath(root, source_dir)
        if root != source_dir and video_io.list_frame_files(root):
            found.add(os.path.normpath(rel_root))
        for f in files:
            if f.lower().endswith(video_io.ALL_EXTENSIONS):
                found.add(os.path.normpath(os.path.join(rel_root, f)))
    return found


class VideoFolder(tfds.core.GeneratorBasedBuilder):
    """tfds builder for a folder of clips + captions (see the module docstring).

    ``source_dir``: the clips folder (only needed to build; defaults to the
    download config's ``manual_dir``). Build with ``download_and_prepare()``; the
    default file format is ArrayRecord (random access via ``as_data_source()``).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [VideoFolderConfig()]

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        # tfds derives this from the module's package via `importlib_resources`,
        # which is not installed (nor needed on Python >= 3.9); this file is the answer.
        return epath.Path(__file__)

    def __init__(self, *, source_dir: str | os.PathLike | None = None, **kwargs):
        kwargs.setdefault("file_format", "array_record")
        self.source_dir = None if source_dir is None else os.path.abspath(os.fspath(source_dir))
        self.build_report: dict[str, Any] | None = None
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        cfg: VideoFolderConfig = self.builder_config
        h, w = cfg.height_width
        return tfds.core.DatasetInfo(
            builder=self,
            description="User video clips with captions (lumiere_jax.data.video_folder).",
            features=tfds.features.FeaturesDict(
                {
                    "video": tfds.features.Tensor(
                        shape=(cfg.num_frames, h, w, 3), dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB
                    ),
                    "caption": tfds.features.Text(),
                    "path": tfds.features.Text(),
                    "clip_start": tfds.features.Scalar(dtype=np.int32),
                }
            ),
            metadata=tfds.core.MetadataDict(
                resolution=[h, w], fps=cfg.fps, num_frames=cfg.num_frames, stride=cfg.stride or cfg.num_frames
            ),
        )

    def _split_generators(self, dl_manager):
        source_dir = self.source_dir
        if source_dir is None:
            manual = getattr(dl_manager, "manual_dir", None)
            source_dir = os.fspath(manual) if manual else None
        if source_dir is None or not os.path.isdir(source_dir):
            raise ValueError(f"VideoFolder needs an existing source_dir (got {source_dir!r})")
        rows = read_captions(source_dir, self.builder_config.captions_file)
        return {"train": self._generate_examples(source_dir, rows)}

    def _clips(self, path: str) -> list[tuple[int, np.ndarray]]:
        cfg: VideoFolderConfig = self.builder_config
        video, src_fps = video_io.read_video(path)
        frames = video_io.resample_indices(len(video), src_fps, cfg.fps)
        starts = video_io.clip_starts(len(frames), cfg.num_frames, cfg.stride, cfg.max_clips_per_video)
        if not starts:
            raise _TooShort(
                f"{len(frames)} frames after resampling "
                f"({len(video)} at {src_fps or 'unknown'} fps -> {cfg.fps or 'source'} fps), "
                f"need {cfg.num_frames}"
            )
        needed = sorted({int(frames[s + k]) for s in starts for k in range(cfg.num_frames)})
        small = dict(zip(needed, video_io.resize_and_center_crop(video[needed], cfg.resolution)))
        return [(s, np.stack([small[int(frames[s + k])] for k in range(cfg.num_frames)])) for s in starts]

    def _generate_examples(
        self, source_dir: str, rows: Sequence[tuple[str, str]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        skipped, used, num_clips = [], set(), 0
        cache: dict[str, list | Exception] = {}
        for row, (rel, caption) in enumerate(rows):
            path = os.path.normpath(os.path.join(source_dir, rel))
            if not os.path.exists(path):
                skipped.append({"path": rel, "row": row, "reason": "missing"})
                log.warning("video_folder: skipping %s (row %d): file not found", rel, row)
                continue
            if path not in cache:  # several captions for one video decode it once
                try:
                    cache = {path: self._clips(path)}
                except (video_io.VideoDecodeError, _TooShort) as e:
                    cache = {path: e}
            clips = cache[path]
            if isinstance(clips, Exception):
                kind = "too_short" if isinstance(clips, _TooShort) else "decode_error"
                reason = str(clips) if kind == "too_short" else clips.reason
                skipped.append({"path": rel, "row": row, "reason": f"{kind}: {reason}"})
                log.warning("video_folder: skipping %s (row %d): %s: %s", rel, row, kind, reason)
                continue
            used.add(os.path.normpath(rel))
            for start, clip in clips:
                num_clips += 1
                yield (
                    f"{row:06d}:{start:06d}:{rel}",
                    {"video": clip, "caption": caption, "path": rel, "clip_start": start},
                )
        captioned = {os.path.normpath(r) for r, _ in rows}
        report = {
            "source_dir": source_dir,
            "fingerprint": source_fingerprint(source_dir, self.builder_config.captions_file),
            "config": {
                k: getattr(self.builder_config, k)
                for k in ("name", "resolution", "fps", "num_frames", "stride", "max_clips_per_video")
            },
            "num_caption_rows": len(rows),
            "num_videos_used": len(used),
            "num_clips": num_clips,
            "num_skipped": len(skipped),
            "skipped": skipped,
            "uncaptioned": sorted(_find_videos(source_dir) - captioned),
        }
        self.build_report = report
        if num_clips == 0:
            raise ValueError(
                f"video_folder: no usable clips in {source_dir!r}; skipped: "
                + "; ".join(f"{s['path']}: {s['reason']}" for s in skipped)
            )
        # self.data_dir is the (temporary, later renamed) version directory here.
        with open(os.path.join(os.fspath(self.data_dir), REPORT_FILE), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, default=str)
        log.info("video_folder: %d clips from %d videos, %d rows skipped", num_clips, len(used), len(skipped))


class _TooShort(Exception):
    pass


def read_build_report(builder_or_dir) -> dict[str, Any]:
    """The ``build_report.json`` of a built dataset (a builder or its version directory)."""
    d = builder_or_dir.data_dir if isinstance(builder_or_dir, tfds.core.DatasetBuilder) else builder_or_dir
    with open(os.path.join(os.fspath(d), REPORT_FILE), encoding="utf-8") as f:
        return json.load(f)


def source_fingerprint(source_dir: str | os.PathLike, captions_file: str | None = None) -> str:
    """Hash of the caption file's bytes and the (path, size, mtime) of every file
    it names (frames folders: of their frames). Detects edits after a build."""
    source_dir = os.fspath(source_dir)
    h = hashlib.sha1()
    try:
        rows = read_captions(source_dir, captions_file)
    except (OSError, ValueError) as e:
        return f"unreadable:{type(e).__name__}"
    for rel, caption in rows:
        h.update(f"{rel}\0{caption}\0".encode())
        path = os.path.join(source_dir, rel)
        files = video_io.list_frame_files(path) if os.path.isdir(path) else [path]
        for f in files:
            try:
                st = os.stat(f)
                h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}\0".encode())
            except OSError:
                h.update(f"{f}:missing\0".encode())
    return h.hexdigest()[:16]


def _default_name(source_dir: str, captions_file: str | None, cfg: VideoFolderConfig) -> str:
    """``<folder>-<hash of its absolute path + caption file>_<params>``: distinct
    source folders never share a tfds directory under one ``data_dir``."""
    ident = hashlib.sha1(f"{os.path.abspath(source_dir)}\0{captions_file or ''}".encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "_", os.path.basename(os.path.abspath(source_dir)).lower()).strip("_")
    return f"{slug or 'folder'}-{ident}_{cfg.name}"


def build_video_folder(
    source_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    *,
    resolution: int | tuple[int, int] = 64,
    fps: float | None = 8.0,
    num_frames: int = 16,
    stride: int | None = None,
    max_clips_per_video: int | None = None,
    captions_file: str | None = None,
    name: str | None = None,
    rebuild: bool = False,
) -> VideoFolder:
    """Build (or reuse, if already built) the dataset and return its builder.

    ``captions_file``: relative to ``source_dir`` or absolute (``None`` / ``""``:
    auto-detect). ``name``: the tfds config name (default: folder name + a hash of
    its absolute path and caption file + the parameters). A dataset built earlier
    is reused as is; ``rebuild=True`` regenerates it (e.g. after editing the
    folder; :func:`load_source` refuses a folder changed since the build).
    """
    source_dir = os.path.abspath(os.path.expanduser(os.fspath(source_dir)))
    captions_file = captions_file or None
    cfg = VideoFolderConfig(
        resolution=resolution,
        fps=fps,
        num_frames=num_frames,
        stride=stride,
        max_clips_per_video=max_clips_per_video,
        captions_file=captions_file,
    )
    cfg.name = name or _default_name(source_dir, captions_file, cfg)
    builder = VideoFolder(source_dir=source_dir, config=cfg, data_dir=os.path.expanduser(os.fspath(data_dir)))
    mode = (
        tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS
        if rebuild
        else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
    )
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(download_mode=mode))
    return builder


def load_source(
    data_dir: str | os.PathLike,
    source_dir: str | os.PathLike,
    captions: str | None = None,
    *,
    split: str = "train",
    resolution: int | tuple[int, int] = 64,
    fps: float | None = 8.0,
    num_frames: int = 16,
    stride: int | None = None,
    max_clips_per_video: int | None = None,
    name: str | None = None,
    rebuild: bool = False,
) -> "VideoFolderSource":
    """Build if needed (:func:`build_video_folder`) and open as a random-access source.

    The dataset has one split, ``"train"``; tfds slicing works (``"train[:90%]"``,
    ``"train[90%:]"``) for a held-out part (clips of one video may then fall on
    both sides of the cut).
    """
    if not str(split).startswith("train"):
        raise ValueError(
            f"video_folder datasets have only the 'train' split (slices such as 'train[90%:]' work), got {split!r}"
        )
    if not source_dir:
        raise ValueError("video_folder needs the clips folder (config.data.video_folder)")
    builder = build_video_folder(
        source_dir,
        data_dir,
        resolution=resolution,
        fps=fps,
        num_frames=num_frames,
        stride=stride,
        max_clips_per_video=max_clips_per_video,
        captions_file=captions,
        name=name,
        rebuild=rebuild,
    )
    try:
        built = read_build_report(builder).get("fingerprint")
    except OSError:
        built = None
    now = source_fingerprint(builder.source_dir, captions or None)
    if built is not None and built != now:
        raise ValueError(
            f"video_folder: {builder.source_dir} changed (captions, or the size or time of a file "
            f"they name) since {builder.data_dir} was built from it; rebuild it with "
            "--config.data.rebuild=true (or restore the folder)"
        )
    return VideoFolderSource(builder, split)


class VideoFolderSource:
    """Random-access records in the shared schema: ``{'video': uint8 [T, H, W, 3],
    'caption': str, 'path': str, 'clip_start': int}``."""

    def __init__(self, builder: tfds.core.DatasetBuilder, split: str = "train"):
        self.builder = builder
        self._source = builder.as_data_source(split=split)

    @classmethod
    def from_directory(cls, version_dir: str | os.PathLike, split: str = "train") -> "VideoFolderSource":
        """Open a built dataset by its version directory (no source folder needed)."""
        return cls(tfds.builder_from_directory(os.fspath(version_dir)), split)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self._source[i]
        return {
            "video": np.asarray(r["video"], np.uint8),
            "caption": as_str(r["caption"]),
            "path": as_str(r["path"]),
            "clip_start": int(r["clip_start"]),
        }
