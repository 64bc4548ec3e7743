"""Conditioning of the masked (7-channel) model for each application of Lumiere §4.2.

Each task turns user inputs into ``(known, mask)``: ``known`` the conditioning video
[T, H, W, 3] (uint8) and ``mask`` [T, H, W] bool, True where the content is known (the model's M);
the model sees ``<noisy video, known * M, M>``. User-facing masks mark the opposite, the region to
generate or animate (white in a mask file), as image editors do.

  ``i2v``          the image is frame 0; the rest of the video is generated;
  ``inpaint``      the video is known outside the region, which is generated in every frame;
  ``outpaint``     the same with the region at the borders (`inputs.outpaint_mask`);
  ``cinemagraph``  frame 0 is the whole image; later frames know it outside the region, so only the
                   region moves.

Inputs here are already at the model's size (`inputs.fit_frames` resizes or rejects them).
"""

from __future__ import annotations

import numpy as np

from lumiere_jax import config as config_lib

TASKS = config_lib.CONDITIONAL_TASKS


def _image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an image [H, W, 3], got shape {image.shape}")
    return image


def _video(video: np.ndarray, num_frames: int) -> np.ndarray:
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected a video [T, H, W, 3], got shape {video.shape}")
    if video.shape[0] != num_frames:
        raise ValueError(
            f"the video has {video.shape[0]} frames; the model generates exactly {num_frames} "
            "(trim or pad the input video)"
        )
    return video


def _region(region: np.ndarray, num_frames: int, hw: tuple[int, int], what: str) -> np.ndarray:
    """A [H, W] or [T, H, W] bool region as [T, H, W]."""
    region = np.asarray(region)
    if region.dtype != bool:
        raise ValueError(f"the {what} must be boolean here (binarise it with sampling.inputs.binarize)")
    if region.shape[-2:] != hw:
        raise ValueError(f"the {what} is {region.shape[-2]}x{region.shape[-1]}, the frames are {hw[0]}x{hw[1]}")
    if region.ndim == 2:
        return np.broadcast_to(region, (num_frames, *hw))
    if region.ndim != 3 or region.shape[0] != num_frames:
        raise ValueError(f"the {what} must be [H, W] or [{num_frames}, H, W], got shape {region.shape}")
    return region


def _check_region(region: np.ndarray, what: str) -> None:
    if not region.any():
        raise ValueError(f"the {what} is empty: nothing to generate")


def i2v(image: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    image = _image(image)
    known = np.broadcast_to(image, (num_frames, *image.shape)).copy()
    mask = np.zeros((num_frames, *image.shape[:2]), bool)
    mask[0] = True
    return known, mask


def inpaint(video: np.ndarray, region: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """`region` True = generate ([H, W] for every frame, or [T, H, W])."""
    video = _video(video, num_frames)
    region = _region(region, num_frames, video.shape[1:3], "inpainting mask")
    _check_region(region, "inpainting mask")
    if region.all():
        raise ValueError(
            "the inpainting mask covers the whole video: nothing of the input is kept (generate from "
            "text instead, or mark less of it white)"
        )
    return video, ~region


def outpaint(video: np.ndarray, region: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Inpainting of a border region (True = generate); the known part must not be empty."""
    region = np.asarray(region)
    if region.dtype == bool and region.all():
        raise ValueError("the outpainting region covers the whole frame: nothing is known")
    return inpaint(video, region, num_frames)


def cinemagraph(image: np.ndarray, region: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """`region` [H, W] True = animate; everything else stays the image."""
    image = _image(image)
    region = np.asarray(region)
    if region.ndim != 2:
        raise ValueError(f"a cinemagraph region is one [H, W] mask, got shape {region.shape}")
    region = _region(region, num_frames, image.shape[:2], "cinemagraph region")
    _check_region(region, "cinemagraph region")
    known = np.broadcast_to(image, (num_frames, *image.shape)).copy()
    mask = ~region
    mask[0] = True
    return known, mask
