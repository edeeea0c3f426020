"""FVSBN: parameter count, autoregressive mask, normalisation, training and sampling."""

from __future__ import annotations

import numpy as np
import pytest

from mp_keras.models import FVSBN
from tests.harness import (
    binary_images as binary,
)
from tests.harness import (
    check_autoregressive,
    check_normalises,
    randomize_weights,
    run_standard_checks,
    to_numpy,
)


def test_standard_checks(tmp_path):
    run_standard_checks(
        lambda: FVSBN(input_shape=(3, 3, 1), seed=0),
        binary((16, 3, 3, 1)),
        (None, 3, 3, 1),
        tmp_path,
    )


@pytest.mark.parametrize("n", [1, 4, 9])
def test_parameter_count_is_n_squared_plus_n_over_two(n):
    assert FVSBN(input_shape=(n,)).num_free_parameters() == (n * n + n) // 2


def test_autoregressive_and_normalised():
    model = FVSBN(input_shape=(2, 2, 1))
    randomize_weights(model)
    check_autoregressive(model, np.random.default_rng(1).normal(size=(1, 2, 2, 1)))
    check_normalises(model)


def test_learns_a_copy_of_the_first_pixel():
    x = binary((512, 4), seed=2, p=0.5)
    x[:, 3] = x[:, 0]  # x_4 = x_1: FVSBN can learn it, an independent model cannot
    model = FVSBN(input_shape=(4,), seed=0)
    import keras

    model.compile(optimizer=keras.optimizers.Adam(0.1))
    model.fit(x, epochs=80, batch_size=128, verbose=0)
    assert model.nll(x) < 3 * np.log(2) + 0.1  # three fair coins; the fourth is determined
    samples = to_numpy(model.sample(200, seed=0))
    assert (samples[:, 3] == samples[:, 0]).mean() > 0.95
