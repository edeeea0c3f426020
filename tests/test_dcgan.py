"""DCGAN: the convolutional networks' shapes, defaults and validation."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from mp_keras.models import DCGAN, GAN
from tests.harness import run_standard_checks, to_numpy


def test_standard_checks(tmp_path):
    x = np.random.default_rng(0).uniform(size=(8, 8, 8, 1)).astype("float32")
    noise = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    run_standard_checks(
        lambda: DCGAN(data_shape=(8, 8, 1), latent_dim=3, filters=2, seed=0),
        x,
        (None, 8, 8, 1),
        tmp_path,
        call_input=noise,
    )


def test_defaults_and_networks():
    assert inspect.signature(DCGAN).parameters["filters"].default == 64  # no 64-filter build
    model = DCGAN(filters=4)  # small F keeps the 28x28 sample fast
    assert (model.data_shape, model.latent_dim, model.network) == ((28, 28, 1), 64, "dcgan")
    gen = [type(layer).__name__ for layer in model.generator.layers]
    assert gen.count("Conv2DTranspose") == 2 and gen.count("BatchNormalization") == 2
    disc = [type(layer).__name__ for layer in model.discriminator.layers]
    assert disc.count("Conv2D") == 2 and "BatchNormalization" not in disc
    assert tuple(model.discriminator.layers[3].output.shape) == (None, 7, 7, 8)
    samples = to_numpy(model.sample(2, seed=0))
    assert samples.shape == (2, 28, 28, 1) and samples.min() >= 0 and samples.max() <= 1
    rgb = GAN(data_shape=(12, 8, 3), network="dcgan", filters=2)
    assert tuple(rgb.sample(1, seed=0).shape) == (1, 12, 8, 3)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        DCGAN(data_shape=(28, 28))
    with pytest.raises(ValueError, match="divisible by 4"):
        DCGAN(data_shape=(30, 28, 1))
    with pytest.raises(ValueError, match="network"):
        GAN(network="transformer")
    with pytest.raises(ValueError, match="network"):
        DCGAN(network="mlp")
    with pytest.raises(ValueError, match="filters"):
        GAN(filters=0)
