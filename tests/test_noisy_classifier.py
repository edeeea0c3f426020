"""NoisyClassifier and classifier guidance (notes, section 9.4): the model, its gradient,
and guided Algorithm 3 with exact oracles of a two-Gaussian mixture (no training)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from mp_keras.data import load
from mp_keras.diffusion import NoiseSchedule, ddpm_sample
from mp_keras.engine import compiled, gradients
from mp_keras.models.ddpm import DDPM
from mp_keras.models.noisy_classifier import NoisyClassifier, classifier_guided_sample
from tests.harness import check_config_round_trip, run_standard_checks, to_numpy


def tiny(**kwargs):
    defaults = dict(
        input_shape=(2,),
        num_classes=3,
        timesteps=10,
        hidden_units=(8,),
        time_dim=4,
        data_range=None,
        seed=0,
    )
    return NoisyClassifier(**{**defaults, **kwargs})


def test_standard_checks(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((8, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 4, 8).astype("int32")

    def image_model():
        return NoisyClassifier(
            (8, 8, 1), 4, timesteps=10, filters=(4, 4), time_dim=4, data_range=(0.0, 1.0), seed=0
        )

    model = run_standard_checks(image_model, images, (None, 4), tmp_path, y=labels)
    assert sorted(model.get_metrics_result()) == ["accuracy", "loss"]
    check_config_round_trip(tiny())  # the MLP (vectors) trains in the ring test below


def test_validation():
    model = tiny()
    x = np.zeros((4, 2), "float32")
    with pytest.raises(ValueError, match="labels"):
        model.log_prob_labels(x, 1, [0, 1, 2, 3])  # 3 is out of range
    with pytest.raises(ValueError, match="4 labels"):
        model.log_prob_labels(x, 1, [0, 1])
    with pytest.raises(ValueError, match="shape"):
        model.logits(np.zeros((4, 3), "float32"), 1)
    with pytest.raises(ValueError, match=r"1\.\.10"):
        model.logits(x, 11)
    with pytest.raises(ValueError, match=r"1\.\.10"):
        model.logits(x, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="one step per example"):
        model.logits(x, [1, 2])
    with pytest.raises(ValueError, match="labels"):
        model.guidance(-1, 1.0)
    with pytest.raises(ValueError, match="scale"):
        model.guidance(0, float("nan"))
    with pytest.raises(ValueError, match="no labels"):
        model.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="classes"):
        model.fit(x, np.array([0, 1, 2, 5]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="data_range"):
        NoisyClassifier((2,), 2, data_range=(0.0, 1.0)).fit(x - 1, np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match="num_classes"):
        NoisyClassifier((2,), 1)
    with pytest.raises(ValueError, match="input_shape"):
        NoisyClassifier((4, 4), 2)


def test_guidance_is_the_gradient_of_log_p_y():
    model = tiny(hidden_units=(16, 16))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 2)).astype("float64")
    t = np.array([1, 3, 5, 8, 10])
    labels = np.array([0, 1, 2, 1, 0])
    shift = to_numpy(model.guidance(labels, scale=2.5)(x.astype("float32"), t))
    h, numeric = 1e-2, np.zeros_like(x)
    for j in range(2):
        step = np.zeros_like(x)
        step[:, j] = h
        up = to_numpy(model.log_prob_labels((x + step).astype("float32"), t, labels))
        down = to_numpy(model.log_prob_labels((x - step).astype("float32"), t, labels))
        numeric[:, j] = (up - down) / (2 * h)
    np.testing.assert_allclose(shift, 2.5 * numeric, rtol=2e-2, atol=2e-3)
    # log p(y | x_t) is a log-softmax: the probabilities of all labels sum to one.
    total = sum(
        np.exp(to_numpy(model.log_prob_labels(x.astype("float32"), t, k))) for k in range(3)
    )
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)


def test_short_fit_beats_chance_on_the_ring_at_small_t():
    data = load("ring", seed=0, num_examples=2048)
    model = NoisyClassifier(
        (2,), 8, timesteps=50, hidden_units=(32, 32), time_dim=8, data_range=None, seed=0
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(data.x, data.y, epochs=6, batch_size=128, verbose=0)
    accuracy = model.accuracy_by_timestep(data.x[:512], data.y[:512], [1, 10, 50])
    assert accuracy[1] > 0.8 and accuracy[10] > 0.5  # chance is 1/8
    assert accuracy[50] < accuracy[1]  # x_T carries almost nothing of the class
    assert accuracy == model.accuracy_by_timestep(data.x[:512], data.y[:512], [1, 10, 50])


# === Exact oracles: x_0 ~ 1/2 N(m_0, s^2 I) + 1/2 N(m_1, s^2 I) ===

MEANS = np.array([[-1.5, 0.5], [1.5, -0.5]], "float32")
STD = 0.3


def _noisy_components(schedule, x, t):
    """Per component, the log-density (up to a shared constant) of the noisy marginal
    q(x_t | y = k) = N(sqrt(abar) m_k, v I), v = abar s^2 + 1 - abar, and v."""
    abar = schedule.alpha_bar_at(t, x)
    var = abar * STD**2 + 1.0 - abar
    means = ops.convert_to_tensor(MEANS)
    diff = x[:, None, :] - ops.sqrt(abar)[:, None, :] * means[None]  # (batch, 2, 2)
    return -0.5 * ops.sum(ops.square(diff), axis=-1) / var[:, 0:1], diff, var


def mixture_noise(schedule):
    """E[eps | x_t] = -sqrt(1 - abar) grad log q(x_t): the perfect unconditional network."""

    def predict(x, t):
        log_p, diff, var = _noisy_components(schedule, x, t)
        r = ops.softmax(log_p, axis=-1)  # responsibilities p(y | x_t)
        score = -ops.sum(r[:, :, None] * diff, axis=1) / var
        return -ops.sqrt(1.0 - schedule.alpha_bar_at(t, x)) * score

    return predict


def mixture_guidance(schedule, label, scale):
    """scale * grad_x log p(y | x_t), the exact classifier's, by `engine.gradients`."""

    def shift(x, t):
        def total(v):
            return ops.sum(ops.log_softmax(_noisy_components(schedule, v, t)[0], axis=-1)[:, label])

        return scale * gradients(total, [x])[0]

    return shift


def test_guided_algorithm_3_with_exact_oracles():
    schedule = NoiseSchedule("cosine", timesteps=60)
    noise = keras.random.normal((2000, 2), seed=0)
    oracle = mixture_noise(schedule)
    for label in (0, 1):
        x = to_numpy(
            ddpm_sample(
                oracle,
                schedule,
                noise,
                seed=1,
                compile=compiled,
                shift=mixture_guidance(schedule, label, 1.0),
            )
        )
        nearest = np.argmin(((x[:, None] - MEANS[None]) ** 2).sum(-1), axis=1)
        assert np.mean(nearest == label) >= 0.95
        np.testing.assert_allclose(x[nearest == label].mean(0), MEANS[label], atol=0.1)
    x = to_numpy(ddpm_sample(oracle, schedule, noise, seed=1, compile=compiled))
    share = np.mean(np.argmin(((x[:, None] - MEANS[None]) ** 2).sum(-1), axis=1) == 1)
    assert 0.44 < share < 0.56  # unguided: both components, equally


def test_guidance_inside_the_ddpm_sampler_matches_eager():
    ddpm = DDPM((2,), hidden_units=(8,), time_dim=4, timesteps=10, data_range=None, seed=0)
    classifier = tiny(timesteps=10)
    labels = np.array([0, 1, 2, 0])
    guided = to_numpy(classifier_guided_sample(ddpm, classifier, 4, labels, 3.0, seed=5))
    generator = keras.random.SeedGenerator(5)
    x_T = keras.random.normal((4, 2), seed=generator)  # what DDPM.sample draws first
    shift = classifier.guidance(labels, scale=3.0)
    eager = ddpm_sample(
        lambda x, t: ddpm.predict_noise(x, t), ddpm.schedule, x_T, generator, shift=shift
    )
    # The compiled step (traced once, gradients inside) is the eager chain, shift included.
    np.testing.assert_allclose(guided, to_numpy(eager), rtol=1e-4, atol=1e-4)
    assert np.abs(to_numpy(shift(x_T, np.full(4, 10)))).min() > 1e-4
    with pytest.raises(ValueError, match="schedule"):
        classifier_guided_sample(ddpm, tiny(timesteps=20), 4, 0, 1.0)
    with pytest.raises(ValueError, match="data_range"):
        classifier_guided_sample(ddpm, tiny(timesteps=10, data_range=(0, 1)), 4, 0, 1.0)
