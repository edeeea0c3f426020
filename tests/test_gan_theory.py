"""GAN theory (notes, 8.1): D*, V(G, D*) = 2 JSD - log 4, JS against W1, the bilinear game."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mp_keras.tools.gan_theory import (
    GaussianMixture1D,
    alternating_gradient_play,
    alternating_invariant,
    discriminator_error,
    evaluation_grid,
    generator_gradient,
    jensen_shannon,
    optimal_discriminator,
    shift_curves,
    simultaneous_gradient_play,
    train_discriminator,
    value_at_optimum,
    wasserstein1,
    wasserstein1_from_samples,
)


def test_mixture_pdf_integrates_to_one_and_samples_match_it():
    p = GaussianMixture1D([-2.0, 1.0], [0.5, 1.0], weights=[1.0, 3.0])
    x = np.linspace(-10, 10, 20001)
    assert abs(p.pdf(x).sum() * (x[1] - x[0]) - 1.0) < 1e-9
    assert abs(p.cdf(np.array([30.0]))[0] - 1.0) < 1e-12
    samples = p.sample(20000, seed=0)
    assert abs(samples.mean() - (0.25 * -2.0 + 0.75 * 1.0)) < 0.03
    np.testing.assert_array_equal(samples[:5], p.sample(20000, seed=0)[:5])  # seeded


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="stds must be > 0"):
        GaussianMixture1D([0.0], [0.0])
    with pytest.raises(ValueError, match="one length"):
        GaussianMixture1D([0.0, 1.0], 1.0, weights=[1.0])
    with pytest.raises(ValueError, match="GaussianMixture1D"):
        optimal_discriminator(GaussianMixture1D(0.0, 1.0), "normal", np.zeros(1))
    with pytest.raises(ValueError, match="eta > 0"):
        simultaneous_gradient_play(eta=0.0)
    with pytest.raises(ValueError, match="one size"):
        wasserstein1_from_samples(np.zeros(3), np.zeros(4))


def test_optimal_discriminator_is_the_posterior():
    p, q = GaussianMixture1D([-1.0, 2.0], 0.7), GaussianMixture1D(0.5, 1.5)
    x = np.linspace(-4, 5, 101)
    expected = p.pdf(x) / (p.pdf(x) + q.pdf(x))
    np.testing.assert_allclose(optimal_discriminator(p, q, x), expected, rtol=1e-12)
    # Far in the tails both densities underflow; the log-space form still gives D* = 1.
    assert optimal_discriminator(GaussianMixture1D(0.0, 0.01), GaussianMixture1D(1.0, 0.01),
                                 np.array([-50.0]))[0] == 1.0  # fmt: skip


def test_trained_discriminator_reaches_the_optimal_one():
    # Two overlapping Gaussians: D*(x) = sigmoid(1/2 - x).
    p, q = GaussianMixture1D(0.0, 1.0), GaussianMixture1D(1.0, 1.0)
    model = train_discriminator(p, q, num_samples=4096, epochs=20, seed=0)
    error = discriminator_error(model, p, q, evaluation_grid(p, q))
    assert error < 0.05, error


@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (1.0, 1.0), (0.3, 2.0), (-3.0, 0.5)])
def test_value_at_optimum_is_two_jsd_minus_log4(mean, std):
    p_data = GaussianMixture1D([-1.0, 1.5], [0.6, 0.8], weights=[0.4, 0.6])
    p_model = GaussianMixture1D(mean, std)
    jsd = jensen_shannon(p_data, p_model)
    assert 0.0 < jsd < math.log(2.0)
    assert abs(value_at_optimum(p_data, p_model) - (2 * jsd - math.log(4.0))) < 1e-9


def test_value_at_optimum_is_minus_log4_when_model_equals_data():
    p_data = GaussianMixture1D([-1.0, 1.5], [0.6, 0.8], weights=[0.4, 0.6])
    p_model = GaussianMixture1D([-1.0, 1.5], [0.6, 0.8], weights=[0.4, 0.6])
    assert abs(value_at_optimum(p_data, p_model) + math.log(4.0)) < 1e-6
    assert abs(jensen_shannon(p_data, p_model)) < 1e-9


def test_js_gradient_vanishes_while_wasserstein_gradient_stays_one():
    s = 0.05
    curves = shift_curves([s, 2 * s, 10 * s], std=s, num_samples=2048, seed=0)
    near, far = curves["value_grad"][0], curves["value_grad"][-1]
    assert near > 1.0 and abs(far) < 1e-3 * near, (near, far)
    assert abs(curves["jsd"][-1] - math.log(2.0)) < 1e-5  # saturated: disjoint supports
    np.testing.assert_allclose(curves["w1"], curves["theta"], rtol=1e-6)  # W1 = |theta|
    np.testing.assert_allclose(curves["w1_grad"], 1.0, atol=1e-4)
    np.testing.assert_allclose(curves["w1_samples"], curves["theta"], atol=0.1 * s)


def test_generator_gradient_matches_finite_differences_of_the_value():
    s, theta, h = 0.05, 0.07, 1e-4
    value = lambda t: value_at_optimum(GaussianMixture1D(0.0, s), GaussianMixture1D(t, s))  # noqa: E731
    numeric = (value(theta + h) - value(theta - h)) / (2 * h)
    assert abs(generator_gradient(theta, s) - numeric) < 1e-4 * abs(numeric)


def test_wasserstein_of_mixtures_agrees_with_samples():
    p, q = GaussianMixture1D([-1.0, 1.0], 0.3), GaussianMixture1D(0.5, 0.5)
    estimate = wasserstein1_from_samples(p.sample(20000, seed=0), q.sample(20000, seed=1))
    assert abs(wasserstein1(p, q) - estimate) < 0.02


@pytest.mark.parametrize("eta", [0.05, 0.3, 1.0])
def test_simultaneous_steps_spiral_out_by_sqrt_one_plus_eta_squared(eta):
    path = simultaneous_gradient_play(1.0, 0.5, eta=eta, steps=50)
    radius = np.hypot(path[:, 0], path[:, 1])
    np.testing.assert_allclose(radius[1:] / radius[:-1], math.sqrt(1 + eta**2), rtol=1e-12)


@pytest.mark.parametrize("eta", [0.05, 0.3, 1.0])
def test_alternating_steps_stay_on_a_bounded_orbit(eta):
    path = alternating_gradient_play(1.0, 0.5, eta=eta, steps=2000)
    invariant = alternating_invariant(path, eta)
    np.testing.assert_allclose(invariant, invariant[0], rtol=1e-10)
    radius = np.hypot(path[:, 0], path[:, 1])
    # The orbit is the ellipse Q = const, whose semi-axes are sqrt(Q / (1 -+ eta / 2)).
    assert radius.max() <= math.sqrt(invariant[0] / (1 - eta / 2)) * (1 + 1e-9)
    assert radius.min() >= math.sqrt(invariant[0] / (1 + eta / 2)) * (1 - 1e-9)
    assert radius.max() < 2 * radius[0]  # while simultaneous steps grow without bound
