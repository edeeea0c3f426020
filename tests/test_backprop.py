"""Backpropagation by hand equals autodiff; gradient descent as a rule phase equals SGD."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from mp_keras.engine import value_and_gradients
from mp_keras.models.gradient_descent_mlp import GradientDescentMLP
from mp_keras.tools.backprop import (
    activation,
    activation_derivative,
    backprop,
    forward,
    mlp_loss,
)
from tests.harness import run_standard_checks, to_numpy

SIZES = (3, 5, 4, 3)  # d_0 .. d_L: three layers


def _mlp_parameters(sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(m, n)).astype("float32") for m, n in itertools.pairwise(sizes)]
    biases = [rng.normal(scale=0.5, size=n).astype("float32") for n in sizes[1:]]
    return weights, biases


def _batch(loss, seed=1, batch=6):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, SIZES[0])).astype("float32")
    if loss == "mse":
        return x, rng.normal(size=(batch, SIZES[-1])).astype("float32")
    return x, (np.arange(batch) % SIZES[-1]).astype("int32")


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse"])
@pytest.mark.parametrize("name", ["identity", "relu", "sigmoid", "tanh"])
def test_backprop_equals_autodiff(name, loss):
    weights, biases = _mlp_parameters()
    x, y = _batch(loss)
    value, grad_w, grad_b = backprop(weights, biases, name, x, y, loss=loss)

    num = len(weights)
    auto_value, grads = value_and_gradients(
        lambda *p: mlp_loss(list(p[:num]), list(p[num:]), name, x, y, loss=loss),
        [*weights, *biases],
    )
    np.testing.assert_allclose(to_numpy(value), auto_value, rtol=1e-5, atol=1e-6)
    for mine, auto in zip([*grad_w, *grad_b], grads):
        assert mine.shape == auto.shape
        np.testing.assert_allclose(to_numpy(mine), auto, rtol=1e-5, atol=1e-6)
    assert max(np.abs(g).max() for g in grads) > 1e-2  # not a vacuous zero gradient


def test_mixed_activations_and_output_activation():
    """One activation per hidden layer, and a sigmoid output under the squared error."""
    weights, biases = _mlp_parameters(seed=3)
    x, y = _batch("mse", seed=4)
    names = ["tanh", "relu"]
    _, grad_w, grad_b = backprop(weights, biases, names, x, y, "mse", output_activation="sigmoid")
    _, grads = value_and_gradients(
        lambda *p: mlp_loss(p[:3], p[3:], names, x, y, "mse", output_activation="sigmoid"),
        [*weights, *biases],
    )
    for mine, auto in zip([*grad_w, *grad_b], grads):
        np.testing.assert_allclose(to_numpy(mine), auto, rtol=1e-5, atol=1e-6)


def test_forward_and_loss_are_keras_dense_layers():
    """The written-out forward pass and losses are Keras' Dense stack and Keras' losses."""
    weights, biases = _mlp_parameters()
    network = keras.Sequential(
        [keras.Input((SIZES[0],))]
        + [keras.layers.Dense(n, activation="tanh") for n in SIZES[1:-1]]
        + [keras.layers.Dense(SIZES[-1])]
    )
    network.set_weights([v for pair in zip(weights, biases) for v in pair])
    x, labels = _batch("softmax_cross_entropy")
    zs, activations = forward(weights, biases, "tanh", x)
    assert [tuple(a.shape) for a in activations] == [(6, d) for d in SIZES]
    assert len(zs) == 3
    logits = to_numpy(network(x))
    np.testing.assert_allclose(to_numpy(activations[-1]), logits, rtol=1e-5, atol=1e-6)

    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(
        to_numpy(mlp_loss(weights, biases, "tanh", x, labels)),
        to_numpy(cross_entropy(labels, logits)),
        rtol=1e-5,
    )
    _, targets = _batch("mse")
    np.testing.assert_allclose(
        to_numpy(mlp_loss(weights, biases, "tanh", x, targets, "mse")),
        to_numpy(keras.losses.MeanSquaredError()(targets, logits)),
        rtol=1e-5,
    )


@pytest.mark.parametrize("name", ["identity", "relu", "sigmoid", "tanh"])
def test_activation_derivatives(name):
    z = np.array([-2.0, -0.7, 0.3, 1.5], "float32")
    _, (auto,) = value_and_gradients(lambda v: keras.ops.sum(activation(name, v)), [z])
    np.testing.assert_allclose(to_numpy(activation_derivative(name, z)), auto, rtol=1e-6)


def test_backprop_bad_inputs():
    weights, biases = _mlp_parameters()
    x, y = _batch("mse")
    with pytest.raises(ValueError, match="need 2 hidden activations"):
        backprop(weights, biases, ["relu"], x, y, "mse")
    with pytest.raises(ValueError, match="Unknown activation 'gelu'"):
        backprop(weights, biases, "gelu", x, y, "mse")
    with pytest.raises(ValueError, match="Unknown loss"):
        backprop(weights, biases, "relu", x, y, "hinge")
    with pytest.raises(ValueError, match=r"x of shape \(batch, 3\)"):
        backprop(weights, biases, "relu", x[:, :2], y, "mse")
    misfit = [weights[0], np.zeros((4, 4), "float32"), weights[2]]
    with pytest.raises(ValueError, match="takes 4 inputs but layer 0 has 5"):
        backprop(misfit, [biases[0], np.zeros(4, "float32"), biases[2]], "relu", x, y, "mse")
    with pytest.raises(ValueError, match="one bias per weight"):
        backprop(weights, biases[:2], "relu", x, y, "mse")


# === Gradient descent as a rule phase ===


def _gd_model(activation="tanh", learning_rate=0.1):
    return GradientDescentMLP(
        input_shape=(2, 2, 1),
        num_classes=3,
        hidden_units=(5, 4),
        activation=activation,
        learning_rate=learning_rate,
        seed=0,
    )


class RecordWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([np.array(w) for w in self.model.get_weights()])


def test_standard_checks(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 2, 2, 1)).astype("float32")
    y = np.arange(16) % 3
    model = run_standard_checks(_gd_model, x, (None, 3), tmp_path, y=y)
    # A rule phase only: the engine's empty optimizer group just counts the steps.
    assert int(to_numpy(model.optimizer.iterations)) == 2


def test_trajectory_equals_keras_sgd():
    """Same start, same batches: the hand-written rule and Keras' SGD stay step for step.

    (One activation suffices here: `test_backprop_equals_autodiff` covers each of them.)
    """
    name = "tanh"
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 2, 2, 1)).astype("float32")
    y = rng.integers(0, 3, size=12)
    eta = 0.5
    model = _gd_model(name, learning_rate=eta)
    model.compile()
    reference = keras.Sequential(
        [
            keras.Input((2, 2, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation=name),
            keras.layers.Dense(4, activation=name),
            keras.layers.Dense(3),
        ]
    )
    start = model.get_weights()
    reference.set_weights(start)
    reference.compile(
        optimizer=keras.optimizers.SGD(learning_rate=eta),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    runs = []
    for net in (model, reference):
        record = RecordWeights()
        history = net.fit(
            x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[record]
        )
        runs.append((record.steps, history.history["loss"]))
    (mine, my_loss), (theirs, their_loss) = runs
    assert len(mine) == len(theirs) == 6  # 3 batches x 2 epochs
    for step_mine, step_theirs in zip(mine, theirs):
        for a, b in zip(step_mine, step_theirs):
            np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(my_loss, their_loss, rtol=1e-5)
    moved = max(np.abs(a - b).max() for a, b in zip(mine[-1], start))
    assert moved > 0.05  # the trajectory went somewhere


def test_gd_bad_inputs():
    model = _gd_model()
    model.compile()
    x = np.zeros((4, 2, 2, 1), "float32")
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        model.fit(x, np.array([0, 1, 3, 1]), verbose=0)
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        model.evaluate(x, np.array([0, -1, 2, 1]), verbose=0)
    with pytest.raises(ValueError, match="labelled data"):
        model.fit(x, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 2, 2, 1\)"):
        model.predict(np.zeros((4, 2, 2, 2), "float32"), verbose=0)
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.full((4, 2, 2, 1), np.nan, "float32"), np.zeros(4, "int32"), verbose=0)
    with pytest.raises(ValueError, match="takes no optimizer"):
        _gd_model().compile(optimizer="sgd")
    with pytest.raises(ValueError, match="activation must be one of"):
        GradientDescentMLP(activation="gelu")
    with pytest.raises(ValueError, match="learning_rate"):
        GradientDescentMLP(learning_rate=0.0)
    with pytest.raises(ValueError, match="num_classes"):
        GradientDescentMLP(num_classes=1)
