"""Activation functions (notes, 1.4): without a non-linearity an MLP is one affine map."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from mp_keras.models.mlp import MLP
from tests.harness import randomize_weights, to_numpy

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], "float32")
XOR_Y = np.array([0, 1, 1, 0], "int32")
STEPS = 300


def _dense_layers(model):
    return [layer for layer in model.network.layers if isinstance(layer, keras.layers.Dense)]


def _composed_affine_map(model):
    """W = W_1 W_2 W_3 and b = (b_1 W_2 + b_2) W_3 + b_3 of a stack of Dense layers."""
    kernel, bias = None, None
    for layer in _dense_layers(model):
        w, b = (to_numpy(v).astype(np.float64) for v in (layer.kernel, layer.bias))
        kernel = w if kernel is None else kernel @ w
        bias = b if bias is None else bias @ w + b
    return kernel, bias


def test_linear_mlp_is_one_dense_layer():
    mlp = MLP(input_shape=(3,), num_classes=2, hidden_units=(5, 4), activation="linear")
    randomize_weights(mlp, seed=0)
    kernel, bias = _composed_affine_map(mlp)
    single = keras.layers.Dense(2)
    single.build((None, 3))
    single.set_weights([kernel.astype("float32"), bias.astype("float32")])

    x = np.random.default_rng(1).normal(size=(16, 3)).astype("float32")
    np.testing.assert_allclose(to_numpy(mlp(x)), to_numpy(single(x)), atol=1e-5)

    # The same weights with a non-linearity are not that affine map.
    bent = MLP(input_shape=(3,), num_classes=2, hidden_units=(5, 4), activation="tanh")
    bent.set_weights(mlp.get_weights())
    assert np.abs(to_numpy(bent(x)) - to_numpy(single(x))).max() > 0.1


def _train_on_xor(activation: str) -> dict[str, float]:
    """Accuracy and cross-entropy on XOR after STEPS full-batch Adam steps."""
    keras.utils.set_random_seed(0)
    model = MLP(input_shape=(2,), num_classes=2, hidden_units=(16, 16), activation=activation)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    # One epoch of STEPS batches, each batch the four points: STEPS full-batch steps.
    x, y = np.tile(XOR_X, (STEPS, 1)), np.tile(XOR_Y, STEPS)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    logits = to_numpy(model(XOR_X)).astype(np.float64)  # eager: no evaluate() to compile
    log_p = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    return {
        "accuracy": float((logits.argmax(axis=1) == XOR_Y).mean()),
        "loss": float(-log_p[np.arange(4), XOR_Y].mean()),  # the cross-entropy trained
    }


def test_linear_mlp_cannot_learn_xor():
    """The best affine fit of XOR is the constant 1/2 (symmetry and convexity): no
    amount of training takes the cross-entropy below log 2 or the accuracy above 3/4."""
    result = _train_on_xor("linear")
    assert result["accuracy"] <= 0.75
    assert result["loss"] >= math.log(2.0) - 1e-6


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_nonlinear_mlp_learns_xor(activation):
    result = _train_on_xor(activation)
    assert result["accuracy"] == 1.0
    assert result["loss"] < 0.1
