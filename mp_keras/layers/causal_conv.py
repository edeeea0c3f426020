"""Dilated causal convolutions and WaveNet's gated residual block (notes, section 6.5).

A causal convolution of kernel size k and dilation d computes output t from the inputs
t - (k - 1) d, ..., t - d, t only (van den Oord et al., "WaveNet: A Generative Model for
Raw Audio", 2016, section 2.1; dilations from Yu & Koltun, 2016). Written out, it is a
sum of k matrix products of shifted copies of the input,

    y[t] = sum_j x[t - (k - 1 - j) d] W_j + b,        j = 0 .. k - 1,

with zeros before the first sample (causal padding). Stacking layers whose dilations
double (1, 2, 4, ...) grows the receptive field exponentially with depth.

The same layer runs one time step at a time (`step`), for fast generation (Paine et al.,
"Fast Wavenet Generation Algorithm", 2016): a *queue* keeps the layer's last (k - 1) d
inputs, so a new output costs k matrix-vector products instead of re-running the network
on the whole past. The queue is an explicit tensor, passed in and returned, so the step is
a fixed graph that exports (the caller owns the state, as with an RNN's hidden state).
Starting from a queue of zeros reproduces the causal padding of `call` exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from mp_keras.layers._checks import int_at_least
from mp_keras.layers.masked_conv import gate


@keras.saving.register_keras_serializable(package="mp_keras")
class CausalConv1D(keras.layers.Layer):
    """1-D dilated causal convolution: output t reads inputs t - (k - 1) d ... t only.

    van den Oord et al., "WaveNet", 2016, section 2.1 and figure 3. Computed as k
    matrix products of the zero-padded input shifted by multiples of the dilation d (see
    the module docstring), so `call` on a whole sequence and `step` on one sample use the
    same arithmetic.

    `call(x)` maps `(batch, time, channels)` to `(batch, time, filters)`.
    `step(x_t, queue)` maps one sample `(batch, channels)` and the queue of the previous
    `queue_length` inputs `(batch, queue_length, channels)` (oldest first) to the output
    `(batch, filters)` and the queue shifted by one.

    Args:
        filters: int. Number of output channels.
        kernel_size: int. Number of taps k. Defaults to `2`.
        dilation_rate: int. Distance d between taps. Defaults to `1`.
        use_bias: bool. Adds a bias per output channel. Defaults to `True`.
        kernel_initializer: initializer of the `(k, channels, filters)` kernel.
            Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of the bias. Defaults to `"zeros"`.

    Example:
    >>> import numpy as np
    >>> layer = CausalConv1D(1, kernel_size=2, dilation_rate=2, use_bias=False)
    >>> x = np.arange(5, dtype="float32").reshape(1, 5, 1)
    >>> _ = layer(x)
    >>> _ = layer.kernel.assign(np.array([[[1.0]], [[10.0]]], "float32"))  # x[t-2] + 10 x[t]
    >>> keras.ops.convert_to_numpy(layer(x))[0, :, 0].tolist(), layer.receptive_field
    ([0.0, 10.0, 20.0, 31.0, 42.0], 3)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 2,
        dilation_rate: int = 1,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__

        # === Config ===
        self.filters = int_at_least(owner, "filters", filters)
        self.kernel_size = int_at_least(owner, "kernel_size", kernel_size)
        self.dilation_rate = int_at_least(owner, "dilation_rate", dilation_rate)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    @property
    def queue_length(self) -> int:
        """How many past inputs the layer reads: (k - 1) d."""
        return (self.kernel_size - 1) * self.dilation_rate

    @property
    def receptive_field(self) -> int:
        """Inputs one output depends on: (k - 1) d + 1."""
        return self.queue_length + 1

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.kernel = self.add_weight(
            shape=(self.kernel_size, int(input_shape[-1]), self.filters),
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
        pad, d = self.queue_length, self.dilation_rate
        padded = ops.pad(inputs, ((0, 0), (pad, 0), (0, 0)))  # (batch, pad + time, channels)
        outputs = 0.0
        for j in range(self.kernel_size):
            # Tap j reads x[t - (pad - j d)]: the padded sequence from j d, `time` long.
            end = j * d - pad
            tap = padded[:, j * d : end if end < 0 else None]  # (batch, time, channels)
            outputs = outputs + ops.matmul(tap, self.kernel[j])
        return outputs if self.bias is None else outputs + self.bias

    def step(self, inputs: Any, queue: Any) -> tuple[Any, Any]:
        """One time step: `(batch, channels)` and its queue -> `(batch, filters)`, queue."""
        d = self.dilation_rate
        if self.queue_length == 0:
            window = inputs[:, None, :]
        else:
            window = ops.concatenate([queue, inputs[:, None, :]], axis=1)  # t - pad .. t
        outputs = 0.0
        for j in range(self.kernel_size):
            outputs = outputs + ops.matmul(window[:, j * d], self.kernel[j])
        if self.bias is not None:
            outputs = outputs + self.bias
        return outputs, window[:, 1:]

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (*tuple(input_shape)[:-1], self.filters)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "dilation_rate": self.dilation_rate,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def dense_step(layer: keras.layers.Dense, inputs: Any) -> Any:
    """`layer(inputs)` for a built, linear `Dense`, without the layer call's overhead."""
    return ops.matmul(inputs, layer.kernel) + layer.bias


@keras.saving.register_keras_serializable(package="mp_keras")
class WaveNetBlock(keras.layers.Layer):
    """One residual layer of WaveNet: dilated causal conv, gated activation, 1 x 1 outputs.

    van den Oord et al., "WaveNet", 2016, sections 2.3-2.5 and figure 4. With input x
    (`residual_channels`) and F = `dilation_channels`:

        z = tanh(W_f * x + V_f h) ⊙ sigmoid(W_g * x + V_g h)        (eq. 2 and 3)

    where * is the dilated causal convolution (one `CausalConv1D` of 2F filters, split
    into the filter and gate halves) and V h a learned embedding of the global condition
    h (a class label), added at every time step. The block returns x + W_r z (the
    residual output, 1 x 1) and W_s z (the skip output, 1 x 1) that the model sums over
    all blocks.

    `call(x, condition=None)` maps `(batch, time, residual_channels)` to the pair
    `(batch, time, residual_channels)`, `(batch, time, skip_channels)`; `step(x_t, queue,
    condition=None)` does one time step (see `CausalConv1D.step`) and returns the
    residual and skip outputs of that step and the new queue.

    Args:
        residual_channels: int. Channels of the input and residual output.
        dilation_channels: int. Channels F of the gated activation z.
        skip_channels: int. Channels of the skip output.
        dilation_rate: int. Dilation of the causal convolution. Defaults to `1`.
        kernel_size: int. Taps of the causal convolution. Defaults to `2`.
        num_conditions: int or None. Number of global condition classes (labels);
            `None` for an unconditional block. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> block = WaveNetBlock(8, 8, 4, dilation_rate=2)
    >>> out, skip = block(np.ones((16, 12, 8), "float32"))
    >>> tuple(out.shape), tuple(skip.shape), block.dilated.queue_length
    ((16, 12, 8), (16, 12, 4), 2)
    """

    def __init__(
        self,
        residual_channels: int,
        dilation_channels: int,
        skip_channels: int,
        dilation_rate: int = 1,
        kernel_size: int = 2,
        num_conditions: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__

        # === Config ===
        self.residual_channels = int_at_least(owner, "residual_channels", residual_channels)
        self.dilation_channels = int_at_least(owner, "dilation_channels", dilation_channels)
        self.skip_channels = int_at_least(owner, "skip_channels", skip_channels)
        self.dilation_rate = int_at_least(owner, "dilation_rate", dilation_rate)
        self.kernel_size = int_at_least(owner, "kernel_size", kernel_size)
        self.num_conditions = (
            None
            if num_conditions is None
            else int_at_least(owner, "num_conditions", num_conditions)
        )

        # === Layers ===
        gates = 2 * self.dilation_channels
        self.dilated = CausalConv1D(gates, self.kernel_size, self.dilation_rate, name="dilated")
        self.residual = keras.layers.Dense(self.residual_channels, name="residual")
        self.skip = keras.layers.Dense(self.skip_channels, name="skip")
        self.condition_embedding = (
            None
            if self.num_conditions is None
            else keras.layers.Embedding(self.num_conditions, gates, name="condition_embedding")
        )

    def build(self, input_shape: Sequence[int | None]) -> None:
        channels = int(input_shape[-1])
        if channels != self.residual_channels:
            raise ValueError(
                f"{type(self).__name__} expects inputs with {self.residual_channels} channels "
                f"(residual_channels); got shape {tuple(input_shape)}."
            )
        self.dilated.build((None, None, channels))
        self.residual.build((None, None, self.dilation_channels))
        self.skip.build((None, None, self.dilation_channels))
        if self.condition_embedding is not None:
            self.condition_embedding.build((None,))
        self.built = True

    def _condition_term(self, condition: Any) -> Any:
        """V h, `(batch, 2F)`, or 0 for an unconditional block."""
        if self.condition_embedding is None:
            return 0.0
        if condition is None:
            raise ValueError(
                f"{type(self).__name__} is conditional ({self.num_conditions} classes): "
                "pass condition=labels."
            )
        return self.condition_embedding(ops.reshape(ops.cast(condition, "int32"), (-1,)))

    def call(self, inputs: Any, condition: Any = None) -> tuple[Any, Any]:
        pre = self.dilated(inputs)  # (batch, time, 2F)
        term = self._condition_term(condition)
        if self.condition_embedding is not None:
            pre = pre + term[:, None, :]  # the same label at every time step
        z = gate(pre)  # (batch, time, F)
        return inputs + self.residual(z), self.skip(z)

    def step(self, inputs: Any, queue: Any, condition: Any = None) -> tuple[Any, Any, Any]:
        """One time step: `(batch, residual_channels)` -> residual output, skip, queue."""
        pre, queue = self.dilated.step(inputs, queue)  # (batch, 2F)
        z = gate(pre + self._condition_term(condition))  # (batch, F)
        # The 1 x 1 outputs as plain products: the step runs once per generated sample,
        # and a layer call's own overhead would cost more than the product (PyTorch).
        return inputs + dense_step(self.residual, z), dense_step(self.skip, z), queue

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "residual_channels": self.residual_channels,
                "dilation_channels": self.dilation_channels,
                "skip_channels": self.skip_channels,
                "dilation_rate": self.dilation_rate,
                "kernel_size": self.kernel_size,
                "num_conditions": self.num_conditions,
            }
        )
        return config
