"""Max pooling that remembers where each maximum was (notes, chapter 3: max unpooling).

Keras' `MaxPooling2D` returns the maxima only. A decoder that wants to "unpool" (put each
value back where its maximum came from, SegNet-style) needs the arg-max positions too, so
`MaxPooling2DWithIndices` returns both. It is written in `keras.ops` only (reshapes, `max`,
`argmax`), so it runs on every backend and exports to TFLite builtins.

Supported configuration: non-overlapping windows (`strides == pool_size`), "valid" padding,
channels-last inputs whose height and width are known and divisible by the pool size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}.")
    return int(pair[0]), int(pair[1])


def _static_size(owner: str, shape: Sequence[int | None], pool_size: tuple[int, int]) -> None:
    if len(shape) != 4:
        raise ValueError(
            f"{owner} expects inputs of rank 4 (batch, height, width, channels); "
            f"got shape {tuple(shape)}."
        )
    _, height, width, channels = shape
    if height is None or width is None or channels is None:
        raise ValueError(
            f"{owner} needs a known height, width and channels; got shape {tuple(shape)}."
        )
    if height % pool_size[0] or width % pool_size[1]:
        raise ValueError(
            f"{owner} expects height and width divisible by pool_size {pool_size}; "
            f"got shape {tuple(shape)}."
        )


def image_to_windows(x: Any, pool_size: tuple[int, int]) -> Any:
    """Splits an image into its non-overlapping windows, one window per output pixel.

    Args:
        x: tensor `(batch, height, width, channels)`, height and width divisible by
            `pool_size`.
        pool_size: `(ph, pw)`, the window size.

    Returns:
        `(batch, height / ph, width / pw, channels, ph * pw)`: each window's values in
        row-major order.

    Example:
    >>> import numpy as np
    >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> keras.ops.convert_to_numpy(image_to_windows(x, (2, 2)))[0, 0, 1, 0].tolist()
    [2.0, 3.0, 6.0, 7.0]
    """
    _, height, width, channels = x.shape
    ph, pw = pool_size
    h, w = height // ph, width // pw
    windows = ops.reshape(x, (-1, h, ph, w, pw, channels))
    windows = ops.transpose(windows, (0, 1, 3, 5, 2, 4))  # (batch, h, w, channels, ph, pw)
    return ops.reshape(windows, (-1, h, w, channels, ph * pw))


def windows_to_image(windows: Any, pool_size: tuple[int, int]) -> Any:
    """Inverse of `image_to_windows`: tiles each window back into its place.

    Args:
        windows: tensor `(batch, h, w, channels, ph * pw)`.
        pool_size: `(ph, pw)`, the window size.

    Returns:
        `(batch, h * ph, w * pw, channels)`.

    Example:
    >>> import numpy as np
    >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> back = windows_to_image(image_to_windows(x, (2, 2)), (2, 2))
    >>> bool(np.array_equal(keras.ops.convert_to_numpy(back), x))
    True
    """
    _, h, w, channels, _ = windows.shape
    ph, pw = pool_size
    image = ops.reshape(windows, (-1, h, w, channels, ph, pw))
    image = ops.transpose(image, (0, 1, 4, 2, 5, 3))  # (batch, h, ph, w, pw, channels)
    return ops.reshape(image, (-1, h * ph, w * pw, channels))


def window_positions(
    size: tuple[int, int], pool_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions `row * width + col` of the windows of a `size` image.

    Args:
        size: `(height, width)` of the image, divisible by `pool_size`.
        pool_size: `(ph, pw)`, the window size.

    Returns:
        `origins`, int32 `(1, height / ph, width / pw, 1)`: each window's top-left
        position; `offsets`, int32 `(ph * pw,)`: what each slot of a window (row-major)
        adds to its origin.

    Example:
    >>> origins, offsets = window_positions((4, 4), (2, 2))
    >>> origins[0, :, :, 0].tolist(), offsets.tolist()
    ([[0, 2], [8, 10]], [0, 1, 4, 5])
    """
    (height, width), (ph, pw) = size, pool_size
    rows = np.arange(0, height, ph)[:, None]
    cols = np.arange(0, width, pw)[None, :]
    origins = (rows * width + cols).astype("int32")[None, :, :, None]
    offsets = (np.arange(ph)[:, None] * width + np.arange(pw)[None, :]).astype("int32")
    return origins, offsets.ravel()


@keras.saving.register_keras_serializable(package="mp_keras")
class MaxPooling2DWithIndices(keras.layers.Layer):
    """Max pooling that also returns the arg-max positions, for `MaxUnpooling2D`.

    Notes, chapter 3 (max pooling and max unpooling): y_ij = max over the window
    R_ij of x, and the pooling layer remembers (i*, j*) = argmax over R_ij so that
    unpooling can put a value back where the maximum was. The pooled values equal
    `keras.layers.MaxPooling2D(pool_size)`; the gradient of the output flows only to
    the arg-max position of each window.

    The indices are flat positions within each channel's input plane,
    `row * width + col` (PyTorch's `return_indices` convention), int32, one per output
    value. Ties go to the first maximum in row-major order, and so does the gradient: the
    values are read at the recorded positions, so their gradient flows exactly where the
    indices point (as PyTorch's `max_pool2d(..., return_indices=True)`). Only
    non-overlapping windows (`strides == pool_size`, "valid" padding) on channels-last
    inputs whose height and width are divisible by the pool size are supported.

    Args:
        pool_size: int or pair of ints. Window size `(ph, pw)`, also the stride.
            Defaults to `2`.

    Returns:
        A pair `(values, indices)`, both `(batch, height / ph, width / pw, channels)`.

    Example:
    >>> import numpy as np
    >>> x = np.array([[1, 2, 0, 1], [3, 0, 5, 4], [0, 1, 1, 0], [2, 0, 0, 6]], "float32")
    >>> values, indices = MaxPooling2DWithIndices(2)(x.reshape(1, 4, 4, 1))
    >>> keras.ops.convert_to_numpy(values)[0, :, :, 0].tolist()
    [[3.0, 5.0], [2.0, 6.0]]
    >>> keras.ops.convert_to_numpy(indices)[0, :, :, 0].tolist()
    [[4, 6], [12, 15]]
    """

    def __init__(self, pool_size: int | Sequence[int] = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")

    def build(self, input_shape: Sequence[int | None]) -> None:
        _static_size(type(self).__name__, input_shape, self.pool_size)

    def call(self, inputs: Any) -> tuple[Any, Any]:
        _, height, width, _ = inputs.shape
        windows = image_to_windows(inputs, self.pool_size)  # (batch, h, w, channels, ph * pw)
        # The first slot (row-major) holding the maximum. An arg-max over an int mask, as
        # Keras' float arg-max on TensorFlow tests the sign bit with an op that TFLite
        # lacks.
        is_max = ops.equal(windows, ops.max(windows, axis=-1, keepdims=True))
        slot = ops.cast(ops.argmax(ops.cast(is_max, "int32"), axis=-1), "int32")
        # The values are the entries at that slot, so the gradient goes exactly where the
        # index points, and never through the gradient of `max`: JAX's divides by how many
        # entries equal the maximum, which is 0 (and the gradient 0/0) when XLA recomputes
        # the window in another fusion with other roundings.
        values = ops.take_along_axis(windows, ops.stop_gradient(slot)[..., None], axis=-1)
        values = ops.squeeze(values, axis=-1)
        origins, offsets = window_positions((height, width), self.pool_size)
        # The slot's offset from the window's corner comes from a table: no integer
        # division or remainder, which TFLite may lower to ops outside its builtins.
        return values, ops.add(origins, ops.take(offsets, ops.cast(slot, "int32")))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Any:
        batch, height, width, channels = input_shape
        ph, pw = self.pool_size
        shape = (batch, height // ph, width // pw, channels)
        return shape, shape

    def compute_output_spec(self, inputs: Any) -> Any:
        _static_size(type(self).__name__, inputs.shape, self.pool_size)
        values_shape, indices_shape = self.compute_output_shape(inputs.shape)
        return (
            keras.KerasTensor(values_shape, dtype=inputs.dtype),
            keras.KerasTensor(indices_shape, dtype="int32"),
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"pool_size": list(self.pool_size)})
        return config
