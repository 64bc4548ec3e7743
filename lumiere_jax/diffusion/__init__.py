"""Diffusion core: schedules, forward noising, losses, guidance and samplers (diffusers conventions)."""

from lumiere_jax.diffusion import guidance, losses, noising, samplers, schedules, thresholding

__all__ = ["guidance", "losses", "noising", "samplers", "schedules", "thresholding"]
