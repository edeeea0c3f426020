"""Backend-specific forms of a few ops where the generic `keras.ops` form is much slower.

The engine is the only package that branches on the backend; layers call these functions
and stay backend-free. Each function equals its `keras.ops` composition on every backend
(tested), and only the program XLA or a framework receives differs.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def padded_conv(inputs: Any, kernel: Any, padding: tuple[tuple[int, int], ...]) -> Any:
    """Stride-1 convolution of `inputs` zero-padded by `((top, bottom), (left, right))`.

    Equal to `ops.conv(ops.pad(inputs, ...), kernel, padding="valid")`, the form used on
    TensorFlow and PyTorch. On JAX the padding goes into XLA's convolution itself: a
    separate pad in front of it made the PixelCNN's training step on XLA's CPU backend
    about 1.5 times slower (`apps/benchmarks/density_throughput.py`, docs/chapter6.md).

    Example:
    >>> import numpy as np
    >>> import keras
    >>> x = np.ones((1, 2, 2, 1), "float32")
    >>> y = padded_conv(x, np.ones((2, 1, 1, 1), "float32"), ((1, 0), (0, 0)))
    >>> keras.ops.convert_to_numpy(y)[0, :, :, 0].tolist()  # row i sums rows i - 1, i
    [[1.0, 1.0], [2.0, 2.0]]
    """
    inputs = ops.convert_to_tensor(inputs)
    kernel = ops.cast(kernel, inputs.dtype)
    if keras.backend.backend() == "jax":
        import jax

        return jax.lax.conv_general_dilated(
            inputs, kernel, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
    padded = ops.pad(inputs, ((0, 0), *padding, (0, 0)))
    return ops.conv(padded, kernel, strides=1, padding="valid")
