"""DCGAN: the GAN with the convolutional networks of Radford et al. (notes, chapter 8)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from mp_keras.models.gan import GAN


@keras.saving.register_keras_serializable(package="mp_keras")
class DCGAN(GAN):
    """Deep convolutional GAN for images (Radford et al. 2016), MNIST-sized by default.

    Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks", ICLR 2016. A `GAN` with
    `network="dcgan"`: the generator maps z through a dense layer to (H/4, W/4, 2F),
    then two stride-2 transposed convolutions (batch norm and ReLU between) to the
    image; the discriminator has two stride-2 convolutions with LeakyReLU(0.2) and a
    dense logit. The losses are the GAN's (`generator_loss`); the same networks work
    with the other losses through `WGAN(network="dcgan")`, `WGANGP(network="dcgan")`
    and `UnrolledGAN(network="dcgan")`.

    Args:
        data_shape: tuple of ints. `(H, W, C)`, H and W divisible by 4. Defaults to
            `(28, 28, 1)`.
        latent_dim: int. Size of the noise z. Defaults to `64`.
        filters: int. F. Defaults to `64`.
        output_activation: str. Defaults to `"sigmoid"` (pixels in [0, 1]).
        **kwargs: the other `GAN` arguments (`generator_loss`, `discriminator_steps`,
            `seed`, ...).

    Example:
    >>> import numpy as np
    >>> gan = DCGAN(data_shape=(8, 8, 1), latent_dim=4, filters=2, seed=0)
    >>> gan.compile()
    >>> x = np.random.default_rng(0).uniform(size=(8, 8, 8, 1)).astype("float32")
    >>> sorted(gan.fit(x, epochs=1, batch_size=4, verbose=0).history)
    ['d_loss', 'g_loss', 'loss']
    >>> tuple(gan.sample(3, seed=1).shape)
    (3, 8, 8, 1)
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (28, 28, 1),
        latent_dim: int = 64,
        filters: int = 64,
        output_activation: str = "sigmoid",
        network: str = "dcgan",
        **kwargs: Any,
    ) -> None:
        if network != "dcgan":
            raise ValueError(f"DCGAN has network='dcgan'; got {network!r} (use GAN).")
        super().__init__(
            data_shape=data_shape,
            latent_dim=latent_dim,
            filters=filters,
            output_activation=output_activation,
            network=network,
            **kwargs,
        )
