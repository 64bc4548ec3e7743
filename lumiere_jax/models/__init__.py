"""Models: T2I U-Net, its STUNet inflation, the text encoder."""

from lumiere_jax.models.stunet import STUNet, STUNetConfig, inflate_params, param_labels
from lumiere_jax.models.unet import UNet, UNetConfig

__all__ = ["STUNet", "STUNetConfig", "UNet", "UNetConfig", "inflate_params", "param_labels"]
