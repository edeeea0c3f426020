"""The engine's backend-specific kernels compute what their docstrings say, on every backend."""

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
def test_padded_conv_equals_a_numpy_cross_correlation_of_the_padded_input(kernel_shape, padding):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 5, kernel_shape[2])).astype("float32")
    kernel = rng.normal(size=kernel_shape).astype("float32")
    padded = np.pad(x, ((0, 0), *padding, (0, 0)))
    kh, kw = kernel_shape[:2]
    rows_out = padded.shape[1] - kh + 1
    cols_out = padded.shape[2] - kw + 1
    # Cross-correlation written out in NumPy, independent of any backend's convolution.
    expected = np.zeros((2, rows_out, cols_out, kernel_shape[3]), "float32")
    for i in range(kh):
        for j in range(kw):
            window = padded[:, i : i + rows_out, j : j + cols_out, :]
            expected += np.einsum("bhwc,co->bhwo", window, kernel[i, j])
    got = padded_conv(x, kernel, padding)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected, atol=1e-4)
    rows = x.shape[1] + sum(padding[0]) - kernel_shape[0] + 1
    cols = x.shape[2] + sum(padding[1]) - kernel_shape[1] + 1
    assert tuple(got.shape) == (2, rows, cols, kernel_shape[3])
