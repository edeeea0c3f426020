"""The models of the course, one file each."""

from mp_keras.models.gan import GAN
from mp_keras.models.mlp import MLP
from mp_keras.models.vae import VAE

__all__ = ["GAN", "MLP", "VAE"]
