"""DDPM: the sampler against an exact oracle, the variational bound against NumPy,
classifier-free guidance, EMA through the engine, training, seeds and input checks."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from scipy.special import ndtr

from mp_keras import data
from mp_keras.diffusion import ddpm_sample
from mp_keras.models.ddpm import DDPM
from tests.harness import (
    randomize_weights,
    run_standard_checks,
    to_numpy,
)

IMAGE = dict(input_shape=(8, 8, 1), filters=(4,), time_dim=8, groups=4, num_levels=17)
VECTOR = dict(input_shape=(2,), hidden_units=(16,), time_dim=8, data_range=None)


def small(**kwargs):
    defaults = dict(VECTOR, timesteps=10, ema_momentum=None, seed=0)
    return DDPM(**{**defaults, **kwargs})


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", "train").x[:64]


@pytest.fixture(scope="module")
def ring():
    ds = data.load("ring", "train", num_examples=2048)
    return ds.x.astype("float32"), ds.y


def test_standard_checks(ring, tmp_path):
    model = run_standard_checks(lambda: small(ema_momentum=0.9), ring[0][:64], (None, 2), tmp_path)
    assert model.optimizer.use_ema  # the default optimizer keeps the moving average


@pytest.mark.slow  # a U-Net's first fit takes 10-30 s of tracing on TensorFlow and JAX
def test_standard_checks_images(digits, tmp_path):
    model = run_standard_checks(
        lambda: DDPM(**IMAGE, timesteps=10, ema_momentum=0.9, seed=0),
        digits,
        (None, 8, 8, 1),
        tmp_path,
    )
    samples = to_numpy(model.sample(2, seed=0))
    assert samples.shape == (2, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 1


def test_standard_checks_class_conditional(ring, tmp_path):
    x, y = ring
    model = run_standard_checks(lambda: small(num_classes=8), x[:64], (None, 2), tmp_path, y=y[:64])
    assert model.label_embedding.input_dim == 9  # the last row is the null label


class OracleDDPM(DDPM):
    """A DDPM whose network is the exact E[eps | x_t] of Gaussian data N(m, s^2):
    x_t ~ N(sqrt(a) m, a s^2 + 1 - a) with Cov(eps, x_t) = sqrt(1 - a), so
    E[eps | x_t] = sqrt(1 - a) (x_t - sqrt(a) m) / (a s^2 + 1 - a)."""

    mean = np.array([1.5, -0.5], "float32")
    std = np.array([0.5, 1.2], "float32")

    def network_noise(self, x_t, t, condition=None, training=False):
        a = self.schedule.alpha_bar_at(t, x_t)
        m, s2 = keras.ops.convert_to_tensor(self.mean), keras.ops.convert_to_tensor(self.std**2)
        return keras.ops.sqrt(1 - a) * (x_t - keras.ops.sqrt(a) * m) / (a * s2 + 1 - a)


def _chain_moments(model, sampler, steps=None):
    """Mean and std of the samplers' x_0 with the oracle, by hand: with eps linear in x_t,
    every step is x <- A x + B (+ sigma z), so N(mean, var) maps to N(A mean + B,
    A^2 var + sigma^2), starting from x_T ~ N(0, 1)."""
    from mp_keras.diffusion import ddim_timesteps

    betas = model.schedule.betas
    abar = np.concatenate([[1.0], np.cumprod(1 - betas)])  # abar[t], abar[0] = 1
    m, s2 = OracleDDPM.mean.astype("float64"), OracleDDPM.std.astype("float64") ** 2
    mean, var = np.zeros(2), np.ones(2)
    if sampler == "ddpm":
        for t in range(len(betas), 0, -1):
            a, b = abar[t], betas[t - 1]
            k = np.sqrt(1 - a) / (a * s2 + 1 - a)  # eps = k (x - sqrt(a) m)
            scale = (1 - b * k / np.sqrt(1 - a)) / np.sqrt(1 - b)
            offset = b * k * np.sqrt(a) * m / np.sqrt(1 - a) / np.sqrt(1 - b)
            sigma2 = b if model.variance == "beta" else b * (1 - abar[t - 1]) / (1 - a)
            mean, var = scale * mean + offset, scale**2 * var + (sigma2 if t > 1 else 0.0)
    else:
        visits = ddim_timesteps(model.schedule, steps)
        for t, t_prev in zip(visits, [*visits[1:], 0]):
            a, a_prev = abar[t], abar[t_prev]
            k = np.sqrt(1 - a) / (a * s2 + 1 - a)
            # x0 = (x - sqrt(1 - a) eps) / sqrt(a); x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev) eps
            eps_scale, eps_offset = k, -k * np.sqrt(a) * m
            x0_scale = (1 - np.sqrt(1 - a) * eps_scale) / np.sqrt(a)
            x0_offset = -np.sqrt(1 - a) * eps_offset / np.sqrt(a)
            scale = np.sqrt(a_prev) * x0_scale + np.sqrt(1 - a_prev) * eps_scale
            offset = np.sqrt(a_prev) * x0_offset + np.sqrt(1 - a_prev) * eps_offset
            mean, var = scale * mean + offset, scale**2 * var
    return mean, np.sqrt(var)


@pytest.mark.parametrize(
    ("sampler", "variance"), [("ddpm", "beta"), ("ddpm", "posterior"), ("ddim", "beta")]
)
def test_sampler_with_an_exact_oracle_recovers_gaussian_data(sampler, variance):
    model = OracleDDPM(**VECTOR, timesteps=50, variance=variance, ema_momentum=None, seed=0)
    steps = 25 if sampler == "ddim" else None
    samples = to_numpy(model.sample(20000, seed=1, sampler=sampler, steps=steps))
    mean, std = _chain_moments(model, sampler, steps)
    # The sampler does exactly what the chain's moments say (Monte Carlo error only) ...
    np.testing.assert_allclose(samples.mean(0), mean, atol=4 * std.max() / np.sqrt(20000))
    np.testing.assert_allclose(samples.std(0), std, rtol=0.03)
    # ... and those are the data's, up to the discretisation of T = 50 steps.
    np.testing.assert_allclose(mean, OracleDDPM.mean, atol=0.02)
    np.testing.assert_allclose(std, OracleDDPM.std, rtol=0.1)


def _numpy_bound(model, x, noise):
    """The three terms by hand, in float64, with the network's eps_hat."""
    betas = model.schedule.betas
    alphas, abar = 1 - betas, np.cumprod(1 - betas)
    steps, d = len(betas), x.shape[1]
    x0 = 2 * x - 1 if model.data_range is not None else x.astype("float64")

    def eps_hat(x_t, t):
        return to_numpy(model.network([x_t.astype("float32"), np.full(len(x), t)])).astype(
            "float64"
        )

    prior = 0.5 * (abar[-1] * x0**2 + (1 - abar[-1]) - 1 - np.log(1 - abar[-1])).sum(1)
    denoising = np.zeros(len(x))
    for t in range(2, steps + 1):
        a, a_prev, b = abar[t - 1], abar[t - 2], betas[t - 1]
        x_t = np.sqrt(a) * x0 + np.sqrt(1 - a) * noise[t - 1]
        mean_q = (
            np.sqrt(a_prev) * b / (1 - a) * x0
            + np.sqrt(alphas[t - 1]) * (1 - a_prev) / (1 - a) * x_t
        )
        var_q = (1 - a_prev) / (1 - a) * b
        mean_p = (x_t - b / np.sqrt(1 - a) * eps_hat(x_t, t)) / np.sqrt(alphas[t - 1])
        var_p = b if model.variance == "beta" else var_q
        kl = 0.5 * (np.log(var_p / var_q) + var_q / var_p + (mean_q - mean_p) ** 2 / var_p - 1)
        denoising += kl.sum(1)
    x_1 = np.sqrt(abar[0]) * x0 + np.sqrt(1 - abar[0]) * noise[0]
    mean = (x_1 - betas[0] / np.sqrt(1 - abar[0]) * eps_hat(x_1, 1)) / np.sqrt(alphas[0])
    var = betas[0] if model.variance == "beta" else (1 - abar[0]) / (1 - abar[1]) * betas[1]
    std = np.sqrt(var)
    if model.num_levels is None or model.data_range is None:
        log_p = -0.5 * ((x0 - mean) ** 2 / var + np.log(2 * np.pi * var))
    else:
        half = 1 / (model.num_levels - 1)
        upper = np.where(x0 > 1 - half / 2, 1.0, ndtr((x0 + half - mean) / std))
        lower = np.where(x0 < -1 + half / 2, 0.0, ndtr((x0 - half - mean) / std))
        log_p = np.log(np.maximum(upper - lower, 1e-12))
    return prior, denoising, -log_p.sum(1), d


@pytest.mark.parametrize(
    ("variance", "data_range", "num_levels"),
    [("beta", (0.0, 1.0), 17), ("posterior", None, None)],
)
def test_variational_bound_matches_numpy(variance, data_range, num_levels):
    model = DDPM(
        input_shape=(4,),
        hidden_units=(8,),
        time_dim=4,
        timesteps=4,
        variance=variance,
        data_range=data_range,
        num_levels=num_levels,
        ema_momentum=None,
        seed=0,
    )
    randomize_weights(model, scale=0.3)
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 17, (6, 4)) / 16).astype("float32")
    x[0] = [0.0, 1.0, 0.0, 1.0]  # the open edge bins
    noise = rng.normal(size=(4, 6, 4))
    bound = {k: to_numpy(v) for k, v in model.variational_bound(x, noise=noise).items()}
    prior, denoising, reconstruction, d = _numpy_bound(model, x, noise)
    np.testing.assert_allclose(bound["prior"], prior, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bound["denoising"], denoising, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(bound["reconstruction"], reconstruction, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(bound["total"], prior + denoising + reconstruction, rtol=1e-3)
    # Random steps: (T - 1) / k times k terms; log_prob and bits/dim are minus the bound.
    estimate = to_numpy(model.variational_bound(x, num_timesteps=2, seed=3)["total"])
    assert estimate.shape == (6,) and np.all(np.isfinite(estimate))
    nll = model.nll(x, num_timesteps=2, seed=3)
    assert nll == pytest.approx(float(estimate.mean()), rel=1e-5)
    assert model.bits_per_dim(x, num_timesteps=2, seed=3) == pytest.approx(
        nll / (d * math.log(2)), rel=1e-6
    )


def test_short_fit_lowers_the_loss(ring):
    x, _ = ring
    keras.utils.set_random_seed(0)
    model = small(hidden_units=(64, 64), timesteps=20, schedule="linear")
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(x, epochs=8, batch_size=256, verbose=0).history["loss"]
    assert history[-1] < 0.75 * history[0]
    # (The narrow modes of the ring need a few thousand steps to show in the samples.)


def test_classifier_free_guidance():
    model = small(num_classes=3)
    randomize_weights(model, scale=0.2)
    labels = np.array([0, 1, 2, 1])
    # rho = 0 is the conditional sampler: Algorithm 3 on eps(x, y; t) with the same draws.
    generator = keras.random.SeedGenerator(4)
    x_T = keras.random.normal((4, 2), seed=generator)
    condition = model.embed_condition(labels)
    by_hand = ddpm_sample(
        lambda x, t: model.network_noise(x, t, condition), model.schedule, x_T, generator
    )
    np.testing.assert_allclose(
        to_numpy(model.sample(4, seed=4, labels=labels, guidance=0.0)),
        to_numpy(by_hand),
        rtol=1e-5,
        atol=1e-5,
    )
    # The guided path itself with rho = 0 (a per-example tensor, as exported) is exact too.
    x_t, t, z = np.ones((4, 2), "float32"), np.array([3, 5, 7, 10]), np.ones((4, 2), "float32")
    zero = keras.ops.zeros((4,))
    np.testing.assert_array_equal(
        to_numpy(model.denoise_step(x_t, t, z, labels, guidance=zero)),
        to_numpy(model.denoise_step(x_t, t, z, labels)),
    )
    eps_c = to_numpy(model.predict_noise(x_t, t, labels))
    eps_u = to_numpy(model.predict_noise(x_t, t))  # no labels: the null label
    np.testing.assert_allclose(
        to_numpy(model.predict_noise(x_t, t, labels, guidance=2.0)),
        3 * eps_c - 2 * eps_u,
        atol=1e-5,
    )
    guided = to_numpy(model.sample(4, seed=4, labels=labels, guidance=2.0))
    assert np.abs(guided - to_numpy(by_hand)).max() > 1e-3


def test_ema_through_the_engine_equals_the_average_by_hand(ring):
    x = ring[0][:32]

    def run(optimizer):
        keras.utils.set_random_seed(0)
        model = small()
        model.compile(optimizer=optimizer)
        trajectory = []
        record = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda *_: trajectory.append([to_numpy(v) for v in model.network.weights])
        )
        model.fit(x, epochs=3, batch_size=32, shuffle=False, verbose=0, callbacks=[record])
        return model, trajectory

    _, raw = run(keras.optimizers.SGD(0.5))
    model, _ = run(keras.optimizers.SGD(0.5, use_ema=True, ema_momentum=0.6))
    average = raw[0]  # Keras: the first step copies, then avg <- m avg + (1 - m) w
    for step in raw[1:]:
        average = [0.6 * a + 0.4 * w for a, w in zip(average, step)]
    assert np.abs(raw[-1][0] - average[0]).max() > 1e-4  # the average is not the last step
    for final, expected in zip(model.network.weights, average):
        np.testing.assert_allclose(to_numpy(final), expected, atol=1e-5)


def test_sample_is_seeded_and_in_range():
    model = DDPM(**IMAGE, timesteps=10, ema_momentum=None, seed=0)
    randomize_weights(model, scale=0.2)
    a, b = to_numpy(model.sample(3, seed=5)), to_numpy(model.sample(3, seed=5))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 8, 8, 1) and a.min() >= 0 and a.max() <= 1
    assert np.abs(a - to_numpy(model.sample(3, seed=6))).max() > 1e-3
    vectors = small(data_range=(0.0, 1.0), num_levels=None)
    randomize_weights(vectors, scale=0.5)
    ddim = to_numpy(vectors.sample(50, seed=5, sampler="ddim", steps=4))
    np.testing.assert_array_equal(
        ddim, to_numpy(vectors.sample(50, seed=5, sampler="ddim", steps=4))
    )
    assert ddim.shape == (50, 2) and ddim.min() >= 0 and ddim.max() <= 1 and ddim.std() > 0.01


def test_bad_inputs_raise_value_error(ring):
    x, y = ring
    model, conditional = small(), small(num_classes=8)
    for m in (model, conditional):
        m.compile()
    cases = [
        (lambda: model.fit(x[:, :1], epochs=1, verbose=0), r"shape \(batch, 2\)"),
        (lambda: model.fit(np.full((4, 2), np.nan, "float32"), epochs=1, verbose=0), "finite"),
        (lambda: model.fit(x[:8], y[:8], epochs=1, verbose=0), "targets"),
        (lambda: conditional.fit(x[:8], epochs=1, verbose=0), "no labels"),
        (lambda: conditional.fit(x[:8], y[:8] + 8, epochs=1, verbose=0), r"in \[0, 8\)"),
        (lambda: conditional.sample(2), "pass labels"),
        (lambda: conditional.sample(2, labels=[1, 2, 3]), "2 labels"),
        (lambda: conditional.sample(2, labels=9), r"in \[0, 8\)"),
        (lambda: model.sample(2, labels=1), "unconditional"),
        (lambda: model.sample(2, steps=3), "ddim"),
        (lambda: model.predict_noise(x[:2], np.array([0, 3])), "1..10"),
        (lambda: model.predict_noise(x[:2], np.array([1.5, 3])), "integers"),
        (lambda: model.predict_noise(x[:2], np.array([1, 2, 3])), r"shape \(2,\)"),
        (lambda: model.denoise_step(x[:2], 11, x[:2]), "1..10"),
        (lambda: conditional.predict_noise(x[:2], 3, labels=np.array([[1, 2]])), "labels"),
        (lambda: DDPM(input_shape=(8, 8, 1), network="mlp"), "mlp"),
        (lambda: DDPM(**IMAGE).fit(np.full((2, 8, 8, 1), 2.0, "float32")), "data_range"),
    ]
    for run, message in cases:
        with pytest.raises(ValueError, match=message):
            run()
