"""UnrolledGAN: k = 0 is the plain GAN, k > 0 changes the generator's step."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.models import GAN, UnrolledGAN
from tests.harness import run_standard_checks, to_numpy

# One-step fits: eager is faster on TF and PyTorch, jit faster on JAX (measured).
EAGER = keras.backend.backend() != "jax"
SMALL = dict(data_shape=(2,), latent_dim=2, generator_units=(8,), discriminator_units=(8,), seed=0)


def test_standard_checks(tmp_path):
    x = data.load("ring", "train", num_examples=32).x
    noise = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
    run_standard_checks(
        lambda: UnrolledGAN(unrolling_steps=2, **SMALL), x, (None, 2), tmp_path, call_input=noise
    )


def _weights_after_one_step(model):
    model.compile(optimizer="adam", run_eagerly=EAGER)  # one step: no tracing
    x = data.load("ring", "train", num_examples=32).x
    model.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0)
    return [to_numpy(v) for v in model.generator.trainable_variables]


def _fresh(cls, **kwargs):
    keras.utils.set_random_seed(0)  # same initial weights
    return cls(**SMALL, **kwargs)


def test_zero_steps_is_the_plain_gan_and_more_steps_differ():
    plain = _weights_after_one_step(_fresh(GAN))
    zero = _weights_after_one_step(_fresh(UnrolledGAN, unrolling_steps=0))
    for a, b in zip(plain, zero):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for optimizer in ("adam", "sgd"):
        unrolled = _weights_after_one_step(
            _fresh(
                UnrolledGAN, unrolling_steps=2, unroll_optimizer=optimizer, unroll_learning_rate=0.5
            )
        )
        assert max(np.abs(a - b).max() for a, b in zip(plain, unrolled)) > 1e-6


def test_unrolling_leaves_the_discriminator_alone():
    model = _fresh(UnrolledGAN, unrolling_steps=3)
    before = [to_numpy(v) for v in model.discriminator.trainable_variables]
    x = data.load("ring", "train", num_examples=8).x
    fake = to_numpy(model.sample(8, seed=1))
    values = model.unrolled_values(x, fake)
    after = [to_numpy(v) for v in model.discriminator.trainable_variables]
    for a, b, v in zip(before, after, values):
        np.testing.assert_array_equal(a, b)
        assert to_numpy(v).shape == a.shape and not np.allclose(to_numpy(v), a)


def test_dcgan_networks():
    model = UnrolledGAN(
        data_shape=(8, 8, 1), latent_dim=2, network="dcgan", filters=2, unrolling_steps=1, seed=0
    )
    model.compile(run_eagerly=EAGER)
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    history = model.fit(x, epochs=1, batch_size=4, verbose=0).history
    assert np.isfinite(history["g_loss"][-1])


def test_bad_inputs():
    with pytest.raises(ValueError, match="unrolling_steps"):
        UnrolledGAN(unrolling_steps=-1)
    with pytest.raises(ValueError, match="unroll_optimizer"):
        UnrolledGAN(unroll_optimizer="rmsprop")
    with pytest.raises(ValueError, match="unroll_learning_rate"):
        UnrolledGAN(unroll_learning_rate=0.0)
