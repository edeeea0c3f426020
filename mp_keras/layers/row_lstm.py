"""Row LSTM of PixelRNN (notes, section 6.4; van den Oord et al. 2016, section 3.1).

Also `raster_mask`, the mask of the Row LSTM's input-to-state convolution: PixelCNN's mask
(rows top to bottom, columns left to right, colour channels in order) for a 1 x k kernel.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.layers.masked_conv import channel_groups, pixelcnn_mask

MASK_TYPES = ("A", "B")


def raster_mask(
    kernel_size: tuple[int, int],
    in_features: int,
    out_features: int,
    mask_type: str,
    channels: int = 1,
) -> np.ndarray:
    """The `(kh, kw, in, out)` mask of a convolution that never looks ahead in raster order.

    PixelCNN's mask (`mp_keras.layers.masked_conv.pixelcnn_mask`, van den Oord et al.
    2016, section 3.4) with the feature maps split into `channels` colour groups: type
    `"A"` lets output group c see input groups < c at the centre (the first layer, whose
    input is the image itself), type `"B"` groups <= c (later layers).

    Example:
    >>> raster_mask((3, 3), 1, 1, "A")[:, :, 0, 0].astype(int).tolist()
    [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    >>> raster_mask((1, 3), 1, 1, "B")[:, :, 0, 0].astype(int).tolist()
    [[1, 1, 0]]
    """
    kh, kw = (int(k) for k in kernel_size)
    if kh % 2 != 1 or kw % 2 != 1:
        raise ValueError(f"A masked kernel needs odd sizes (a centre), got {(kh, kw)}.")
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}.")
    groups_in = channel_groups(in_features, channels)
    return pixelcnn_mask((kh, kw), groups_in, channel_groups(out_features, channels), mask_type)


@keras.saving.register_keras_serializable(package="mp_keras")
class RowLSTM(keras.layers.Layer):
    """Row LSTM: an LSTM that runs over the rows of a feature map, top to bottom.

    van den Oord et al., "Pixel Recurrent Neural Networks", ICML 2016, section 3.1. A
    whole row is one time step; the state of row r is `(batch, width, units)`. With x_r
    row r of the input, h_(r-1), c_(r-1) the previous row's state (zero before row 0):

        [f, i, o, g] = [sigma, sigma, sigma, tanh](K_ss * h_(r-1) + K_is * x_r + b)
        c_r = f . c_(r-1) + i . g,    h_r = o . tanh(c_r)

    where `*` is a convolution along the row. The input-to-state kernel K_is is
    `1 x input_kernel_size`, masked (type B, `raster_mask`) so that a pixel's gates see
    only the input at that pixel and the pixels to its left; it is computed for all rows
    at once. The state-to-state kernel K_ss (`state_kernel_size`, unmasked) reads the
    previous row, which lies wholly before row r. So h at pixel (r, j) depends on inputs
    in rows < r and on row r at columns <= j: never on later pixels, though its
    receptive field is a triangle (it misses far-away pixels of the rows above).

    The gates are stacked in the order f, i, o, g (as `LSTMCell`): `input_kernel` is
    `(1, input_kernel_size, input_dim, 4 * units)`, `state_kernel`
    `(1, state_kernel_size, units, 4 * units)` (both 1 x k kernels over a row), `bias`
    `(4 * units,)` with b_f = 1.

    Args:
        units: int. Size of h and c at each pixel.
        input_kernel_size: int. Odd width of the masked input-to-state convolution.
            Defaults to `3`.
        state_kernel_size: int. Odd width of the state-to-state convolution over the
            previous row. Defaults to `3`.
        channels: int. Colour channels of the image: inputs and units are split into
            this many groups and group c sees groups <= c at the current pixel. Defaults
            to `1`.
        kernel_initializer: str or dict. Initializer of both kernels. Defaults to
            `"glorot_uniform"`.
        unroll: bool. Run the rows as an unrolled Python loop instead of `ops.scan`
            (as `keras.layers.RNN(unroll=...)`): faster for a few rows run eagerly,
            slower to compile for many. Same numbers either way. Defaults to `False`.

    Example:
    >>> import numpy as np
    >>> layer = RowLSTM(4)
    >>> x = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype("float32")
    >>> tuple(layer(x).shape)
    (2, 5, 6, 4)
    >>> x2 = x.copy()
    >>> x2[:, 3:] = 0.0  # rows 3 and 4 cannot change rows 0 to 2
    >>> top = lambda v: keras.ops.convert_to_numpy(layer(v))[:, :3]
    >>> bool(np.allclose(top(x), top(x2)))
    True
    """

    def __init__(
        self,
        units: int,
        input_kernel_size: int = 3,
        state_kernel_size: int = 3,
        channels: int = 1,
        kernel_initializer: Any = "glorot_uniform",
        unroll: bool = False,
        **kwargs: Any,
    ) -> None:
        for name, value in [
            ("units", units),
            ("input_kernel_size", input_kernel_size),
            ("state_kernel_size", state_kernel_size),
            ("channels", channels),
        ]:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"RowLSTM: {name} must be a positive int, got {value!r}.")
        for name, value in [
            ("input_kernel_size", input_kernel_size),
            ("state_kernel_size", state_kernel_size),
        ]:
            if value % 2 != 1:
                raise ValueError(f"RowLSTM: {name} must be odd (a centre pixel), got {value}.")
        if units < channels:
            raise ValueError(
                f"RowLSTM: units ({units}) must be at least channels ({channels}), one "
                "group of units per colour channel."
            )
        super().__init__(**kwargs)
        self.units = int(units)
        self.input_kernel_size = int(input_kernel_size)
        self.state_kernel_size = int(state_kernel_size)
        self.channels = int(channels)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.unroll = bool(unroll)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                f"RowLSTM expects inputs of shape (batch, height, width, features); got "
                f"{tuple(input_shape)}."
            )
        in_features, units = int(input_shape[-1]), self.units
        if in_features < self.channels:
            raise ValueError(
                f"RowLSTM: {in_features} input features cannot be split into "
                f"{self.channels} colour groups."
            )
        self.input_kernel = self.add_weight(
            shape=(1, self.input_kernel_size, in_features, 4 * units),
            initializer=self.kernel_initializer,
            name="input_kernel",
        )
        self.state_kernel = self.add_weight(
            shape=(1, self.state_kernel_size, units, 4 * units),
            initializer=self.kernel_initializer,
            name="state_kernel",
        )

        def bias_initializer(shape: tuple[int, ...], dtype: Any = None) -> Any:
            # b_f = 1: remember the rows above by default (Jozefowicz et al. 2015).
            return ops.convert_to_tensor(np.repeat([1.0, 0.0], [units, 3 * units]), dtype)

        self.bias = self.add_weight(shape=(4 * units,), initializer=bias_initializer, name="bias")
        # Gate k * units + u belongs to unit u, so the gates share the units' groups.
        mask = raster_mask((1, self.input_kernel_size), in_features, units, "B", self.channels)
        self.input_mask = np.tile(mask, (1, 1, 1, 4))

    def call(self, inputs: Any) -> Any:
        # Input-to-state for every row at once: (batch, height, width, 4 * units).
        from_input = ops.conv(inputs, self.input_kernel * self.input_mask, padding="same")
        from_input = from_input + self.bias
        zeros = ops.zeros_like(from_input[:, 0, :, : self.units])  # (batch, width, units)
        if self.unroll:
            state, rows = (zeros, zeros), []
            for r in range(from_input.shape[1]):
                state, _ = self._row_step(state, from_input[:, r])
                rows.append(state[0])
            return ops.stack(rows, axis=1)
        # ops.scan (lax.scan, tf.while_loop) over the rows trains faster and compiles far
        # faster than an unrolled Python loop on JAX and TensorFlow; TensorFlow's scan
        # wants the per-step outputs shaped as the carry, hence (h, c) twice.
        _, (h, _) = ops.scan(self._row_step, (zeros, zeros), ops.moveaxis(from_input, 1, 0))
        return ops.moveaxis(h, 0, 1)  # (batch, height, width, units)

    def _row_step(self, state: tuple[Any, Any], from_input: Any) -> tuple[Any, Any]:
        """One row: the previous (h, c), each `(batch, width, units)`, to the new ones."""
        h, c = state
        z = from_input + self._state_to_state(h)
        z_f, z_i, z_o, z_g = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(z_f) * c + ops.sigmoid(z_i) * ops.tanh(z_g)
        h = ops.sigmoid(z_o) * ops.tanh(c)
        return (h, c), (h, c)

    def _state_to_state(self, h: Any) -> Any:
        """K_ss * h_(r-1) along the row ("same" padding), as one matmul.

        Column w of the result reads columns w - p ... w + p of the previous row
        (p = state_kernel_size // 2): the k shifted copies side by side, times the kernel
        flattened to `(k * units, 4 * units)`. On CPU this is 2-3x faster than a 1-D
        convolution of such small rows, and gives the same numbers.
        """
        k, width = self.state_kernel_size, h.shape[1]
        p = k // 2
        padded = ops.pad(h, [(0, 0), (p, p), (0, 0)])
        shifted = ops.concatenate([padded[:, j : j + width] for j in range(k)], axis=-1)
        kernel = ops.reshape(self.state_kernel, (k * self.units, 4 * self.units))
        return ops.matmul(shifted, kernel)  # (batch, width, 4 * units)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "input_kernel_size": self.input_kernel_size,
                "state_kernel_size": self.state_kernel_size,
                "channels": self.channels,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "unroll": self.unroll,
            }
        )
        return config
