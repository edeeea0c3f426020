"""Sample-quality metrics: Fréchet and kernel distances, class coverage, the callback."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from mp_keras import data
from mp_keras.metrics import (
    ClassifierFeatures,
    FrechetDistance,
    KernelDistance,
    SampleQuality,
    class_coverage,
    frechet_distance,
    kernel_distance,
    sample_quality,
    train_feature_classifier,
)
from mp_keras.metrics.sample_quality import frechet_from_moments, polynomial_mmd2
from mp_keras.models import GAN
from tests.harness import to_numpy


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", "train"), data.load("digits", "test")


@pytest.fixture(scope="module")
def classifier_path(tmp_path_factory):
    return tmp_path_factory.mktemp("sample_quality") / "classifier.keras"


@pytest.fixture(scope="module")
def classifier(digits, classifier_path):
    train, _ = digits
    return train_feature_classifier(
        train.x,
        train.y,
        epochs=6,
        filters=(8, 16),
        dense_units=32,
        batch_size=75,
        path=classifier_path,
    )


def random_covariance(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    cov_a, cov_b = random_covariance(rng, 4), random_covariance(rng, 4)
    mu_a, mu_b = rng.normal(size=4), rng.normal(size=4)
    # Non-commuting covariances: against scipy's general matrix square root.
    cross = np.real(scipy.linalg.sqrtm(cov_a @ cov_b))
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * cross)
    assert frechet_from_moments(mu_a, cov_a, mu_b, cov_b) == pytest.approx(expected, rel=1e-8)
    # Diagonal covariances: sum of (sqrt a_i - sqrt b_i)^2 plus the squared mean gap.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    closed = 1.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    value = frechet_from_moments([0, 0, 0], np.diag(a), [1, 0, 0], np.diag(b))
    assert value == pytest.approx(closed)
    # From samples: close to the distance of the generating Gaussians.
    xa = rng.multivariate_normal(mu_a, cov_a, size=20000)
    xb = rng.multivariate_normal(mu_b, cov_b, size=20000)
    assert frechet_distance(xa, xb) == pytest.approx(expected, rel=0.05)
    assert frechet_distance(xa, xa) == pytest.approx(0.0, abs=1e-6)


def test_kernel_distance_is_unbiased_and_matches_its_definition():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(6, 3))
    k = lambda u, v: (u @ v / 3 + 1) ** 3  # noqa: E731
    within_x = np.mean([k(x[i], x[j]) for i in range(5) for j in range(5) if i != j])
    within_y = np.mean([k(y[i], y[j]) for i in range(6) for j in range(6) if i != j])
    between = np.mean([k(a, b) for a in x for b in y])
    assert polynomial_mmd2(x, y) == pytest.approx(within_x + within_y - 2 * between)
    # Same distribution: the mean over many subsets is about 0, of either sign.
    estimates = [
        kernel_distance(rng.normal(size=(100, 3)), rng.normal(size=(100, 3)))[0] for _ in range(40)
    ]
    assert abs(np.mean(estimates)) < 3 * np.std(estimates) / np.sqrt(40)
    assert min(estimates) < 0 < max(estimates)
    mean, std = kernel_distance(
        rng.normal(size=(400, 3)), rng.normal(size=(300, 3)) + 1, subsets=5, subset_size=100
    )
    assert mean > 0.5 and std > 0


def test_distances_are_small_between_halves_and_large_to_noise(digits, classifier):
    train, _ = digits
    features = ClassifierFeatures(classifier)
    first, _ = features(train.x[:750])
    second, _ = features(train.x[750:])
    noise, _ = features(np.random.default_rng(0).random((750, 8, 8, 1)).astype("float32"))
    same, far = frechet_distance(first, second), frechet_distance(first, noise)
    assert far > 20 * same
    kid_same, _ = kernel_distance(first, second, subsets=10, subset_size=300)
    kid_far, _ = kernel_distance(first, noise, subsets=10, subset_size=300)
    assert abs(kid_same) < 0.05 * kid_far


def test_class_coverage(digits, classifier):
    _, test = digits
    _, probabilities = ClassifierFeatures(classifier)(test.x)
    assert class_coverage(probabilities)["coverage"] == 1.0
    one_class = class_coverage(np.tile([[0.1, 0.8, 0.1]], (5, 1)), num_classes=4)
    assert one_class == {"coverage": 0.25, "classes": 1, "histogram": [0, 5, 0, 0]}
    with pytest.raises(ValueError, match="num_classes"):
        class_coverage(np.ones((3, 1)))


def test_keras_metrics_equal_the_numpy_functions():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(300, 5)).astype("float32") * 2 + 3
    b = (rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5))).astype("float32")
    fd = FrechetDistance(num_features=5)
    for batch in range(3):  # batches of 100 real and 60 generated rows
        fd.update_state(a[100 * batch : 100 * batch + 100], b[60 * batch : 60 * batch + 60])
    assert float(to_numpy(fd.result())) == pytest.approx(frechet_distance(a, b[:180]), rel=1e-3)
    fd.reset_state()
    fd.update_state(a[:100], a[100:200])
    assert float(to_numpy(fd.result())) == pytest.approx(
        frechet_distance(a[:100], a[100:200]), rel=1e-3
    )

    kd = KernelDistance(num_features=5)
    kd.update_state(a[:200], b)
    assert float(to_numpy(kd.result())) == pytest.approx(kernel_distance(a[:200], b)[0], rel=1e-3)
    kd.reset_state()
    kd.update_state(a[:100], b[:100])
    kd.update_state(a[100:200], b[100:])
    batches = [polynomial_mmd2(a[:100], b[:100]), polynomial_mmd2(a[100:200], b[100:])]
    assert float(to_numpy(kd.result())) == pytest.approx(np.mean(batches), rel=1e-3)
    assert float(to_numpy(kd.std())) == pytest.approx(np.std(batches), rel=1e-2)
    assert FrechetDistance.from_config(fd.get_config()).num_features == 5
    with pytest.raises(ValueError, match="shape"):
        fd.update_state(a[:, :3], b[:, :3])


def test_callback_adds_the_validation_keys_to_a_gan_fit(digits, classifier):
    train, test = digits
    gan = GAN(
        data_shape=(8, 8, 1),
        latent_dim=4,
        generator_units=(16,),
        discriminator_units=(16,),
        output_activation="sigmoid",
        seed=0,
    )
    gan.compile(optimizer={"discriminator": "adam", "generator": "adam"})
    callback = SampleQuality(test.x, classifier, num_samples=100, kid_subset_size=100)
    history = gan.fit(train.x[:256], epochs=1, batch_size=64, verbose=0, callbacks=[callback])
    for key in ("val_fid", "val_kid", "val_class_coverage"):
        assert len(history.history[key]) == 1 and np.isfinite(history.history[key][0])
    direct = sample_quality(gan, test.x, classifier, num_samples=100, kid_subset_size=100)
    assert direct["fid"] == pytest.approx(history.history["val_fid"][0], rel=1e-4)
    assert 0 < direct["class_coverage"] <= 1 and sum(direct["histogram"]) == 100


def test_feature_classifier_cache_and_validation(digits, classifier, classifier_path):
    train, _ = digits
    model = classifier
    # The fixture saved it there; a second call loads it rather than training.
    assert classifier_path.exists()
    loaded = train_feature_classifier(train.x[:64], train.y[:64], path=classifier_path)
    assert loaded is not model
    np.testing.assert_allclose(
        ClassifierFeatures(loaded)(train.x[:8])[0],
        ClassifierFeatures(model)(train.x[:8])[0],
        rtol=1e-5,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="images"):
        ClassifierFeatures(model)(train.x[:4, :4])
    with pytest.raises(ValueError, match="Sequential"):
        ClassifierFeatures(object())
    with pytest.raises(ValueError, match="same width"):
        frechet_distance(np.ones((3, 2)), np.ones((3, 4)))
