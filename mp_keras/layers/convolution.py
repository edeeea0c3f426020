"""True convolution beside Keras' cross-correlation (notes, chapter 2: convolution).

The notes define the discrete convolution of an image I with a kernel K as

    (I * K)(i, j) = sum_m sum_n I(i - m, j - n) K(m, n),                   (convolution)

and the cross-correlation, which slides the kernel without flipping it, as

    (I ⋆ K)(i, j) = sum_m sum_n I(i + m, j + n) K(m, n).                   (correlation)

So I * K = I ⋆ rot180(K): convolving is correlating with the kernel flipped along every
spatial axis. Convolution is commutative (f * g = g * f); correlation is not
(g ⋆ f is f ⋆ g reversed). What deep-learning libraries call a convolution layer,
`keras.layers.Conv2D` included, computes the correlation; `Convolution1D` and
`Convolution2D` here compute the convolution of the notes.

The functions `convolve1d`, `correlate1d`, `convolve2d` and `correlate2d` are written in
`keras.ops`, so they run (and differentiate) on every backend; their `mode` follows NumPy
and SciPy (`"full"`, `"valid"`, `"same"`). `convolution_matrix` builds the Toeplitz matrix
(doubly block Toeplitz for 2-D kernels) that turns a convolution into a matrix product.

Backward pass of a correlation layer Z = X ⋆ W ("valid", stride 1) with loss L and
upstream gradient δ = ∂L/∂Z, per input channel c and output channel o:

    ∂L/∂X[..., c] = sum_o δ[..., o] * W[..., c, o]        (full convolution)
                  = sum_o pad(δ[..., o], k - 1) ⋆ rot180(W[..., c, o]),
    ∂L/∂W[..., c, o] = X[..., c] ⋆ δ[..., o]               (valid correlation),
    ∂L/∂b[o] = sum of δ[..., o].

`tests/test_convolution.py` checks these against automatic differentiation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

MODES = ("full", "valid", "same")
PADDINGS = ("valid", "same")


# --------------------------------------------------------------------------- #
# Functions on single-channel signals and images
# --------------------------------------------------------------------------- #


def _mode_pads(kernel_length: int, mode: str) -> tuple[int, int]:
    """Zeros added (before, after) so that a valid correlation gives `mode`'s output."""
    if mode == "full":
        return kernel_length - 1, kernel_length - 1
    if mode == "same":
        # NumPy and SciPy centre "same" on the full output; for even kernels the extra
        # zero goes before.
        return kernel_length // 2, (kernel_length - 1) // 2
    return 0, 0


def _correlate(signal: Any, kernel: Any, mode: str, rank: int, flip: bool) -> Any:
    """Correlation (or, with `flip`, convolution) of a rank-`rank` array, via `ops.conv`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}.")
    x = ops.convert_to_tensor(signal, dtype="float32")
    k = ops.convert_to_tensor(kernel, dtype="float32")
    for name, value in (("signal", x), ("kernel", k)):
        if len(value.shape) != rank:
            raise ValueError(f"{name} must have rank {rank}; got shape {tuple(value.shape)}.")
    if mode == "valid" and any(ks > xs for ks, xs in zip(k.shape, x.shape)):
        raise ValueError(
            f"mode 'valid' needs a kernel no larger than the signal; got kernel shape "
            f"{tuple(k.shape)} and signal shape {tuple(x.shape)}."
        )
    if flip:
        k = ops.flip(k, axis=tuple(range(rank)))
    x = ops.pad(x, [_mode_pads(size, mode) for size in k.shape])
    # ops.conv wants (batch, *spatial, channels) and (*kernel, in_channels, out_channels).
    out = ops.conv(x[None, ..., None], k[..., None, None], padding="valid")
    return out[0, ..., 0]


def convolve1d(signal: Any, kernel: Any, mode: str = "full") -> Any:
    """Convolution (f * g)[i] = sum_m f[i - m] g[m] of two 1-D arrays, as `np.convolve`.

    Args:
        signal: array of shape `(n,)`.
        kernel: array of shape `(k,)`.
        mode: `"full"` (length n + k - 1), `"valid"` (n - k + 1) or `"same"` (n).

    Returns:
        A float32 tensor of the current backend.

    Example:
    >>> import numpy as np
    >>> np.round(keras.ops.convert_to_numpy(convolve1d([1, 2, 3], [0, 1, 0.5])), 3).tolist()
    [0.0, 1.0, 2.5, 4.0, 1.5]
    """
    return _correlate(signal, kernel, mode, rank=1, flip=True)


def correlate1d(signal: Any, kernel: Any, mode: str = "full") -> Any:
    """Cross-correlation (f ⋆ g)[i] = sum_m f[i + m] g[m] of 1-D arrays, as `np.correlate`.

    Args:
        signal: array of shape `(n,)`.
        kernel: array of shape `(k,)`.
        mode: `"full"` (length n + k - 1), `"valid"` (n - k + 1) or `"same"` (n).

    Returns:
        A float32 tensor of the current backend.

    Example:
    >>> import numpy as np
    >>> np.round(keras.ops.convert_to_numpy(correlate1d([1, 2, 3], [0, 1, 0.5])), 3).tolist()
    [0.5, 2.0, 3.5, 3.0, 0.0]
    """
    return _correlate(signal, kernel, mode, rank=1, flip=False)


def convolve2d(image: Any, kernel: Any, mode: str = "full") -> Any:
    """Convolution (I * K)(i, j) = sum_m sum_n I(i - m, j - n) K(m, n) of 2-D arrays.

    Same modes as `scipy.signal.convolve2d`.

    Args:
        image: array of shape `(height, width)`.
        kernel: array of shape `(kernel_height, kernel_width)`.
        mode: `"full"`, `"valid"` or `"same"` (see `convolve1d`, per axis).

    Returns:
        A float32 tensor of the current backend.

    Example:
    >>> import numpy as np
    >>> image = np.arange(9).reshape(3, 3)
    >>> out = convolve2d(image, [[1, 2], [3, 4]], mode="valid")
    >>> np.round(keras.ops.convert_to_numpy(out), 3).tolist()
    [[13.0, 23.0], [43.0, 53.0]]
    """
    return _correlate(image, kernel, mode, rank=2, flip=True)


def correlate2d(image: Any, kernel: Any, mode: str = "full") -> Any:
    """Cross-correlation (I ⋆ K)(i, j) = sum_m sum_n I(i + m, j + n) K(m, n) of 2-D arrays.

    Same modes as `scipy.signal.correlate2d`; mode `"valid"` is what `keras.layers.Conv2D`
    computes.

    Args:
        image: array of shape `(height, width)`.
        kernel: array of shape `(kernel_height, kernel_width)`.
        mode: `"full"`, `"valid"` or `"same"` (see `correlate1d`, per axis).

    Returns:
        A float32 tensor of the current backend.

    Example:
    >>> import numpy as np
    >>> image = np.arange(9).reshape(3, 3)
    >>> out = correlate2d(image, [[1, 2], [3, 4]], mode="valid")
    >>> np.round(keras.ops.convert_to_numpy(out), 3).tolist()
    [[27.0, 37.0], [57.0, 67.0]]
    """
    return _correlate(image, kernel, mode, rank=2, flip=False)


def _output_rows(kernel_length: int, input_length: int, mode: str) -> slice:
    """Which rows of the full convolution matrix `mode` keeps."""
    if mode == "full":
        return slice(0, input_length + kernel_length - 1)
    if mode == "valid":
        return slice(kernel_length - 1, input_length)
    start = (kernel_length - 1) // 2
    return slice(start, start + input_length)


def convolution_matrix(
    kernel: Any, input_length: int | Sequence[int], mode: str = "full"
) -> np.ndarray:
    """The Toeplitz matrix T with convolve(x, kernel, mode) = T @ x (NumPy).

    For a 1-D kernel of length k and inputs of length n, the full matrix has shape
    `(n + k - 1, n)` and entries T[i, j] = kernel[i - j] (zero outside the kernel): it is
    constant along its diagonals. For a 2-D kernel of shape `(kh, kw)` and images of shape
    `input_length = (h, w)` flattened row by row, it is the doubly block Toeplitz matrix:
    an `(h + kh - 1) x h` grid of blocks whose block (i, j) is the 1-D matrix of kernel
    row i - j for images of width w. Modes `"valid"` and `"same"` keep the matching rows.

    Args:
        kernel: array of rank 1 or 2.
        input_length: int (1-D) or `(height, width)` (2-D).
        mode: `"full"`, `"valid"` or `"same"`.

    Returns:
        A float64 NumPy array of shape `(output size, input size)`.

    Example:
    >>> convolution_matrix([1, 2], 3).tolist()
    [[1.0, 0.0, 0.0], [2.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 2.0]]
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}.")
    kernel = np.asarray(kernel, dtype="float64")
    if kernel.ndim == 1:
        (k,), n = kernel.shape, int(input_length)
        if mode == "valid" and k > n:
            raise ValueError(f"mode 'valid' needs kernel length {k} <= input length {n}.")
        i, j = np.indices((n + k - 1, n))
        full = np.where((i - j >= 0) & (i - j < k), kernel[np.clip(i - j, 0, k - 1)], 0.0)
        return full[_output_rows(k, n, mode)]
    if kernel.ndim != 2:
        raise ValueError(f"kernel must have rank 1 or 2; got shape {kernel.shape}.")
    (kh, kw), (h, w) = kernel.shape, (int(d) for d in input_length)
    if mode == "valid" and (kh > h or kw > w):
        raise ValueError(f"mode 'valid' needs kernel {kernel.shape} <= input {(h, w)}.")
    blocks = [convolution_matrix(row, w) for row in kernel]  # each (w + kw - 1, w)
    full = np.zeros((h + kh - 1, w + kw - 1, h, w))  # (out row, out col, in row, in col)
    for i in range(h + kh - 1):
        for j in range(max(0, i - kh + 1), min(h, i + 1)):
            full[i, :, j, :] = blocks[i - j]
    rows, cols = _output_rows(kh, h, mode), _output_rows(kw, w, mode)
    return full[rows, cols].reshape(-1, h * w)


# --------------------------------------------------------------------------- #
# Layers
# --------------------------------------------------------------------------- #


class _Convolution(keras.layers.Layer):
    """Shared body of `Convolution1D` and `Convolution2D` (channels last)."""

    rank = 0

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if int(filters) < 1:
            raise ValueError(f"filters must be a positive int; got {filters!r}.")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}; got {padding!r}.")
        self.filters = int(filters)
        self.kernel_size = self._tuple(kernel_size, "kernel_size")
        self.strides = self._tuple(strides, "strides")
        self.padding = padding
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.InputSpec(ndim=self.rank + 2)

    def _tuple(self, value: int | Sequence[int], name: str) -> tuple[int, ...]:
        values = (int(value),) * self.rank if np.isscalar(value) else tuple(int(v) for v in value)
        if len(values) != self.rank or min(values) < 1:
            raise ValueError(
                f"{name} must be a positive int or {self.rank} positive ints; got {value!r}."
            )
        return values

    def build(self, input_shape: Sequence[int | None]) -> None:
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{type(self).__name__} needs a known channel count (last axis).")
        self.input_spec = keras.InputSpec(ndim=self.rank + 2, axes={-1: channels})
        # (*kernel_size, in_channels, filters), the layout of keras.layers.Conv2D
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, channels, self.filters),
            initializer=self.kernel_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer
            )

    def call(self, inputs: Any) -> Any:
        # Correlating with the kernel rotated by 180 degrees is the convolution of the notes.
        flipped = ops.flip(self.kernel, axis=tuple(range(self.rank)))
        outputs = ops.conv(inputs, flipped, strides=self.strides, padding=self.padding)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        spatial = []
        for size, k, s in zip(input_shape[1:-1], self.kernel_size, self.strides):
            if size is None:
                spatial.append(None)
            elif self.padding == "same":
                spatial.append(-(-size // s))
            else:
                spatial.append((size - k) // s + 1)
        return (input_shape[0], *spatial, self.filters)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": list(self.kernel_size),
                "strides": list(self.strides),
                "padding": self.padding,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="mp_keras")
class Convolution1D(_Convolution):
    """1-D convolution layer: the kernel is flipped, unlike `keras.layers.Conv1D`.

    Implements (x * K)[i] = sum_m x[i - m] K[m] per input/output channel pair, summed over
    input channels, plus a bias (notes, chapter 2, convolution). Equals `Conv1D` with the
    kernel reversed along its spatial axis, for every padding and stride; with
    `padding="valid"` it is `convolve1d(..., mode="valid")` per channel pair.

    Args:
        filters: int. Number of output channels.
        kernel_size: int or tuple of one int. Spatial size of the kernel.
        strides: int or tuple of one int. Step between output positions. Defaults to `1`.
        padding: str. `"valid"` (no zeros added) or `"same"` (output size
            ceil(input / stride)); zeros are placed exactly where `keras.layers.Conv1D`
            places them. Defaults to `"valid"`.
        activation: str or None. Non-linearity applied to the output. Defaults to `None`.
        use_bias: bool. Whether to add one bias per filter. Defaults to `True`.
        kernel_initializer: str or initializer. Defaults to `"glorot_uniform"`.
        bias_initializer: str or initializer. Defaults to `"zeros"`.

    Example:
    >>> import numpy as np
    >>> layer = Convolution1D(filters=1, kernel_size=3, use_bias=False)
    >>> layer.build((None, 5, 1))
    >>> layer.set_weights([np.array([0.0, 1.0, 0.5]).reshape(3, 1, 1)])
    >>> x = np.array([1.0, 2.0, 3.0, 4.0, 5.0]).reshape(1, 5, 1)
    >>> np.round(keras.ops.convert_to_numpy(layer(x))[0, :, 0], 3).tolist()
    [2.5, 4.0, 5.5]
    """

    rank = 1


@keras.saving.register_keras_serializable(package="mp_keras")
class Convolution2D(_Convolution):
    """2-D convolution layer: the kernel is flipped, unlike `keras.layers.Conv2D`.

    Implements (I * K)(i, j) = sum_m sum_n I(i - m, j - n) K(m, n) per input/output channel
    pair, summed over input channels, plus a bias (notes, chapter 2, convolution).
    `keras.layers.Conv2D` computes the cross-correlation I ⋆ K instead; this layer equals
    `Conv2D` with the kernel rotated by 180 degrees, for every padding and stride. A
    network learns equally well with either (the flip is a re-parameterisation); the
    difference matters when a kernel is given, e.g. a filter designed by hand.

    With `padding="same"` and an odd kernel size the output is the centred part of the
    full convolution, as `scipy.signal.convolve2d(..., mode="same")`. For an even kernel
    size Keras puts the extra zero after the image rather than before, so the output is
    the full convolution shifted by one from SciPy's.

    Args:
        filters: int. Number of output channels.
        kernel_size: int or tuple of 2 ints. Spatial size of the kernel.
        strides: int or tuple of 2 ints. Step between output positions. Defaults to `1`.
        padding: str. `"valid"` (no zeros added) or `"same"` (output size
            ceil(input / stride)); zeros are placed exactly where `keras.layers.Conv2D`
            places them. Defaults to `"valid"`.
        activation: str or None. Non-linearity applied to the output. Defaults to `None`.
        use_bias: bool. Whether to add one bias per filter. Defaults to `True`.
        kernel_initializer: str or initializer. Defaults to `"glorot_uniform"`.
        bias_initializer: str or initializer. Defaults to `"zeros"`.

    Example:
    >>> import numpy as np
    >>> layer = Convolution2D(filters=1, kernel_size=2, use_bias=False)
    >>> layer.build((None, 3, 3, 1))
    >>> layer.set_weights([np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)])
    >>> image = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
    >>> np.round(keras.ops.convert_to_numpy(layer(image))[0, :, :, 0], 3).tolist()
    [[13.0, 23.0], [43.0, 53.0]]
    """

    rank = 2
