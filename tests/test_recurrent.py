"""Elman and LSTM cells: the notes' equations by hand, Jacobians, stacking, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras.engine import jacobian
from mp_keras.layers.recurrent import ElmanCell, LSTMCell, recurrent_cell
from tests.harness import check_config_round_trip, check_fit_step, check_save_load, to_numpy

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 3, 2)).astype("float32")  # (batch, time, features): 3 steps


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def elman_by_hand(x, w_x, w_h, b):
    h, outputs = np.zeros((x.shape[0], w_h.shape[0])), []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ w_x + h @ w_h + b)  # the notes' W_h h + W_x x + b, row vectors
        outputs.append(h)
    return np.stack(outputs, axis=1), h


def lstm_by_hand(x, w, u, b, units):
    h = c = np.zeros((x.shape[0], units))
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ w + h @ u + b
        f, i, o = (sigmoid(z[:, k * units : (k + 1) * units]) for k in range(3))
        g = np.tanh(z[:, 3 * units :])
        c = f * c + i * g
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def test_elman_matches_the_equation_by_hand():
    cell = ElmanCell(3)
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    layer.build(X.shape)
    w_x = RNG.normal(size=(2, 3)).astype("float32")
    w_h = RNG.normal(size=(3, 3)).astype("float32")
    b = RNG.normal(size=(3,)).astype("float32")
    cell.kernel.assign(w_x)
    cell.recurrent_kernel.assign(w_h)
    cell.bias.assign(b)
    sequence, last = layer(X)
    want_sequence, want_last = elman_by_hand(X, w_x, w_h, b)
    np.testing.assert_allclose(to_numpy(sequence), want_sequence, atol=1e-6)
    np.testing.assert_allclose(to_numpy(last), want_last, atol=1e-6)


def test_lstm_matches_the_equations_by_hand():
    units = 2
    cell = LSTMCell(units)
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    layer.build(X.shape)
    w = RNG.normal(size=(2, 4 * units)).astype("float32")
    u = RNG.normal(size=(units, 4 * units)).astype("float32")
    b = RNG.normal(size=(4 * units,)).astype("float32")
    cell.kernel.assign(w)
    cell.recurrent_kernel.assign(u)
    cell.bias.assign(b)
    sequence, last_h, last_c = layer(X)
    want_sequence, want_h, want_c = lstm_by_hand(X, w, u, b, units)
    np.testing.assert_allclose(to_numpy(sequence), want_sequence, atol=1e-6)
    np.testing.assert_allclose(to_numpy(last_h), want_h, atol=1e-6)
    np.testing.assert_allclose(to_numpy(last_c), want_c, atol=1e-6)


def test_forget_gate_bias_starts_at_one_or_zero():
    with_bias, without = LSTMCell(3), LSTMCell(3, unit_forget_bias=False)
    with_bias.build((None, 2))
    without.build((None, 2))
    np.testing.assert_array_equal(to_numpy(with_bias.bias), [1.0] * 3 + [0.0] * 9)
    np.testing.assert_array_equal(to_numpy(without.bias), [0.0] * 12)


@pytest.mark.parametrize("name", ["elman", "lstm"])
def test_state_jacobian_matches_autodiff(name):
    units = 3
    cell = recurrent_cell(name, units, bias_initializer="random_normal")
    cell.build((None, 2))
    num_states = len(np.atleast_1d(cell.state_size))
    state = RNG.normal(size=(num_states * units,)).astype("float32")
    x = X[:1, 0]

    def step(s):
        parts = [s[None, k * units : (k + 1) * units] for k in range(num_states)]
        _, new = cell(x, parts)
        return keras.ops.concatenate(new, axis=-1)[0]

    by_autodiff = jacobian(step, state)
    parts = [state[None, k * units : (k + 1) * units] for k in range(num_states)]
    by_formula = to_numpy(cell.state_jacobian(x, parts))[0]
    np.testing.assert_allclose(by_formula, by_autodiff, atol=1e-5)


def test_stacked_cells_equal_chained_layers():
    first, second = ElmanCell(3), LSTMCell(4)
    stacked = keras.layers.RNN([first, second], return_sequences=True, return_state=True)
    outputs = stacked(X)
    sequence, states = outputs[0], outputs[1:]
    # The same cells (same weights) as two layers, one after the other.
    middle = keras.layers.RNN(first, return_sequences=True)(X)
    top, top_h, top_c = keras.layers.RNN(second, return_sequences=True, return_state=True)(middle)
    np.testing.assert_allclose(to_numpy(sequence), to_numpy(top), atol=1e-6)
    flat = [to_numpy(s) for s in keras.tree.flatten(states)]
    assert [s.shape for s in flat] == [(2, 3), (2, 4), (2, 4)]  # h1, then h2 and c2
    np.testing.assert_allclose(flat[1], to_numpy(top_h), atol=1e-6)
    np.testing.assert_allclose(flat[2], to_numpy(top_c), atol=1e-6)


def test_config_and_keras_file_round_trip(tmp_path):
    elman = ElmanCell(
        4, recurrent_initializer={"class_name": "Orthogonal", "config": {"gain": 3.0}}
    )
    lstm = LSTMCell(2, unit_forget_bias=False)
    for cell in (elman, lstm):
        clone = check_config_round_trip(cell)
        assert type(clone) is type(cell) and clone.units == cell.units
    inputs = keras.Input((3, 2))
    hidden = keras.layers.RNN(elman, return_sequences=True)(inputs)
    outputs = keras.layers.RNN(lstm)(hidden)
    model = keras.Model(inputs, outputs)
    assert tuple(model(keras.Input((3, 2))).shape) == (None, 2)
    model.compile(optimizer="adam", loss="mse")
    check_fit_step(model, X, np.zeros((2, 2), "float32"))
    loaded = check_save_load(model, X, tmp_path / "rnn.keras")
    assert loaded.layers[1].cell.get_config() == elman.get_config()


def test_bad_arguments():
    with pytest.raises(ValueError, match="units"):
        ElmanCell(0)
    with pytest.raises(ValueError, match="activation"):
        ElmanCell(3, activation="softmax")
    with pytest.raises(ValueError, match="cell must be one of"):
        recurrent_cell("gru", 3)
