"""VAE: the ELBO's pieces against their formulas, training, seeds and input checks."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.models import VAE
from tests.harness import run_standard_checks, to_numpy


@pytest.fixture(scope="module")
def digits():
    return data.load("digits_binarized", "train").x


def small_vae(**kwargs):
    defaults = dict(input_shape=(8, 8, 1), latent_dim=2, hidden_units=(32,), seed=0)
    return VAE(**{**defaults, **kwargs})


def test_standard_checks(digits, tmp_path):
    model = run_standard_checks(small_vae, digits[:64], (None, 8, 8, 1), tmp_path)
    mean, log_var = model.encode(digits[:5])
    assert to_numpy(mean).shape == to_numpy(log_var).shape == (5, 2)
    assert to_numpy(model.decode(np.zeros((3, 2), "float32"))).shape == (3, 8, 8, 1)


def test_kl_closed_form_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(4, 3)).astype("float32")
    log_var = rng.normal(scale=0.5, size=(4, 3)).astype("float32")
    closed = to_numpy(VAE.kl_divergence(mean, log_var))
    # KL = E_q[log q(z) - log p(z)], estimated with 200k draws per example.
    std = np.exp(0.5 * log_var)
    z = mean + std * rng.normal(size=(200_000, 4, 3))
    log_q = -0.5 * (((z - mean) / std) ** 2 + log_var + math.log(2 * math.pi))
    log_p = -0.5 * (z**2 + math.log(2 * math.pi))
    monte_carlo = (log_q - log_p).sum(-1).mean(0)
    np.testing.assert_allclose(closed, monte_carlo, rtol=0.02, atol=0.01)
    np.testing.assert_allclose(to_numpy(VAE.kl_divergence(np.zeros((2, 3)), np.zeros((2, 3)))), 0)


def test_likelihoods_match_their_densities():
    rng = np.random.default_rng(1)
    x = (rng.random((5, 8, 8, 1)) > 0.5).astype("float32")
    logits = rng.normal(size=(5, 8, 8, 1)).astype("float32")
    p = 1 / (1 + np.exp(-logits))
    bernoulli = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(5, -1).sum(-1)
    np.testing.assert_allclose(
        to_numpy(small_vae().negative_log_likelihood(x, logits)), bernoulli, rtol=1e-5
    )
    sigma = 0.3
    gaussian = small_vae(likelihood="gaussian", observation_std=sigma)
    x = rng.random((5, 8, 8, 1)).astype("float32")
    density = np.exp(-((x - logits) ** 2) / (2 * sigma**2)) / np.sqrt(2 * np.pi * sigma**2)
    np.testing.assert_allclose(
        to_numpy(gaussian.negative_log_likelihood(x, logits)),
        -np.log(density).reshape(5, -1).sum(-1),
        rtol=1e-4,
    )


def test_reparameterisation_draws_from_the_posterior():
    model = small_vae()
    mean = np.full((50_000, 2), [1.0, -2.0], "float32")
    log_var = np.full((50_000, 2), np.log([0.25, 4.0]), "float32")
    z = to_numpy(model.reparameterize(mean, log_var, seed=3))
    np.testing.assert_allclose(z.mean(0), [1.0, -2.0], atol=0.03)
    np.testing.assert_allclose(z.std(0), [0.5, 2.0], rtol=0.02)


def test_training_raises_the_elbo(digits):
    keras.utils.set_random_seed(0)
    model = VAE(input_shape=(8, 8, 1), latent_dim=4, hidden_units=(128,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    history = model.fit(digits, epochs=12, batch_size=64, verbose=0).history
    assert history["elbo"][-1] > history["elbo"][0] + 10  # nats per 8x8 image
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    for a, b, c in zip(history["elbo"], history["reconstruction"], history["kl"]):
        assert a == pytest.approx(-(b + c), rel=1e-4)
    assert min(history["kl"]) >= 0


def test_same_seed_same_losses(digits):
    def run():
        keras.utils.set_random_seed(7)
        model = small_vae(seed=7)
        model.compile(optimizer="adam")
        return model.fit(digits[:256], epochs=2, batch_size=64, verbose=0).history["loss"]

    assert run() == run()


def test_gaussian_decoder_trains_on_grey_levels():
    x = data.load("digits", "train").x[:512]
    model = small_vae(likelihood="gaussian")
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    history = model.fit(x, epochs=5, batch_size=64, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]


def test_sample_is_seeded():
    model = small_vae()
    a, b = to_numpy(model.sample(4, seed=5)), to_numpy(model.sample(4, seed=5))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 8, 8, 1) and ((a >= 0) & (a <= 1)).all()


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((4, 64), "float32"), "rank 4"),
        (np.zeros((4, 8, 7, 1), "float32"), r"shape \(batch, 8, 8, 1\)"),
        (np.full((4, 8, 8, 1), 0.5, "float32"), "binary inputs"),
        (np.where(np.eye(8)[None, :, :, None] > 0, np.nan, 0).astype("float32"), "finite"),
    ],
)
def test_bad_inputs_raise_value_error(x, message):
    model = small_vae()
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=message):
        model.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=message):
        model.validate_data(x)


def test_bad_arguments():
    with pytest.raises(ValueError, match="likelihood"):
        VAE(likelihood="poisson")
    with pytest.raises(ValueError, match="latents"):
        small_vae().decode(np.zeros((2, 3), "float32"))


def _exact_log_prob(model, x):
    """log p(x) = log of the integral of p(x|z) N(z; 0, 1) dz, by quadrature (1-D latent)."""
    z = np.linspace(-8, 8, 4001, dtype="float32")[:, None]
    log_px_z = -to_numpy(
        model.negative_log_likelihood(
            np.repeat(x[:, None], len(z), 1).reshape(-1, *x.shape[1:]),
            model.decoder(np.tile(z, (len(x), 1))),
        )
    ).reshape(len(x), len(z))
    log_joint = log_px_z - 0.5 * (z[:, 0] ** 2 + math.log(2 * math.pi))
    peak = log_joint.max(1, keepdims=True)
    return peak[:, 0] + np.log(np.trapezoid(np.exp(log_joint - peak), z[:, 0], axis=1))


def test_importance_weighted_bound_tightens_to_the_exact_likelihood():
    model = small_vae(input_shape=(3,), latent_dim=1, hidden_units=(8,))
    from tests.harness import randomize_weights

    randomize_weights(model, seed=2, scale=1.0)
    # q(z|x) = N(0.2, 1.2^2) for every x: not the posterior, but broader than the prior,
    # so the importance weights are bounded and K = 3000 draws are accurate.
    model.encoder.layers[-1].kernel.assign(np.zeros((8, 2), "float32"))
    model.encoder.layers[-1].bias.assign(np.array([0.2, np.log(1.44)], "float32"))
    x = np.array([[0, 1, 1], [1, 0, 0], [1, 1, 1]], "float32")
    exact = _exact_log_prob(model, x)
    bounds = {k: to_numpy(model.log_prob(x, num_samples=k, seed=4)) for k in (1, 10, 3000)}
    assert bounds[1].shape == (3,)
    np.testing.assert_allclose(bounds[3000], exact, atol=0.05)
    many = np.repeat(x, 8000, axis=0)  # independent bounds per example

    def mean_bound(k, copies):
        bounds = model.log_prob(np.repeat(x, copies, axis=0), num_samples=k, seed=5)
        return to_numpy(bounds).reshape(3, -1).mean(1)

    one, ten = mean_bound(1, 8000), mean_bound(10, 2000)
    assert (one < ten).all() and (ten < exact + 0.01).all()  # E[L_1] <= E[L_10] <= log p(x)
    # K = 1 is the ELBO: the same expectation as elbo(x), whose KL is in closed form.
    np.testing.assert_allclose(one, to_numpy(model.elbo(many)).reshape(3, -1).mean(1), atol=0.12)


def test_density_metrics_report_nll_and_elbo(digits):
    model = small_vae()
    metrics = model.density_metrics(digits[:20], num_samples=50)
    assert set(metrics) == {"nll", "bits_per_dim", "elbo"}
    assert metrics["nll"] <= -metrics["elbo"] + 0.5  # the IWAE bound is the tighter one
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll"] / (64 * math.log(2)))


def test_capacity_form_holds_the_kl_near_its_target(digits):
    keras.utils.set_random_seed(0)
    model = small_vae(latent_dim=4, hidden_units=(64,), beta=20.0, kl_target=3.0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    kl = model.fit(digits, epochs=8, batch_size=64, verbose=0).history["kl"]
    assert abs(kl[-1] - 3.0) < 1.0, kl
    free = small_vae(latent_dim=4, hidden_units=(64,), beta=20.0)
    free.compile(optimizer=keras.optimizers.Adam(3e-3))
    assert free.fit(digits, epochs=8, batch_size=64, verbose=0).history["kl"][-1] < 1.0
    with pytest.raises(ValueError, match="kl_target"):
        small_vae(kl_target=-1.0)
