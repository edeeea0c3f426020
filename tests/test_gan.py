"""GAN: the minimax losses, both generator losses, k steps, two optimizers, the ring."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.models import GAN
from mp_keras.models.gan import discriminator_loss, generator_loss
from tests.harness import ring_distance, run_standard_checks, to_numpy


def small_gan(**kwargs):
    defaults = dict(
        data_shape=(2,), latent_dim=2, generator_units=(16,), discriminator_units=(16,), seed=0
    )
    return GAN(**{**defaults, **kwargs})


def test_standard_checks(tmp_path):
    x = data.load("ring", "train", num_examples=64).x
    noise = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    run_standard_checks(small_gan, x, (None, 2), tmp_path, call_input=noise)


def test_losses_match_the_value_function():
    sigmoid = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(6, 1)), rng.normal(size=(6, 1))
    value = np.mean(np.log(sigmoid(real))) + np.mean(np.log(1 - sigmoid(fake)))
    np.testing.assert_allclose(to_numpy(discriminator_loss(real, fake)), -value, rtol=1e-6)
    np.testing.assert_allclose(
        to_numpy(generator_loss(fake, "saturating")), np.mean(np.log(1 - sigmoid(fake))), rtol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(generator_loss(fake, "non_saturating")), -np.mean(np.log(sigmoid(fake))), rtol=1e-6
    )


def test_saturating_loss_vanishes_where_non_saturating_does_not():
    # Where D confidently rejects a sample (logit -10), d loss / d logit is
    # -sigmoid(l) ~ 5e-5 for the minimax loss but -(1 - sigmoid(l)) ~ -1 for the
    # non-saturating one (central finite differences).
    def slope(kind, logit, h=1e-2):
        up = to_numpy(generator_loss(np.array([[logit + h]], "float32"), kind))
        down = to_numpy(generator_loss(np.array([[logit - h]], "float32"), kind))
        return (up - down) / (2 * h)

    assert abs(slope("saturating", -10.0)) < 1e-3
    assert slope("non_saturating", -10.0) == pytest.approx(-1.0, abs=1e-3)


def test_phases_and_k_discriminator_steps():
    model = small_gan(discriminator_steps=3)
    d_phase, g_phase = model.phases()
    assert (d_phase.name, d_phase.repeat, g_phase.name, g_phase.repeat) == (
        "discriminator",
        3,
        "generator",
        1,
    )
    ids = lambda vs: {id(v) for v in vs}  # noqa: E731
    assert ids(d_phase.variables) == ids(model.discriminator.trainable_variables)
    assert ids(g_phase.variables) == ids(model.generator.trainable_variables)


@pytest.mark.parametrize("generator_loss_kind", ["non_saturating", "saturating"])
def test_ring_training_moves_samples_onto_the_modes(generator_loss_kind):
    keras.utils.set_random_seed(0)
    ring = data.load("ring", "train")
    centres = data.ring_centres()
    model = GAN(
        data_shape=(2,),
        latent_dim=2,
        discriminator_steps=2,
        generator_loss=generator_loss_kind,
        seed=0,
    )
    model.compile(
        optimizer={
            "discriminator": keras.optimizers.Adam(1e-3, beta_1=0.5),
            "generator": keras.optimizers.Adam(1e-3, beta_1=0.5),
        }
    )
    before = ring_distance(to_numpy(model.sample(1000, seed=1)), centres).mean()
    model.fit(ring.x, epochs=15, batch_size=128, verbose=0)
    samples = to_numpy(model.sample(1000, seed=1))
    after = ring_distance(samples, centres)
    radius = np.linalg.norm(samples, axis=1)
    assert after.mean() < 0.25 * before
    assert np.mean(np.abs(radius - 2.0) < 0.3) > 0.8  # on the ring
    assert len(np.unique(np.argmin(((samples[:, None] - centres) ** 2).sum(-1), 1))) >= 6


def test_both_optimizers_keep_and_update_their_slots():
    model = small_gan(discriminator_steps=2)
    model.compile(optimizer="adam")
    x = data.load("ring", "train", num_examples=256).x
    model.fit(x, epochs=1, batch_size=64, verbose=0)  # 4 steps; builds the slots
    slots = {
        opt.name: [to_numpy(v).copy() for v in opt.variables] for opt in model.optimizer.optimizers
    }
    model.fit(x, epochs=1, batch_size=64, verbose=0)
    for opt in model.optimizer.optimizers:
        after = [to_numpy(v) for v in opt.variables]
        for variable, a, b in zip(opt.variables, slots[opt.name], after):
            if "learning_rate" not in variable.path:  # iterations, momenta, velocities
                assert not np.array_equal(a, b), f"{opt.name}: {variable.path} did not move"
    iterations = {o.name: int(to_numpy(o.iterations)) for o in model.optimizer.optimizers}
    assert iterations == {"discriminator": 16, "generator": 8}


def test_bad_inputs():
    model = small_gan()
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="rank 2"):
        model.fit(np.zeros((8, 2, 1), "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        model.fit(np.zeros((8, 3), "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.full((8, 2), np.nan, "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="noise"):
        model(np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match="generator_loss"):
        GAN(generator_loss="wasserstein")


def test_discriminate_is_the_probability_of_real():
    model = small_gan()
    x = np.random.default_rng(2).normal(size=(5, 2)).astype("float32")
    logits = to_numpy(model.discriminator(x))[:, 0]
    expected = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(to_numpy(model.discriminate(x)), expected, rtol=1e-5)
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        model.discriminate(np.zeros((5, 3), "float32"))
