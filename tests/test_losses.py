"""Losses as likelihoods: Keras' losses vs. the NLLs, and L2 weight decay as MAP."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from mp_keras.engine import value_and_gradients
from mp_keras.losses import bernoulli_nll, gaussian_nll, l2_for_gaussian_prior, laplace_nll
from tests.harness import to_numpy

RNG = np.random.default_rng(0)
Y_REAL = RNG.normal(size=(6, 3)).astype("float32")
MU = RNG.normal(size=(6, 3)).astype("float32")
Y_BIN = (RNG.random((6, 3)) > 0.5).astype("float32")
LOGITS = RNG.normal(scale=2.0, size=(6, 3)).astype("float32")
D = 3


def _keras(loss, y, out):
    return to_numpy(loss(reduction=None)(y, out))


def test_bce_is_the_bernoulli_nll():
    p = 1.0 / (1.0 + np.exp(-LOGITS.astype(np.float64)))
    numpy_nll = -(Y_BIN * np.log(p) + (1 - Y_BIN) * np.log(1 - p)).sum(1)
    from_p = to_numpy(bernoulli_nll(Y_BIN, p.astype("float32")))
    from_logits = to_numpy(bernoulli_nll(Y_BIN, LOGITS, from_logits=True))
    np.testing.assert_allclose(from_p, numpy_nll, rtol=1e-5)
    np.testing.assert_allclose(from_logits, numpy_nll, rtol=1e-5)
    bce = keras.losses.BinaryCrossentropy
    np.testing.assert_allclose(from_p / D, _keras(bce, Y_BIN, p.astype("float32")), rtol=1e-5)
    np.testing.assert_allclose(
        from_logits / D, to_numpy(bce(from_logits=True, reduction=None)(Y_BIN, LOGITS)), rtol=1e-5
    )


def test_bernoulli_from_logits_is_stable_and_has_the_textbook_gradient():
    big = np.array([[80.0, -80.0]], "float32")
    nll = to_numpy(bernoulli_nll(np.array([[0.0, 1.0]], "float32"), big, from_logits=True))
    np.testing.assert_allclose(nll, [160.0], rtol=1e-6)  # -log sigmoid(-80) = 80, twice
    _, (grad,) = value_and_gradients(
        lambda logits: keras.ops.sum(bernoulli_nll(Y_BIN, logits, from_logits=True)), [LOGITS]
    )
    np.testing.assert_allclose(grad, 1.0 / (1.0 + np.exp(-LOGITS)) - Y_BIN, atol=1e-6)


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
def test_mse_is_a_scaled_gaussian_nll(sigma):
    nll = to_numpy(gaussian_nll(Y_REAL, MU, std=sigma))
    log_density = -0.5 * np.log(2 * np.pi * sigma**2) - (Y_REAL - MU) ** 2 / (2 * sigma**2)
    np.testing.assert_allclose(nll, -log_density.sum(1), rtol=1e-5)
    mse = _keras(keras.losses.MeanSquaredError, Y_REAL, MU)
    # Per value: MSE = (2 sigma^2) * NLL - sigma^2 log(2 pi sigma^2).
    per_value = nll / D
    np.testing.assert_allclose(
        2 * sigma**2 * per_value - sigma**2 * math.log(2 * math.pi * sigma**2), mse, rtol=1e-4
    )
    np.testing.assert_allclose(
        per_value, mse / (2 * sigma**2) + 0.5 * math.log(2 * math.pi * sigma**2), rtol=1e-5
    )


@pytest.mark.parametrize("b", [0.2, 1.0, 3.0])
def test_mae_is_a_scaled_laplace_nll(b):
    nll = to_numpy(laplace_nll(Y_REAL, MU, scale=b))
    log_density = -np.log(2 * b) - np.abs(Y_REAL - MU) / b
    np.testing.assert_allclose(nll, -log_density.sum(1), rtol=1e-5)
    mae = _keras(keras.losses.MeanAbsoluteError, Y_REAL, MU)
    np.testing.assert_allclose(b * (nll / D - math.log(2 * b)), mae, rtol=1e-4, atol=1e-6)


def test_nlls_are_normalised_densities():
    """exp(-NLL) integrates to 1 over y: the constants are right, not just the slopes."""
    grid = np.linspace(-30.0, 30.0, 600_001, dtype="float32")
    step = 60.0 / 600_000  # not grid[1] - grid[0]: float32 rounding near -30 is ~1%
    zeros = np.zeros_like(grid)
    for nll in (gaussian_nll(grid, zeros + 0.7, std=1.3), laplace_nll(grid, zeros - 0.4, 2.0)):
        assert np.exp(-to_numpy(nll).astype(np.float64)).sum() * step == pytest.approx(1.0, 1e-4)
    # A Bernoulli sums to 1 over y in {0, 1}.
    p = np.full((1,), 0.3, "float32")
    total = sum(np.exp(-to_numpy(bernoulli_nll(np.full((1,), v, "float32"), p))) for v in (0, 1))
    np.testing.assert_allclose(total, [1.0], rtol=1e-6)


def test_per_example_shapes_and_heteroscedastic_std():
    images = RNG.random((4, 5, 5, 1)).astype("float32")
    assert to_numpy(bernoulli_nll(images > 0.5, images)).shape == (4,)
    std = np.array([[0.5], [2.0]], "float32")  # one sigma per example, broadcast
    y, mu = Y_REAL[:2], MU[:2]
    expected = ((y - mu) ** 2 / (2 * std**2) + np.log(std) + 0.5 * np.log(2 * np.pi)).sum(1)
    np.testing.assert_allclose(to_numpy(gaussian_nll(y, mu, std)), expected, rtol=1e-5)


def test_l2_weight_decay_is_map_with_a_gaussian_prior():
    rng = np.random.default_rng(1)
    n, d, sigma, tau = 64, 3, 0.5, 0.3
    x = (rng.normal(size=(n, d)) + 0.5).astype("float32")
    w_true = np.array([1.0, -2.0, 0.5])
    y = (x @ w_true + 0.7 + sigma * rng.normal(size=n)).astype("float32")

    # MAP with prior N(0, tau^2 I) on w and a flat prior on the bias: ridge regression on
    # centred data, then the bias from the means.
    xc, yc = x - x.mean(0), y - y.mean()
    w_map = np.linalg.solve(xc.T @ xc + (sigma**2 / tau**2) * np.eye(d), xc.T @ yc)
    b_map = y.mean() - x.mean(0) @ w_map
    w_ml = np.linalg.lstsq(xc, yc, rcond=None)[0]
    assert np.abs(w_map - w_ml).max() > 0.05  # the prior matters here: the test can fail

    lam = l2_for_gaussian_prior(noise_std=sigma, prior_std=tau, num_examples=n)
    assert lam == pytest.approx(sigma**2 / (n * tau**2))
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((d,)), keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L2(lam))]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.4), loss="mse")
    # Plain full-batch gradient descent, 100 steps: each batch of n is the whole data set
    # (the tiling only saves the per-epoch overhead).
    repeats = 20
    model.fit(
        np.tile(x, (repeats, 1)),
        np.tile(y, repeats)[:, None],
        batch_size=n,
        epochs=5,
        shuffle=False,
        verbose=0,
    )
    kernel, bias = (to_numpy(v) for v in model.layers[0].weights)
    np.testing.assert_allclose(kernel[:, 0], w_map, atol=1e-3)
    np.testing.assert_allclose(bias[0], b_map, atol=1e-3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="prior_std"):
        l2_for_gaussian_prior(1.0, 0.0, 10)
    with pytest.raises(ValueError, match="num_examples"):
        l2_for_gaussian_prior(1.0, 1.0, 0)
