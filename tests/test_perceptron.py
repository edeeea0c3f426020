"""Perceptron: the learning rule by hand, convergence on separable data, failure on XOR."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.data.toys import SEPARABLE_MARGIN, separable_hyperplane
from mp_keras.export import export_model
from mp_keras.models.mlp import MLP
from mp_keras.models.perceptron import Perceptron
from tests.harness import run_standard_checks, to_numpy


class StopWhenNoMistakes(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if logs["error_rate"] == 0.0:
            self.model.stop_training = True


def _set_weights(model, w, b):
    model.w.assign(np.asarray(w, "float32"))
    model.b.assign(np.float32(b))


def test_standard_checks(tmp_path):
    ds = data.load("separable", num_examples=32)
    model = run_standard_checks(
        lambda: Perceptron(num_features=2, learning_rate=0.5), ds.x, (None,), tmp_path, y=ds.y
    )
    # Rule-only: the compiled optimizer is the engine's empty group and counts steps.
    assert int(to_numpy(model.optimizer.iterations)) == 2


def test_one_batch_update_matches_numpy():
    x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.5, -3.0]], "float32")
    y = np.array([0, 1, 1])
    w, b, eta = np.array([0.5, 0.25]), -0.1, 0.3
    model = Perceptron(num_features=2, learning_rate=eta)
    model.compile()
    _set_weights(model, w, b)

    score = x @ w + b  # [0.9, -0.475, -0.6]
    y_hat = (score > 0).astype(float)  # [1, 0, 0]: all three are mistakes
    residual = y - y_hat
    history = model.fit(x, y, batch_size=3, epochs=1, shuffle=False, verbose=0)

    np.testing.assert_allclose(to_numpy(model.w), w + eta * residual @ x, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(model.b), b + eta * residual.sum(), rtol=1e-6)
    # Logged with the weights before the update: 3 mistakes, perceptron criterion.
    t = 2 * y - 1
    assert history.history["error_rate"] == [pytest.approx(1.0)]
    assert history.history["loss"] == [pytest.approx(np.maximum(0, -t * score).mean(), rel=1e-5)]
    np.testing.assert_allclose(to_numpy(model.score(x)), x @ to_numpy(model.w) + to_numpy(model.b))


def test_online_rule_is_batch_size_one():
    """batch_size=1 follows the online rule example by example, in order."""
    ds = data.load("separable", seed=2, num_examples=12)
    model = Perceptron(num_features=2, learning_rate=0.7)
    model.compile()
    model.fit(ds.x, ds.y, batch_size=1, epochs=2, shuffle=False, verbose=0)
    w, b = np.zeros(2), 0.0
    for _ in range(2):
        for xi, yi in zip(ds.x.astype(np.float64), ds.y):
            y_hat = float(xi @ w + b > 0)
            w, b = w + 0.7 * (yi - y_hat) * xi, b + 0.7 * (yi - y_hat)
    np.testing.assert_allclose(to_numpy(model.w), w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(model.b), b, rtol=1e-5, atol=1e-6)


def test_converges_on_separable_data_within_novikoff_bound():
    keras.utils.set_random_seed(0)
    ds = data.load("separable", seed=0, num_examples=100)
    model = Perceptron(num_features=2)
    model.compile()
    history = model.fit(
        ds.x,
        ds.y,
        batch_size=1,
        epochs=100,
        shuffle=True,
        verbose=0,
        callbacks=[StopWhenNoMistakes()],
    )
    errors = history.history["error_rate"]
    assert errors[-1] == 0.0 and len(errors) < 100  # an epoch without mistakes was reached
    np.testing.assert_array_equal(to_numpy(model(ds.x)), ds.y)
    assert model.evaluate(ds.x, ds.y, verbose=0, return_dict=True)["accuracy"] == 1.0

    # Novikoff: updates <= (R / gamma)^2 for the augmented inputs (x, 1), with gamma the
    # margin of the unit-norm augmented (w, b) that generated the labels.
    _, b = separable_hyperplane(0)
    radius = np.sqrt((ds.x.astype(np.float64) ** 2).sum(1).max() + 1.0)
    gamma = SEPARABLE_MARGIN / np.sqrt(1.0 + b**2)
    updates = round(sum(errors) * len(ds))
    assert 0 < updates <= (radius / gamma) ** 2


def test_learning_rate_only_scales_the_weights():
    ds = data.load("separable", seed=1, num_examples=40)
    weights = []
    for eta in (1.0, 0.1):
        model = Perceptron(num_features=2, learning_rate=eta)
        model.compile()
        model.fit(ds.x, ds.y, batch_size=1, epochs=3, shuffle=False, verbose=0)
        weights.append(np.append(to_numpy(model.w), to_numpy(model.b)) / eta)
    np.testing.assert_allclose(weights[0], weights[1], rtol=1e-4, atol=1e-5)


def test_xor_perceptron_fails_where_mlp_succeeds():
    keras.utils.set_random_seed(0)
    xor = data.load("xor", num_examples=100)
    perceptron = Perceptron(num_features=2)
    perceptron.compile()
    history = perceptron.fit(xor.x, xor.y, batch_size=1, epochs=10, verbose=0)
    # Never an epoch without mistakes, and no line gets more than ~3 of the 4 clusters.
    assert min(history.history["error_rate"]) > 0.0
    accuracy = float((to_numpy(perceptron(xor.x)) == xor.y).mean())
    assert accuracy <= 0.76

    mlp = MLP(input_shape=(2,), num_classes=2, hidden_units=(8,), activation="tanh")
    mlp.compile(optimizer=keras.optimizers.Adam(0.1))
    mlp.fit(xor.x, xor.y, batch_size=20, epochs=20, verbose=0)
    assert mlp.evaluate(xor.x, xor.y, verbose=0, return_dict=True)["accuracy"] == 1.0


def test_bad_inputs():
    model = Perceptron(num_features=2)
    model.compile()
    x = np.zeros((4, 2), "float32")
    with pytest.raises(ValueError, match="labels in"):
        model.fit(x, np.array([0, 1, 2, 1]), verbose=0)
    with pytest.raises(ValueError, match="labels in"):
        model.evaluate(x, np.array([0, -1, 0, 1]), verbose=0)
    with pytest.raises(ValueError, match="rank 2"):
        model.fit(np.zeros((4, 2, 1), "float32"), np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        model.predict(np.zeros((4, 3), "float32"), verbose=0)
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.full((4, 2), np.nan, "float32"), np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match="takes no optimizer"):
        Perceptron().compile(optimizer="sgd")
    with pytest.raises(ValueError, match="learning_rate"):
        Perceptron(learning_rate=0.0)
    # Of a tf.data.Dataset, the labels of the first batch are checked.
    bad_batches = data.pipeline(x, np.array([0, 3, 0, 1], "int32"), batch_size=2, shuffle=False)
    with pytest.raises(ValueError, match="labels in"):
        model.fit(bad_batches, verbose=0)


def test_export_parity(tmp_path):
    ds = data.load("separable", num_examples=64)
    model = Perceptron(num_features=2)
    model.compile()
    model.fit(ds.x, ds.y, batch_size=1, epochs=2, verbose=0)
    model.save(tmp_path / "perceptron.keras")
    manifest = export_model(tmp_path / "perceptron.keras", tmp_path / "export")
    assert manifest["passed"]
    endpoints = manifest["artifacts"][1]["endpoints"]
    assert set(endpoints) == {"score", "predict"}
