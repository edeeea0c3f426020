"""MLP classifier: harness checks, learning the digits, input checks."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.models import MLP
from tests.harness import run_standard_checks


def test_standard_checks(tmp_path):
    digits = data.load("digits", "train")
    run_standard_checks(
        lambda: MLP(input_shape=(8, 8, 1), num_classes=10, hidden_units=(16,)),
        digits.x[:64],
        (None, 10),
        tmp_path,
        y=digits.y[:64],
    )


def test_learns_the_digits():
    keras.utils.set_random_seed(0)
    train, test = data.load("digits", "train"), data.load("digits", "test")
    model = MLP(input_shape=(8, 8, 1), num_classes=10, hidden_units=(64,))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(train.x, train.y, epochs=25, batch_size=64, verbose=0)
    result = model.evaluate(test.x, test.y, verbose=0, return_dict=True)
    assert result["accuracy"] > 0.93


def test_bad_inputs():
    model = MLP(input_shape=(8, 8, 1), num_classes=10)
    model.compile()
    y = np.zeros(4, "int32")
    with pytest.raises(ValueError, match="rank 4"):
        model.fit(np.zeros((4, 64), "float32"), y, verbose=0)
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.full((4, 8, 8, 1), np.inf, "float32"), y, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 8, 8, 1\)"):
        model.predict(np.zeros((4, 8, 8, 3), "float32"), verbose=0)
    with pytest.raises(ValueError, match="num_classes"):
        MLP(num_classes=1)
