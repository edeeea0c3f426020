"""WGAN and WGAN-GP: weight clipping, the gradient penalty, DCGAN networks."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.models import WGAN, WGANGP
from mp_keras.models.wgan import WeightClip
from tests.harness import run_standard_checks, to_numpy

# One-step fits: eager is faster on TF and PyTorch, jit faster on JAX (measured).
EAGER = keras.backend.backend() != "jax"
SMALL = dict(data_shape=(2,), latent_dim=2, generator_units=(8,), discriminator_units=(8,), seed=0)


@pytest.mark.parametrize("cls", [WGAN, WGANGP])
def test_standard_checks(cls, tmp_path):
    x = data.load("ring", "train", num_examples=32).x
    noise = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
    run_standard_checks(
        lambda: cls(discriminator_steps=2, **SMALL), x, (None, 2), tmp_path, call_input=noise
    )


def test_clipping_keeps_every_critic_weight_in_bounds():
    model = WGAN(clip_value=0.05, discriminator_steps=2, **SMALL)
    model.compile(optimizer=keras.optimizers.RMSprop(0.5))  # big steps hit the bound
    x = data.load("ring", "train", num_examples=64).x
    for _ in range(2):
        model.fit(x, epochs=1, batch_size=32, verbose=0)
        weights = [to_numpy(v) for v in model.discriminator.trainable_variables]
        assert all(np.all(np.abs(w) <= 0.05 + 1e-7) for w in weights)
    assert max(np.abs(w).max() for w in weights) == pytest.approx(0.05)
    assert any(np.abs(to_numpy(v)).max() > 0.05 for v in model.generator.trainable_variables)


def test_wasserstein_losses_and_default_optimizers():
    model = WGAN(**SMALL)
    assert model.discriminator_steps == 5
    model.compile()
    opt = model.optimizer_for("discriminator")
    assert isinstance(opt, keras.optimizers.RMSprop)
    assert float(to_numpy(opt.learning_rate)) == pytest.approx(5e-5)
    logits = np.array([[1.0], [3.0]], "float32")
    assert float(to_numpy(model.adversarial_loss(logits))) == pytest.approx(-2.0)
    gp = WGANGP(**SMALL)
    gp.compile()
    adam = gp.optimizer_for("generator")
    assert (float(to_numpy(adam.learning_rate)), adam.beta_1, adam.beta_2) == pytest.approx(
        (1e-4, 0.0, 0.9)
    )


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = w.x + b has gradient w at every x_hat: penalty (||w|| - 1)^2.
    model = WGANGP(data_shape=(3,), latent_dim=2, generator_units=(4,), discriminator_units=())
    kernel, bias = model.discriminator.trainable_variables
    w = np.array([[2.0], [-1.0], [0.5]], "float32")
    kernel.assign(w)
    bias.assign(np.array([0.3], "float32"))
    rng = np.random.default_rng(0)
    x, fake = rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(5, 3)).astype("float32")
    expected = (np.linalg.norm(w) - 1.0) ** 2
    np.testing.assert_allclose(to_numpy(model.gradient_penalty(x, fake)), expected, rtol=1e-5)
    loss, logs = model.critic_loss(x, fake, training=True)
    estimate = np.mean(x @ w) - np.mean(fake @ w)
    np.testing.assert_allclose(to_numpy(logs["wasserstein"]), estimate, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(loss), -estimate + 10 * expected, rtol=1e-5)


def test_zero_critic_gives_finite_loss_and_gradients():
    model = WGANGP(data_shape=(2,), latent_dim=2, generator_units=(4,), discriminator_units=())
    for v in model.discriminator.trainable_variables:
        v.assign(np.zeros(v.shape, "float32"))
    x = data.load("ring", "train", num_examples=16).x
    assert float(to_numpy(model.gradient_penalty(x, x[::-1]))) == pytest.approx(1.0, abs=1e-5)
    model.compile(optimizer="sgd", run_eagerly=EAGER)
    history = model.fit(x, epochs=1, batch_size=16, verbose=0).history
    assert np.isfinite(history["d_loss"][-1]) and np.isfinite(history["gradient_penalty"][-1])
    kernel, bias = (to_numpy(v) for v in model.discriminator.trainable_variables)
    assert np.all(np.isfinite(kernel)) and np.any(kernel != 0)  # it moved, no NaN
    assert np.all(np.isfinite(bias))  # the bias cancels in mean D(x) - mean D(fake)


def test_dcgan_networks():
    # WGAN-GP: double back-propagation through the convolutions; WGAN shares the networks.
    assert WGAN(data_shape=(8, 8, 1), network="dcgan", filters=2).network == "dcgan"
    model = WGANGP(
        data_shape=(8, 8, 1), latent_dim=2, network="dcgan", filters=2, discriminator_steps=1
    )
    model.compile(run_eagerly=EAGER)  # one step: no tracing
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    history = model.fit(x, epochs=1, batch_size=4, verbose=0).history
    assert np.isfinite(history["wasserstein"][-1])
    assert tuple(model.sample(2, seed=1).shape) == (2, 8, 8, 1)


def test_bad_inputs():
    with pytest.raises(ValueError, match="clip_value"):
        WGAN(clip_value=0.0, **SMALL)
    with pytest.raises(ValueError, match="clip_value"):
        WeightClip(-1.0)
    with pytest.raises(ValueError, match="penalty_weight"):
        WGANGP(penalty_weight=-1.0, **SMALL)
    with pytest.raises(ValueError, match="network"):
        WGAN(network="resnet")
    with pytest.raises(ValueError, match=r"divisible by 4"):
        WGANGP(data_shape=(6, 8, 1), network="dcgan")
