"""The generator and discriminator networks of the GANs (notes, chapter 8).

Two families, chosen by a GAN's `network` argument:

* `"mlp"`: fully connected networks for any data shape (the 2-D toy sets);
* `"dcgan"`: the convolutional networks of Radford et al., "Unsupervised Representation
  Learning with Deep Convolutional Generative Adversarial Networks", ICLR 2016, for
  images `(H, W, C)` with H and W divisible by 4: strided (transposed) convolutions in
  place of pooling, batch norm in the generator, LeakyReLU(0.2) in the discriminator.

The discriminator never has batch norm: the critic of WGAN-GP is penalised per example,
which batch statistics would couple. `constraint` (e.g. WGAN's weight clipping) goes on
every kernel and bias of the discriminator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras

NETWORKS = ("mlp", "dcgan")


def check_network(network: str, data_shape: Sequence[int]) -> None:
    """Raises ValueError unless `network` is known and fits `data_shape`."""
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}, got {network!r}.")
    if network == "dcgan":
        shape = tuple(data_shape)
        if len(shape) != 3 or shape[0] % 4 or shape[1] % 4:
            raise ValueError(
                "network='dcgan' expects an image data_shape (H, W, C) with H and W "
                f"divisible by 4, e.g. (28, 28, 1); got {shape}."
            )


def build_generator(
    network: str,
    latent_dim: int,
    data_shape: Sequence[int],
    units: Sequence[int],
    filters: int,
    output_activation: str,
) -> keras.Sequential:
    """The generator G: noise `(batch, latent_dim)` to samples `(batch, *data_shape)`."""
    check_network(network, data_shape)
    data_shape = tuple(data_shape)
    if network == "mlp":
        return keras.Sequential(
            [keras.Input((latent_dim,))]
            + [keras.layers.Dense(u, activation="relu") for u in units]
            + [
                keras.layers.Dense(math.prod(data_shape), activation=output_activation),
                keras.layers.Reshape(data_shape),
            ],
            name="generator",
        )
    height, width, channels = data_shape
    return keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Dense((height // 4) * (width // 4) * 2 * filters, use_bias=False),
            keras.layers.Reshape((height // 4, width // 4, 2 * filters)),  # (b, H/4, W/4, 2F)
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),  # (b, H/2, W/2, F)
            keras.layers.ReLU(),
            keras.layers.Conv2DTranspose(
                channels, 4, strides=2, padding="same", activation=output_activation
            ),  # (b, H, W, C)
        ],
        name="generator",
    )


def build_discriminator(
    network: str,
    data_shape: Sequence[int],
    units: Sequence[int],
    filters: int,
    constraint: Any = None,
) -> keras.Sequential:
    """The discriminator (critic) D: data `(batch, *data_shape)` to logits `(batch, 1)`."""
    check_network(network, data_shape)
    clip = dict(kernel_constraint=constraint, bias_constraint=constraint)
    if network == "mlp":
        hidden = [keras.layers.Flatten()]
        hidden += [keras.layers.Dense(u, activation="leaky_relu", **clip) for u in units]
    else:
        hidden = [
            keras.layers.Conv2D(filters, 4, strides=2, padding="same", **clip),
            keras.layers.LeakyReLU(0.2),  # (b, H/2, W/2, F)
            keras.layers.Conv2D(2 * filters, 4, strides=2, padding="same", **clip),
            keras.layers.LeakyReLU(0.2),  # (b, H/4, W/4, 2F)
            keras.layers.Flatten(),
        ]
    return keras.Sequential(
        [keras.Input(tuple(data_shape)), *hidden, keras.layers.Dense(1, **clip)],  # logit
        name="discriminator",
    )
