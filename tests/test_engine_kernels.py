"""The engine's backend-specific kernels equal their `keras.ops` compositions."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras.engine.kernels import padded_conv


@pytest.mark.parametrize(
    "kernel_shape, padding",
    [
        ((4, 7, 3, 5), ((3, 0), (3, 3))),
        ((1, 3, 2, 2), ((0, 0), (2, 0))),
        ((2, 2, 1, 1), ((0, 1), (1, 0))),
    ],
)
def test_padded_conv_equals_pad_then_valid_conv(kernel_shape, padding):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 5, kernel_shape[2])).astype("float32")
    kernel = rng.normal(size=kernel_shape).astype("float32")
    padded = np.pad(x, ((0, 0), *padding, (0, 0)))
    expected = keras.ops.conv(padded, kernel, strides=1, padding="valid")
    got = padded_conv(x, kernel, padding)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(expected), atol=1e-5
    )
    rows = x.shape[1] + sum(padding[0]) - kernel_shape[0] + 1
    cols = x.shape[2] + sum(padding[1]) - kernel_shape[1] + 1
    assert tuple(got.shape) == (2, rows, cols, kernel_shape[3])
