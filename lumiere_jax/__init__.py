"""lumiere_jax: Lumiere-style text-to-video diffusion (STUNet) in JAX/Flax."""

__version__ = "0.1.0"
