"""VRNN and C-VRNN: the closed-form KL, the bounds, training, sampling, routing, export.

Every model here has the same tiny size (5 steps of 2 features, 2 latents, 8 units) where
it can, so that a backend that compiles per shape (JAX) compiles each function once.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from mp_keras.data.strokes import render_strokes
from mp_keras.export import export_model
from mp_keras.layers.vrnn_cell import VRNNCell
from mp_keras.models.cvrnn import CVRNN
from mp_keras.models.vrnn import VRNN, gaussian_kl, gaussian_log_density
from tests.harness import export_test_on, randomize_weights, run_standard_checks, to_numpy

T, F = 5, 2
SIZE = dict(latent_dim=2, units=8, hidden_units=(8,), seed=0)


def waves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points going round the unit circle from a random phase; the label is the direction."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    omega = np.where(labels == 0, 0.8, -0.8)[:, None]
    angle = omega * np.arange(T)[None] + rng.uniform(0, 2 * np.pi, (n, 1))
    x = np.stack([np.cos(angle), np.sin(angle)], -1) + 0.05 * rng.normal(size=(n, T, F))
    return x.astype("float32"), labels.astype("int32")


def packed(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The single-array input of CVRNN.call: the label as a last column."""
    column = np.repeat(labels[:, None, None], x.shape[1], axis=1).astype("float32")
    return np.concatenate([x, column], axis=-1)


def test_vrnn_standard_checks_training_and_seeded_samples(tmp_path):
    keras.utils.set_random_seed(0)
    x, _ = waves(16)
    model = run_standard_checks(lambda: VRNN(T, F, **SIZE), x, (None, T, F), tmp_path)
    model.optimizer.learning_rate.assign(2e-2)
    history = model.fit(x, epochs=40, batch_size=8, verbose=0).history  # same batch shape
    assert history["loss"][-1] < history["loss"][0] - 4.0, history["loss"][::5]
    np.testing.assert_allclose(  # loss = reconstruction + KL = -ELBO, per sequence
        np.add(history["reconstruction"], history["kl"]), history["loss"], rtol=1e-4
    )
    assert min(history["kl"]) >= 0.0
    # Every call below has the shapes of the ones above: compiled once (JAX).
    first, again = (to_numpy(model.sample(16, seed=7)) for _ in range(2))
    np.testing.assert_array_equal(first, again)
    other = to_numpy(model.sample(16, seed=8))
    assert first.shape == (16, T, F) and np.abs(first - other).max() > 1e-3
    assert to_numpy(model.sample(16, 7, length=2 * T)).shape == (16, 2 * T, F)
    rows = model.figure_rows(x, seed=7)  # what `mp-keras train` draws: pen paths
    assert {name: v.shape for name, v in rows.items()} == dict.fromkeys(
        ("samples", "inputs", "reconstructions"), (16, 28, 28)
    )
    np.testing.assert_allclose(rows["samples"], render_strokes(first), atol=1e-6)


def test_cvrnn_standard_checks_and_conditional_routing(tmp_path):
    keras.utils.set_random_seed(0)
    x, y = waves(16)
    model = run_standard_checks(
        lambda: CVRNN(T, F, num_classes=2, **SIZE),
        x,
        (None, T, F),
        tmp_path,
        y=y,
        call_input=packed(x, y),
    )
    np.testing.assert_allclose(to_numpy(model(packed(x, y))), to_numpy(model(x, condition=y)))
    model.optimizer.learning_rate.assign(2e-2)
    history = model.fit(x, y, epochs=40, batch_size=8, verbose=0).history
    assert history["loss"][-1] < history["loss"][0] - 4.0, history["loss"][::5]

    # The label is read: other labels, other samples (same noise) and other likelihoods.
    labels = np.arange(8) % 2
    samples = to_numpy(model.sample(8, seed=3, condition=labels))
    np.testing.assert_array_equal(samples, to_numpy(model.sample(8, seed=3, condition=labels)))
    flipped = to_numpy(model.sample(8, seed=3, condition=1 - labels))
    rows = model.figure_rows(x[:8], seed=3)  # the classes in turn, no reconstructions
    assert list(rows) == ["samples"]
    np.testing.assert_allclose(rows["samples"], render_strokes(samples), atol=1e-6)
    assert np.abs(samples - flipped).mean() > 0.05
    points, turns = np.concatenate([samples, flipped]), np.concatenate([labels, 1 - labels])
    cross = points[:, :-1, 0] * points[:, 1:, 1] - points[:, :-1, 1] * points[:, 1:, 0]
    assert np.mean((cross.mean(axis=1) < 0) == (turns == 1)) >= 0.8  # 1 turns clockwise
    right = to_numpy(model.log_prob(x, num_samples=4, seed=1, condition=y))
    wrong = to_numpy(model.log_prob(x, num_samples=4, seed=1, condition=1 - y))
    assert right.mean() > wrong.mean() + 1.0  # trained: the true direction explains x best


def test_gaussian_kl_matches_monte_carlo_and_the_standard_normal_case():
    rng = np.random.default_rng(0)
    mu_q, mu_p = rng.normal(size=(2, 4, 3)).astype("float32")
    logvar_q, logvar_p = rng.normal(scale=0.5, size=(2, 4, 3)).astype("float32")
    closed = to_numpy(gaussian_kl(mu_q, logvar_q, mu_p, logvar_p))
    z = (mu_q + np.exp(0.5 * logvar_q) * rng.normal(size=(200_000, 4, 3))).astype("float32")
    log_q = to_numpy(gaussian_log_density(z, mu_q, logvar_q))
    log_p = to_numpy(gaussian_log_density(z, mu_p, logvar_p))
    np.testing.assert_allclose(closed, (log_q - log_p).mean(0), rtol=0.02, atol=0.01)
    # Against N(0, I): the VAE's 1/2 sum(sigma^2 + mu^2 - 1 - log sigma^2); zero for p = q.
    zeros = np.zeros_like(mu_q)
    standard = 0.5 * (np.exp(logvar_q) + mu_q**2 - 1 - logvar_q).sum(-1)
    np.testing.assert_allclose(to_numpy(gaussian_kl(mu_q, logvar_q, zeros, zeros)), standard, 1e-5)
    np.testing.assert_allclose(to_numpy(gaussian_kl(mu_q, logvar_q, mu_q, logvar_q)), 0, atol=1e-6)
    one = np.array([[0.5]], "float32")  # log N(0.5; 0, 1) by hand
    expected = -0.5 * (math.log(2 * math.pi) + 0.25)
    assert abs(float(to_numpy(gaussian_log_density(one, 0 * one, 0 * one))[0]) - expected) < 1e-6


def test_bounds_elbo_below_iwae_and_a_normalised_bernoulli_gru():
    # 2 steps of 2 binary features: all 16 sequences can be listed. exp(log_prob) with many
    # importance samples estimates p(x) without bias, so it sums to 1; the ELBO (averaged
    # over 512 draws) stays below it.
    model = VRNN(2, 2, cell="gru", likelihood="bernoulli", **SIZE)
    assert model.vrnn_cell.state_size == 8  # a GRU's state is h alone
    randomize_weights(model, scale=0.3)
    every = np.array(np.meshgrid(*[[0.0, 1.0]] * 4)).reshape(4, -1).T.reshape(16, 2, 2)
    every = every.astype("float32")
    iwae = to_numpy(model.log_prob(every, num_samples=4096, seed=0)).astype("float64")
    assert abs(np.exp(iwae).sum() - 1.0) < 0.02, np.exp(iwae).sum()
    elbo = to_numpy(model.elbo(np.tile(every, (512, 1, 1)), seed=1)).reshape(512, 16).mean(0)
    assert (elbo < iwae - 1e-3).all() and np.exp(elbo).sum() < 0.98
    samples = to_numpy(model.sample(64, seed=0))
    assert set(np.unique(samples)) == {0.0, 1.0}
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        model.nll(every * 0.5)


def test_the_exported_step_reproduces_sampling_with_posterior_feedback():
    model = CVRNN(T, F, num_classes=3, **SIZE)
    randomize_weights(model, scale=0.3)
    labels = np.array([0, 1, 2, 1], "int32")
    samples = to_numpy(model.sample(4, seed=5, condition=labels))
    generator = keras.random.SeedGenerator(5)  # the draws sample() makes, in its order
    z_noise = to_numpy(keras.random.normal((T, 4, 2), seed=generator))
    x_noise = to_numpy(keras.random.normal((T, 4, F), seed=generator))
    state, cell = np.zeros((4, 16), "float32"), model.vrnn_cell
    for t in range(T):
        step = model.generate_step(state, z_noise[t], x_noise[t], labels)
        x_t, state = to_numpy(step["x"]), to_numpy(step["state"])
        np.testing.assert_allclose(x_t, samples[:, t], atol=1e-5)
    # The notes' C-VRNN feeds the posterior mean of the generated x_t to the recurrence.
    h = np.zeros((4, 16), "float32")
    label = cell.embed(labels)
    first = to_numpy(model.generate_step(h, z_noise[0], x_noise[0], labels)["state"])
    mu_q, _ = cell.posterior(cell.phi_x(samples[:, 0]), h, label)
    expected = cell.recur(cell.phi_x(samples[:, 0]), cell.phi_z(mu_q), h, label)
    np.testing.assert_allclose(first, to_numpy(expected), atol=1e-5)
    # Chung et al.'s VRNN feeds the prior's draw instead: the same x_1, then another state.
    prior_fed = CVRNN.from_config({**model.get_config(), "recurrence_latent": "prior"})
    prior_fed.set_weights(model.get_weights())
    step = prior_fed.generate_step(h, z_noise[0], x_noise[0], labels)
    np.testing.assert_allclose(to_numpy(step["x"]), samples[:, 0], atol=1e-5)
    mu_p, logvar_p = cell.prior(h, label)
    z = mu_p + keras.ops.exp(0.5 * logvar_p) * keras.ops.convert_to_tensor(z_noise[0])
    expected = cell.recur(cell.phi_x(samples[:, 0]), cell.phi_z(z), h, label)
    np.testing.assert_allclose(to_numpy(step["state"]), to_numpy(expected), atol=1e-5)
    assert np.abs(to_numpy(step["state"]) - first).max() > 1e-3


def test_temperature_scales_the_noise_of_prior_and_decoder():
    model = VRNN(T, F, **SIZE)
    randomize_weights(model, scale=0.5)
    mean = to_numpy(model.sample(16, 4, temperature=1e-4))  # every draw at its mean
    full, half = (to_numpy(model.sample(16, 4, temperature=t)) for t in (1.0, 0.5))
    assert np.abs(half - mean).mean() < np.abs(full - mean).mean()
    # At T -> 0 the sequences are those of the noiseless generative model.
    step = dict(use_mean=True, temperature=1e-4)
    np.testing.assert_allclose(mean, to_numpy(model.sample(16, 4, **step)), atol=1e-3)
    for bad in (0.0, -1.0, True, "cold"):
        with pytest.raises(ValueError, match="temperature"):
            model.sample(2, temperature=bad)
    binary = VRNN(T, F, likelihood="bernoulli", **SIZE)
    with pytest.raises(ValueError, match="Gaussian decoder"):
        binary.sample(2, temperature=0.5)


def test_bad_inputs_raise_naming_what_was_expected():
    x, y = waves(4)
    model, conditional = VRNN(T, F, **SIZE), CVRNN(T, F, num_classes=2, **SIZE)
    model.compile()
    conditional.compile()
    with pytest.raises(ValueError, match=r"rank 3 with shape \(batch, 5, 2\)"):
        model.fit(x[:, :, 0], verbose=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 5, 2\)"):
        model.log_prob(x[:, :4])
    with pytest.raises(ValueError, match=r"shape \(batch, 5, 2\)"):
        model(np.zeros((4, T, 3), "float32"))
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.where(x > 0.5, np.nan, x), verbose=0)
    with pytest.raises(ValueError, match="without y"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, condition=[0, 1])
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        conditional.fit(x, y + 2, verbose=0)
    with pytest.raises(ValueError, match="no labels"):
        conditional.fit(x, verbose=0)
    with pytest.raises(ValueError, match=r"condition in \[0, 2\)"):
        conditional.sample(2, condition=[0, 5])
    with pytest.raises(ValueError, match="condition=labels"):
        conditional.sample(2)
    with pytest.raises(ValueError, match=r"\(batch, 5, 3\) whose last column is the label"):
        conditional(x)
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        conditional(packed(x, y + 3))
    with pytest.raises(ValueError, match="positive integer"):
        model.sample(0)
    with pytest.raises(ValueError, match="cell must be one of"):
        VRNN(T, F, cell="elman")
    with pytest.raises(ValueError, match="likelihood must be one of"):
        VRNN(T, F, likelihood="poisson")
    with pytest.raises(ValueError, match="recurrence_latent"):
        VRNN(T, F, recurrence_latent="mean")
    with pytest.raises(ValueError, match="hidden_units must be a positive int"):
        VRNNCell(2, hidden_units=(8, 0))
    with pytest.raises(ValueError, match="num_classes"):
        CVRNN(T, F, num_classes=0)


@export_test_on("torch")
def test_export_passes_tflite_parity(tmp_path):
    model = CVRNN(T, F, num_classes=2, **SIZE)
    randomize_weights(model, scale=0.3)
    model.save(tmp_path / "cvrnn.keras")
    manifest = export_model(
        tmp_path / "cvrnn.keras", tmp_path / "export", imports=["mp_keras.models.vrnn"]
    )
    assert manifest["passed"]
