"""What sampling returns (`Result`) and how it is written to disk (`write_outputs`)."""
from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Any

import numpy as np

from lumiere_jax.data import video_io


@dataclasses.dataclass
class Result:
    videos: np.ndarray               # uint8 [N, T, H, W, 3] (images: [N, H, W, 3])
    prompts: list[str]
    seeds: list[int]
    settings: dict[str, Any]
    low_res: np.ndarray | None = None   # cascade / upsample / sdedit: the input videos (uint8)
    known: np.ndarray | None = None     # conditional: the known content (uint8, zero where unknown)
    mask: np.ndarray | None = None      # conditional: bool [N, T, H, W], True = known


def write_outputs(result: Result, output_dir: str, *, fps: int = 8) -> list[dict]:
    """Per sample NNNN.mp4, NNNN.gif, NNNN.npy (uint8 [T, H, W, 3]); manifest.json;
    contact_sheet.png (rows = samples, columns = frames). Returns the manifest."""
    os.makedirs(output_dir, exist_ok=True)
    videos = result.videos if result.videos.ndim == 5 else result.videos[:, None]
    manifest = []
    for i, (video, prompt, seed) in enumerate(zip(videos, result.prompts, result.seeds)):
        stem = os.path.join(output_dir, f"{i:04d}")
        with warnings.catch_warnings():      # ffmpeg runs as a subprocess; JAX warns about fork(): harmless here
            warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
            video_io.write_mp4(stem + ".mp4", video, fps=fps)
        video_io.write_gif(stem + ".gif", video, fps=fps)
        video_io.write_npy(stem + ".npy", video)
        entry = {"prompt": prompt, "seed": seed, **result.settings,
                 "mp4": f"{i:04d}.mp4", "gif": f"{i:04d}.gif", "npy": f"{i:04d}.npy"}
        if result.low_res is not None:       # the super-resolution / SDEdit input, for comparison
            video_io.write_npy(stem + "_low_res.npy", result.low_res[i])
            entry["low_res_npy"] = f"{i:04d}_low_res.npy"
        if result.known is not None:         # the conditional model's input
            video_io.write_npy(stem + "_known.npy", result.known[i])
            np.save(stem + "_mask.npy", result.mask[i])
            entry.update(known_npy=f"{i:04d}_known.npy", mask_npy=f"{i:04d}_mask.npy")
        manifest.append(entry)
    with open(os.path.join(output_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    video_io.save_png(os.path.join(output_dir, "contact_sheet.png"), video_io.contact_sheet(videos))
    return manifest
