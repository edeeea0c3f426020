"""Upsampling layers of fully convolutional decoders (notes, chapter 3: upsampling).

Each layer turns every input value into an s x s block of the output:

* `NearestNeighborUpsampling2D` copies the value into the whole block;
* `BedOfNailsUpsampling2D` puts it at the block's top-left corner, zeros elsewhere;
* `MaxUnpooling2D` puts it where the matching `MaxPooling2DWithIndices` found the maximum,
  zeros elsewhere.

All three build the blocks with elementwise products against constant or one-hot vectors
and reshapes (`windows_to_image`), never a scatter, so they export to TFLite builtins.

The fourth upsampling of the notes, transposed convolution, is Keras'
`keras.layers.Conv2DTranspose(filters, kernel_size, strides=s)`: every input value scatters
`value * kernel` into the output at stride s and overlapping contributions add up.
`padding="valid"` keeps the full result, `(n - 1) * s + k` pixels a side; `padding="same"`
keeps the first `n * s` of them (the surplus is cropped at the bottom and right).
`tests/test_upsampling.py` checks this against a NumPy loop on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from mp_keras.layers.pooling import _pair, window_positions, windows_to_image


def _check_rank4(owner: str, shape: Sequence[int | None]) -> None:
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ValueError(
            f"{owner} expects inputs (batch, height, width, channels) with known height, "
            f"width and channels; got shape {tuple(shape)}."
        )


def _upsampled_shape(shape: Sequence[int | None], size: tuple[int, int]) -> tuple:
    batch, height, width, channels = shape
    return (batch, height * size[0], width * size[1], channels)


class _BlockUpsampling2D(keras.layers.Layer):
    """Shared plumbing: one argument `size`, each value becomes a `size` block."""

    def __init__(self, size: int | Sequence[int] = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = _pair(size, "size")

    def build(self, input_shape: Sequence[int | None]) -> None:
        _check_rank4(type(self).__name__, input_shape)

    def block(self, dtype: str) -> Any:
        """The `(sh * sw,)` pattern one input value of 1 becomes, row-major."""
        raise NotImplementedError

    def call(self, inputs: Any) -> Any:
        pattern = self.block(inputs.dtype)
        return windows_to_image(inputs[..., None] * pattern, self.size)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        return _upsampled_shape(input_shape, self.size)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"size": list(self.size)})
        return config


@keras.saving.register_keras_serializable(package="mp_keras")
class NearestNeighborUpsampling2D(_BlockUpsampling2D):
    """Nearest-neighbour upsampling: each value is copied into an s x s block.

    Notes, chapter 3 (upsampling, "nearest neighbour"): y[s*i + a, s*j + b] = x[i, j]
    for 0 <= a, b < s. Equals `keras.layers.UpSampling2D(size, interpolation="nearest")`.

    Args:
        size: int or pair of ints. Upsampling factor `(sh, sw)`. Defaults to `2`.

    Example:
    >>> import numpy as np
    >>> x = np.array([[1, 2], [3, 4]], "float32").reshape(1, 2, 2, 1)
    >>> y = NearestNeighborUpsampling2D(2)(x)
    >>> keras.ops.convert_to_numpy(y)[0, :, :, 0].astype(int).tolist()
    [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    """

    def block(self, dtype: str) -> Any:
        return ops.ones((self.size[0] * self.size[1],), dtype=dtype)


@keras.saving.register_keras_serializable(package="mp_keras")
class BedOfNailsUpsampling2D(_BlockUpsampling2D):
    """Bed-of-nails upsampling: each value at the top-left of an s x s block, zeros elsewhere.

    Notes, chapter 3 (upsampling, "bed of nails"): y[s*i, s*j] = x[i, j] and every other
    output is 0. It is max unpooling whose remembered position is always the top-left
    corner, and transposed convolution with a kernel that is 1 at the top-left.

    Args:
        size: int or pair of ints. Upsampling factor `(sh, sw)`. Defaults to `2`.

    Example:
    >>> import numpy as np
    >>> x = np.array([[1, 2], [3, 4]], "float32").reshape(1, 2, 2, 1)
    >>> y = BedOfNailsUpsampling2D(2)(x)
    >>> keras.ops.convert_to_numpy(y)[0, :, :, 0].astype(int).tolist()
    [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]
    """

    def block(self, dtype: str) -> Any:
        return ops.one_hot(0, self.size[0] * self.size[1], dtype=dtype)


@keras.saving.register_keras_serializable(package="mp_keras")
class MaxUnpooling2D(keras.layers.Layer):
    """Max unpooling: each value goes where its pooling window had its maximum.

    Notes, chapter 3 (max unpooling): the decoder's unpooling layer is paired with an
    encoder's max pooling layer; y[i*, j*] = x[i, j] at the position (i*, j*) that pooling
    remembered for output (i, j), and every other output is 0. Takes `(values, indices)`
    with the indices of `MaxPooling2DWithIndices` (flat positions `row * width + col` in
    each channel's unpooled plane), both `(batch, h, w, channels)`, and returns
    `(batch, h * ph, w * pw, channels)`.

    Each index must lie inside its own window, as pooling indices do (any other index
    leaves its window's block zero); the layer reads only the slot inside the window,
    which makes it a product with a one-hot pattern rather than a scatter (TFLite
    builtins only).

    Args:
        pool_size: int or pair of ints. Window size `(ph, pw)` of the matching pooling
            layer. Defaults to `2`.

    Example:
    >>> import numpy as np
    >>> from mp_keras.layers.pooling import MaxPooling2DWithIndices
    >>> x = np.array([[1, 2, 0, 1], [3, 0, 5, 4], [0, 1, 1, 0], [2, 0, 0, 6]], "float32")
    >>> _, indices = MaxPooling2DWithIndices(2)(x.reshape(1, 4, 4, 1))
    >>> new = np.array([[1, 2], [3, 4]], "float32").reshape(1, 2, 2, 1)
    >>> y = MaxUnpooling2D(2)([new, indices])
    >>> keras.ops.convert_to_numpy(y)[0, :, :, 0].astype(int).tolist()
    [[0, 0, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 0, 4]]
    """

    def __init__(self, pool_size: int | Sequence[int] = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")

    def build(self, input_shape: Sequence[Sequence[int | None]]) -> None:
        owner = type(self).__name__
        if len(input_shape) != 2:
            raise ValueError(f"{owner} takes [values, indices]; got {len(input_shape)} inputs.")
        values_shape, indices_shape = (tuple(s) for s in input_shape)
        _check_rank4(owner, values_shape)
        if values_shape[1:] != indices_shape[1:]:
            raise ValueError(
                f"{owner} expects values and indices of the same shape; got "
                f"{values_shape} and {indices_shape}."
            )

    def call(self, inputs: Sequence[Any]) -> Any:
        values, indices = inputs
        _, h, w, _ = values.shape
        ph, pw = self.pool_size
        origins, offsets = window_positions((h * ph, w * pw), self.pool_size)
        # Which slot of its window each index points at, as a one-hot vector found by
        # comparing with the slots' offsets (no division: see MaxPooling2DWithIndices).
        delta = ops.subtract(ops.cast(indices, "int32"), origins)  # (batch, h, w, channels)
        one_hot = ops.cast(ops.equal(delta[..., None], offsets), values.dtype)
        return windows_to_image(values[..., None] * one_hot, self.pool_size)

    def compute_output_shape(self, input_shape: Sequence[Sequence[int | None]]) -> tuple:
        return _upsampled_shape(input_shape[0], self.pool_size)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"pool_size": list(self.pool_size)})
        return config
