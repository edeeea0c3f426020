"""Gradient flow through time (vanishing, exploding, carousel) and clipping by norm."""

from __future__ import annotations

import argparse

import keras
import numpy as np
import pytest

from mp_keras.engine import jacobian, value_and_gradients
from mp_keras.tools import gradient_flow
from mp_keras.tools.gradient_flow import (
    build_cell,
    chained_jacobians,
    clip_by_global_norm,
    measure_gradient_flow,
)
from tests.harness import to_numpy


@pytest.fixture(scope="module")
def curves():
    return {
        "elman_small": measure_gradient_flow("elman", steps=30, recurrent_scale=0.5),
        "elman_large": measure_gradient_flow("elman", steps=30, recurrent_scale=3.0),
        "lstm": measure_gradient_flow("lstm", steps=30, recurrent_scale=1.0, forget_bias=3.0),
    }


def test_small_recurrent_weights_make_gradients_vanish(curves):
    norms = curves["elman_small"]
    assert norms[0] <= 0.5 + 1e-6  # ||diag(1 - h^2) W_h|| <= ||W_h|| = 0.5
    assert norms[29] < 1e-3 * norms[0]
    assert np.all(np.diff(norms) < 0)


def test_large_recurrent_weights_make_gradients_explode(curves):
    norms = curves["elman_large"]
    assert norms[9] > 3 * norms[0]
    assert norms[29] > 30 * norms[0]


def test_lstm_carries_gradients_far_back(curves):
    lstm, elman = curves["lstm"], curves["elman_small"]
    # Forget gates near sigmoid(3) = 0.95 keep the carousel going: after 30 steps the
    # LSTM still passes more than a tenth of its one-step gradient, and a million times
    # more than the Elman cell with small weights at the same distance.
    assert lstm[29] > 0.1 * lstm[0]
    assert lstm[29] > 1e6 * elman[29]


@pytest.mark.parametrize("name", ["elman", "lstm"])
def test_chained_jacobians_match_autodiff_of_the_unrolled_recurrence(name):
    units, steps = 3, 4
    cell = build_cell(name, units, 3, recurrent_scale=1.5, forget_bias=1.0, seed=3)
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(1, steps, 3)).astype("float32")
    num_states = len(np.atleast_1d(cell.state_size))
    start = rng.normal(size=(num_states * units,)).astype("float32")

    def run(state):
        states = [state[None, k * units : (k + 1) * units] for k in range(num_states)]
        for t in range(steps):
            _, states = cell(inputs[:, t], states)
        return keras.ops.concatenate(states, axis=-1)[0]

    by_autodiff = jacobian(run, start)
    states = [start[None, k * units : (k + 1) * units] for k in range(num_states)]
    chained = chained_jacobians(cell, inputs, states)
    assert chained.shape == (steps, 1, num_states * units, num_states * units)
    np.testing.assert_allclose(chained[-1, 0], by_autodiff, rtol=1e-4, atol=1e-5)


def test_clipping_helper_is_the_notes_rule():
    grads = [np.array([[30.0, 40.0]]), np.array([0.0, 0.0])]  # ||g|| = 50
    clipped = [to_numpy(g) for g in clip_by_global_norm(grads, tau=5.0)]
    np.testing.assert_allclose(clipped[0], [[3.0, 4.0]], rtol=1e-6)
    small = [np.array([0.3, 0.4])]
    np.testing.assert_allclose(to_numpy(clip_by_global_norm(small, tau=5.0)[0]), [0.3, 0.4])
    with pytest.raises(ValueError, match="tau"):
        clip_by_global_norm(grads, tau=0.0)


def test_keras_global_clipnorm_applies_the_same_rule():
    eta, tau = 0.1, 1.0
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = np.full((16, 1), 1000.0, "float32")  # far from any prediction: a huge gradient
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(eta, global_clipnorm=tau), loss="mse")
    before = [to_numpy(v) for v in model.trainable_variables]

    def loss(kernel, bias):
        error = keras.ops.matmul(keras.ops.convert_to_tensor(x), kernel) + bias
        return keras.ops.mean(keras.ops.square(error - keras.ops.convert_to_tensor(y)))

    _, grads = value_and_gradients(loss, before)
    norm = np.sqrt(sum(np.sum(g**2) for g in grads))
    assert norm > 100 * tau
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    steps = [to_numpy(v) - b for v, b in zip(model.trainable_variables, before)]
    step_norm = np.sqrt(sum(np.sum(s**2) for s in steps))
    assert step_norm <= eta * tau + 1e-6
    clipped = [to_numpy(g) for g in clip_by_global_norm(grads, tau)]
    for step, g, c in zip(steps, grads, clipped):
        np.testing.assert_allclose(step, -eta * tau * g / norm, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(step, -eta * c, rtol=1e-4, atol=1e-7)


def test_command_writes_the_figure(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    gradient_flow.add_arguments(parser)
    out = tmp_path / "flow.png"
    args = parser.parse_args(["--out", str(out), "--steps", "12"])
    assert gradient_flow.run(args) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "t - k = 1, 10" in printed and printed.count("e-") + printed.count("e+") == 6
