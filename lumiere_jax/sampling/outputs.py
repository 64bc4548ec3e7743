"""What sampling returns (`Result`) and how it is written to disk (`write_outputs`)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
import warnings
from typing import Any

import numpy as np

from lumiere_jax.data import video_io


@dataclasses.dataclass
class Result:
    videos: np.ndarray  # uint8 [N, T, H, W, 3] (images: [N, H, W, 3])
    prompts: list[str]
    seeds: list[int]
    settings: dict[str, Any]
    low_res: np.ndarray | None = None  # cascade / upsample / sdedit: the input videos (uint8)
    known: np.ndarray | None = None  # conditional: the known content (uint8, zero where unknown)
    mask: np.ndarray | None = None  # conditional: bool [N, T, H, W], True = known


OUTPUT_EXISTS = ("error", "overwrite", "append")
MANIFEST = "manifest.json"
_OURS = re.compile(r"^(\d{4,})(_low_res|_known|_mask)?\.(mp4|gif|npy)$")


def read_manifest(output_dir: str) -> list[dict]:
    path = os.path.join(output_dir, MANIFEST)
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return json.load(f)


def prepare_output_dir(output_dir: str, exists: str = "error") -> list[dict]:
    """Make sure `output_dir` can take samples before any is drawn: created if missing, writable, and,
    if it already holds files, handled as `exists` says: "error" refuses (naming what is there),
    "overwrite" removes the samples a previous run wrote there (NNNN.*, the manifest and the contact
    sheet; nothing else), "append" keeps them (new samples are numbered after them). Returns the
    manifest of what is kept."""
    if exists not in OUTPUT_EXISTS:
        raise ValueError(f"output_exists must be one of {OUTPUT_EXISTS}, got {exists!r}")
    try:
        os.makedirs(output_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write_test"):
            pass
    except OSError as e:
        raise PermissionError(f"cannot write to the output folder {output_dir}: {e.strerror or e}") from None
    present = sorted(f for f in os.listdir(output_dir) if not f.startswith("."))
    if not present:
        return []
    if exists == "error":
        shown = ", ".join(present[:4]) + (f" and {len(present) - 4} more" if len(present) > 4 else "")
        raise FileExistsError(
            f"the output folder {output_dir} is not empty ({shown}): pass --output_exists=append "
            "(keep them, add after them, skip samples already there) or =overwrite (replace "
            "earlier samples), or choose another --output_dir"
        )
    if exists == "overwrite":
        for f in present:
            if _OURS.match(f) or f in (MANIFEST, "contact_sheet.png"):
                os.remove(os.path.join(output_dir, f))
        return []
    return read_manifest(output_dir)


def _write_json_atomic(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, allow_nan=False)
    os.replace(tmp, path)


def write_outputs(
    result: Result, output_dir: str, *, fps: int = 8, exists: str = "overwrite", contact_sheet: bool = True
) -> list[dict]:
    """Per sample NNNN.mp4, NNNN.gif, NNNN.npy (uint8 [T, H, W, 3]); manifest.json (written
    atomically, listing exactly the samples in the folder); contact_sheet.png (rows = samples,
    columns = frames; `contact_sheet=False` leaves it to one `write_contact_sheet` call after the
    last batch). `exists`: what to do with samples already in the folder (`prepare_output_dir`).
    Returns the manifest."""
    if int(fps) < 1:
        raise ValueError(f"fps must be >= 1, got {fps!r}")
    manifest = prepare_output_dir(output_dir, exists)
    videos = result.videos if result.videos.ndim == 5 else result.videos[:, None]
    start = 1 + max((int(e["npy"][:-4]) for e in manifest), default=-1)
    for j, (video, prompt, seed) in enumerate(zip(videos, result.prompts, result.seeds)):
        i = start + j
        stem = os.path.join(output_dir, f"{i:04d}")
        with warnings.catch_warnings():  # ffmpeg runs as a subprocess; JAX warns about fork(): harmless here
            warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
            video_io.write_mp4(stem + ".mp4", video, fps=fps)
        video_io.write_gif(stem + ".gif", video, fps=fps)
        video_io.write_npy(stem + ".npy", video)
        entry = {
            "prompt": prompt,
            "seed": seed,
            **result.settings,
            "mp4": f"{i:04d}.mp4",
            "gif": f"{i:04d}.gif",
            "npy": f"{i:04d}.npy",
        }
        if result.low_res is not None:  # the super-resolution / SDEdit input, for comparison
            video_io.write_npy(stem + "_low_res.npy", result.low_res[j])
            entry["low_res_npy"] = f"{i:04d}_low_res.npy"
        if result.known is not None:  # the conditional model's input
            video_io.write_npy(stem + "_known.npy", result.known[j])
            np.save(stem + "_mask.npy", result.mask[j])
            entry.update(known_npy=f"{i:04d}_known.npy", mask_npy=f"{i:04d}_mask.npy")
        manifest.append(entry)
    _write_json_atomic(os.path.join(output_dir, MANIFEST), manifest)
    if contact_sheet:
        write_contact_sheet(output_dir, manifest, videos if not start else None)
    return manifest


def write_contact_sheet(output_dir: str, manifest: list[dict] | None = None, videos: np.ndarray | None = None) -> None:
    """contact_sheet.png of every sample the manifest lists (`videos`: those samples, already in memory)."""
    if videos is None:
        manifest = read_manifest(output_dir) if manifest is None else manifest
        if not manifest:
            return
        videos = np.stack([np.load(os.path.join(output_dir, e["npy"])) for e in manifest])
    videos = videos if videos.ndim == 5 else videos[:, None]
    video_io.save_png(os.path.join(output_dir, "contact_sheet.png"), video_io.contact_sheet(videos))
