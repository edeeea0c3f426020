"""Masked convolutions of the PixelCNN family (notes, section 6.4).

An autoregressive image model computes, in one pass, the logit of every dimension from
the dimensions before it in raster order: rows top to bottom, columns left to right and,
within a pixel, the channels R, G, B. A convolution keeps that order if its kernel is
zero wherever it would read the future (van den Oord et al., "Pixel Recurrent Neural
Networks", 2016, section 3.4):

- rows below the centre, and positions right of the centre in the centre row: 0;
- the centre position: the feature maps are split into C groups, one per data channel
  (`channel_groups`), and output group g reads input groups < g (mask "A", the first
  layer: a dimension never sees itself) or <= g (mask "B", every later layer);
- everything above and to the left: 1.

For one data channel (C = 1) this is the usual A (centre excluded) / B (centre included).
The mask multiplies the kernel inside the convolution (`kernel * mask`); the stored
kernel is never rewritten.

`GatedPixelCNNBlock` is one layer of the Gated PixelCNN (van den Oord et al.,
"Conditional Image Generation with PixelCNN Decoders", 2016): a vertical stack that sees
the rows above, a horizontal stack that sees the current row up to the current pixel,
gated activations tanh(a) * sigmoid(b), a residual in the horizontal stack and a skip
output. Stacking masked 3 x 3 convolutions leaves a *blind spot* above and to the right
of a pixel; the two stacks together cover it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine.kernels import padded_conv
from mp_keras.layers._checks import int_at_least

MASK_TYPES = ("A", "B")


def channel_groups(channels: int, data_channels: int) -> np.ndarray:
    """The data-channel group of each of `channels` feature maps, shape `(channels,)`.

    Consecutive feature maps share a group: with 8 maps and 3 data channels the groups
    are `[0, 0, 0, 1, 1, 1, 2, 2]`; with as many maps as data channels, map g is group g.

    Example:
    >>> channel_groups(8, 3).tolist()
    [0, 0, 0, 1, 1, 1, 2, 2]
    """
    return (np.arange(int(channels)) * int(data_channels)) // int(channels)


def centre_mask(in_groups: np.ndarray, out_groups: np.ndarray, mask_type: str) -> np.ndarray:
    """The `(in, out)` mask of the centre position: out group g reads in groups < g (A)
    or <= g (B)."""
    _check_mask_type(mask_type)
    in_groups, out_groups = np.asarray(in_groups), np.asarray(out_groups)
    if mask_type == "A":
        return (in_groups[:, None] < out_groups[None, :]).astype("float32")
    return (in_groups[:, None] <= out_groups[None, :]).astype("float32")


def pixelcnn_mask(
    kernel_size: Sequence[int],
    in_groups: np.ndarray,
    out_groups: np.ndarray,
    mask_type: str,
) -> np.ndarray:
    """The PixelCNN mask of a kernel `(kh, kw, in, out)` centred at `(kh // 2, kw // 2)`.

    Example:
    >>> one = np.zeros(1, int)
    >>> pixelcnn_mask((3, 3), one, one, "A")[..., 0, 0].tolist()
    [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    kh, kw = (int(k) for k in kernel_size)
    mask = np.zeros((kh, kw, len(in_groups), len(out_groups)), "float32")
    ch, cw = kh // 2, kw // 2
    mask[:ch] = 1.0  # rows above the centre
    mask[ch, :cw] = 1.0  # left of the centre in the centre row
    mask[ch, cw] = centre_mask(in_groups, out_groups, mask_type)
    return mask


def _check_mask_type(mask_type: str) -> None:
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}.")


def _odd_kernel(owner: str, kernel_size: int | Sequence[int]) -> tuple[int, int]:
    size = (kernel_size, kernel_size) if isinstance(kernel_size, (int, np.integer)) else kernel_size
    size = tuple(int(k) for k in size)
    if len(size) != 2 or min(size) < 1 or not all(k % 2 for k in size):
        raise ValueError(
            f"{owner}: kernel_size must be an odd int or a pair of odd ints (the mask is "
            f"centred on the current pixel), got {kernel_size!r}."
        )
    return size


@keras.saving.register_keras_serializable(package="mp_keras")
class MaskedConv2D(keras.layers.Layer):
    """2-D convolution whose kernel cannot read the future pixels (PixelCNN masks).

    van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML
    2016, section 3.4. Stride 1, "same" padding, so output pixel (i, j) is computed
    from the input pixels above it and to its left and, at (i, j) itself, from the
    channel groups that come before (mask "A") or up to (mask "B") its own group. The
    convolution uses `kernel * mask`; the mask is a constant built from the input's
    channel count.

    Args:
        filters: int. Number of output feature maps.
        kernel_size: int or pair of odd ints. Size of the kernel, e.g. `7` or `(3, 3)`.
        mask_type: str. `"A"` (first layer: the centre pixel's own group is hidden) or
            `"B"` (later layers: it is visible). Defaults to `"B"`.
        data_channels: int. Channels C of the modelled images (1 grey, 3 RGB); input
            and output feature maps are split into C groups for the R -> G -> B order.
            Defaults to `1`.
        use_bias: bool. Adds a bias per output feature map. Defaults to `True`.
        kernel_initializer: initializer of the kernel. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of the bias. Defaults to `"zeros"`.

    Example:
    >>> import numpy as np
    >>> layer = MaskedConv2D(8, 3, mask_type="A")
    >>> y = layer(np.ones((1, 4, 4, 1), "float32"))
    >>> tuple(y.shape), layer.mask[..., 0, 0].tolist()
    ((1, 4, 4, 8), [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        mask_type: str = "B",
        data_channels: int = 1,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        _check_mask_type(mask_type)

        # === Config ===
        self.filters = int_at_least(owner, "filters", filters)
        self.kernel_size = _odd_kernel(owner, kernel_size)
        self.mask_type = mask_type
        self.data_channels = int_at_least(owner, "data_channels", data_channels)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.mask: np.ndarray | None = None

    def build(self, input_shape: Sequence[int | None]) -> None:
        channels = int(input_shape[-1])
        in_groups = channel_groups(channels, self.data_channels)
        out_groups = channel_groups(self.filters, self.data_channels)
        self.mask = pixelcnn_mask(self.kernel_size, in_groups, out_groups, self.mask_type)
        self.kernel = self.add_weight(
            shape=(*self.kernel_size, channels, self.filters),
            initializer=self.kernel_initializer,
            name="kernel",
        )
        self.bias = (
            self.add_weight(shape=(self.filters,), initializer=self.bias_initializer, name="bias")
            if self.use_bias
            else None
        )
        self.built = True

    def call(self, inputs: Any) -> Any:
        # (batch, height, width, channels) -> (batch, height, width, filters)
        # The mask's rows below the centre are zero, so only the top k // 2 + 1 rows of
        # `kernel * mask` are convolved, over an input padded above and at the sides
        # only: the same output as the whole k x k kernel with "same" padding, with
        # about half the multiplications (4 of 7 rows, 2 of 3).
        rows = self.kernel_size[0] // 2 + 1
        side = self.kernel_size[1] // 2
        kernel = (self.kernel * self.mask)[:rows]
        if self.kernel_size == (1, 1):  # a matmul over the channels, faster than a conv
            outputs = ops.matmul(inputs, kernel[0, 0])
        else:
            outputs = padded_conv(inputs, kernel, ((rows - 1, 0), (side, side)))
        return outputs if self.bias is None else outputs + self.bias

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (*tuple(input_shape)[:-1], self.filters)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": list(self.kernel_size),
                "mask_type": self.mask_type,
                "data_channels": self.data_channels,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def gate(pre_activation: Any) -> Any:
    """tanh(a) * sigmoid(b) for `[a, b]` split along the last axis (van den Oord et al.
    2016, eq. 2)."""
    a, b = ops.split(pre_activation, 2, axis=-1)
    return ops.tanh(a) * ops.sigmoid(b)


def shift_down(x: Any) -> Any:
    """Moves every row one down (a zero row enters at the top): row i gets row i - 1."""
    return ops.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


@keras.saving.register_keras_serializable(package="mp_keras")
class GatedPixelCNNBlock(keras.layers.Layer):
    """One gated layer of the Gated PixelCNN: vertical and horizontal stacks.

    van den Oord et al., "Conditional Image Generation with PixelCNN Decoders", NeurIPS
    2016, section 2 and figure 2. With k = `kernel_size` and F = `filters`:

    - vertical stack: a (k // 2 + 1) x k convolution over the rows above and the
      current row (padded on top), v' = tanh(a_v) * sigmoid(b_v). Its pre-activation at
      row i sees the input rows <= i;
    - vertical -> horizontal: that pre-activation shifted DOWN one row (row i then sees
      rows < i only) through a 1 x 1 convolution, added to the horizontal one;
    - horizontal stack: a 1 x (k // 2 + 1) convolution over the current row up to the
      current pixel (padded on the left), whose last tap is the current pixel with the
      channel-group mask "A" (first layer) or "B"; h' = tanh(a_h) * sigmoid(b_h), then a
      masked 1 x 1 convolution and, if `residual`, the input h added back;
    - skip: a masked 1 x 1 convolution of the gated horizontal activation, summed over
      the layers by the model.

    With `num_classes`, a learned embedding of the label is added to both stacks'
    pre-activations (the conditional PixelCNN, eq. 4).

    `call(v, h, condition=None)` returns `(v', h', skip)`, each `(batch, H, W, F)`.

    Args:
        filters: int. Feature maps F of each stack.
        kernel_size: int. Odd k. Defaults to `3`.
        mask_type: str. `"A"` for the first layer (reads the image itself), `"B"` after.
            Defaults to `"B"`.
        data_channels: int. Channels C of the modelled images (R -> G -> B groups).
            Defaults to `1`.
        residual: bool. Adds the horizontal input to its output (needs F input maps).
            Defaults to `True`.
        num_classes: int or None. Classes of the label embedding. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> block = GatedPixelCNNBlock(8, kernel_size=3, mask_type="A", residual=False)
    >>> x = np.ones((2, 4, 4, 1), "float32")
    >>> [tuple(t.shape) for t in block(x, x)]  # v', h', skip
    [(2, 4, 4, 8), (2, 4, 4, 8), (2, 4, 4, 8)]
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        mask_type: str = "B",
        data_channels: int = 1,
        residual: bool = True,
        num_classes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        _check_mask_type(mask_type)
        if not isinstance(kernel_size, (int, np.integer)) or isinstance(kernel_size, bool):
            raise ValueError(f"{owner}: kernel_size must be one odd int, got {kernel_size!r}.")

        # === Config ===
        self.filters = int_at_least(owner, "filters", filters)
        self.kernel_size = _odd_kernel(owner, kernel_size)[0]
        self.mask_type = mask_type
        self.data_channels = int_at_least(owner, "data_channels", data_channels)
        self.residual = bool(residual)
        self.num_classes = (
            None if num_classes is None else int_at_least(owner, "num_classes", num_classes)
        )

        # === Layers ===
        groups = self.data_channels
        self.vertical_to_horizontal = keras.layers.Conv2D(2 * self.filters, 1, name="v_to_h")
        self.horizontal_output = MaskedConv2D(self.filters, 1, "B", groups, name="h_output")
        self.skip = MaskedConv2D(self.filters, 1, "B", groups, name="skip")
        if self.num_classes is not None:
            self.vertical_embedding = keras.layers.Embedding(
                self.num_classes, 2 * self.filters, name="v_embedding"
            )
            self.horizontal_embedding = keras.layers.Embedding(
                self.num_classes, 2 * self.filters, name="h_embedding"
            )
        self.horizontal_mask: np.ndarray | None = None

    def build(
        self,
        v_shape: Sequence[int | None],
        h_shape: Sequence[int | None],
        condition_shape: Sequence[int | None] | None = None,
    ) -> None:
        k, f = self.kernel_size, self.filters
        v_channels, h_channels = int(v_shape[-1]), int(h_shape[-1])
        if self.residual and h_channels != f:
            raise ValueError(
                f"{type(self).__name__}: residual=True needs h with {f} channels, got "
                f"{h_channels}; use residual=False for the first layer."
            )
        self.vertical_kernel = self.add_weight(
            shape=(k // 2 + 1, k, v_channels, 2 * f), initializer="glorot_uniform", name="v_kernel"
        )
        self.vertical_bias = self.add_weight(shape=(2 * f,), initializer="zeros", name="v_bias")
        self.horizontal_kernel = self.add_weight(
            shape=(1, k // 2 + 1, h_channels, 2 * f), initializer="glorot_uniform", name="h_kernel"
        )
        self.horizontal_bias = self.add_weight(shape=(2 * f,), initializer="zeros", name="h_bias")
        # The gate multiplies a_h[c] by b_h[c], so both halves take the groups of c.
        out_groups = np.tile(channel_groups(f, self.data_channels), 2)
        in_groups = channel_groups(h_channels, self.data_channels)
        mask = np.ones((1, k // 2 + 1, h_channels, 2 * f), "float32")
        mask[0, -1] = centre_mask(in_groups, out_groups, self.mask_type)  # the current pixel
        self.horizontal_mask = mask
        spatial = tuple(h_shape[:-1])
        self.vertical_to_horizontal.build((*spatial, 2 * f))
        self.horizontal_output.build((*spatial, f))
        self.skip.build((*spatial, f))
        if self.num_classes is not None:
            self.vertical_embedding.build((None,))
            self.horizontal_embedding.build((None,))
        self.built = True

    def call(self, v: Any, h: Any, condition: Any = None) -> tuple[Any, Any, Any]:
        k = self.kernel_size
        # Vertical: pad k // 2 rows on top, k // 2 columns each side; output row i reads
        # rows i - k // 2 .. i.
        v_pre = padded_conv(v, self.vertical_kernel, ((k // 2, 0), (k // 2, k // 2)))
        v_pre = v_pre + self.vertical_bias
        # Horizontal: pad k // 2 columns on the left; output column j reads j - k // 2 .. j.
        h_kernel = self.horizontal_kernel * self.horizontal_mask
        h_pre = padded_conv(h, h_kernel, ((0, 0), (k // 2, 0))) + self.horizontal_bias
        # The horizontal stack may read the vertical one only from the rows above.
        h_pre = h_pre + self.vertical_to_horizontal(shift_down(v_pre))
        if self.num_classes is not None:
            labels = ops.reshape(ops.cast(condition, "int32"), (-1,))
            v_pre = v_pre + self.vertical_embedding(labels)[:, None, None, :]
            h_pre = h_pre + self.horizontal_embedding(labels)[:, None, None, :]
        v_out = gate(v_pre)  # (batch, H, W, F)
        h_gated = gate(h_pre)  # (batch, H, W, F)
        skip = self.skip(h_gated)
        h_out = self.horizontal_output(h_gated)
        if self.residual:
            h_out = h_out + h
        return v_out, h_out, skip

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "mask_type": self.mask_type,
                "data_channels": self.data_channels,
                "residual": self.residual,
                "num_classes": self.num_classes,
            }
        )
        return config
