"""Recurrent cells of chapter 4: the Elman cell and the LSTM cell.

Both follow Keras' cell protocol (`state_size`, `output_size`,
`call(inputs, states) -> (output, new_states)`), so `keras.layers.RNN(cell)` runs them over
a sequence and `keras.layers.RNN([cell_1, cell_2])` stacks them. Each also gives the
Jacobian of its new state with respect to its previous state (`state_jacobian`), the
factor that backpropagation through time multiplies by at every step: the subject of the
notes' discussion of vanishing and exploding gradients.

Keras multiplies row vectors from the right, so a weight the notes write as W (acting on
column vectors, W h) is stored transposed: `h @ recurrent_kernel` is the notes' W_h h.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

# Derivative of an activation written in terms of its output a = act(z), which the cell
# already has: tanh' = 1 - a^2, sigmoid' = a (1 - a).
_DERIVATIVE_FROM_OUTPUT: dict[str, Callable[[Any], Any]] = {
    "tanh": lambda a: 1.0 - ops.square(a),
    "sigmoid": lambda a: a * (1.0 - a),
    "linear": ops.ones_like,
    "relu": lambda a: ops.cast(a > 0, a.dtype),
}


def _batch_diag_times(d: Any, matrix: Any) -> Any:
    """diag(d) @ matrix for each row of `d`: `(batch, m)` x `(m, n)` -> `(batch, m, n)`."""
    return d[:, :, None] * matrix[None, :, :]


class _RecurrentCell(keras.layers.Layer):
    """What both cells share: the state size, the initializers and their config."""

    def __init__(
        self,
        units: int,
        kernel_initializer: Any,
        recurrent_initializer: Any,
        bias_initializer: Any,
        **kwargs: Any,
    ) -> None:
        if int(units) < 1:
            raise ValueError(f"units must be a positive int, got {units!r}.")
        super().__init__(**kwargs)
        self.units = int(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.output_size = self.units

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="mp_keras")
class ElmanCell(_RecurrentCell):
    """Elman cell (simple recurrent network): h(t) = tanh(W_h h(t-1) + W_x x(t) + b).

    Notes, chapter 4 (Elman network). One step reads the input x(t) and the previous
    hidden state h(t-1) and returns h(t), both as output and as the new state. The
    weights are `kernel` (W_x, stored `(input_dim, units)`), `recurrent_kernel` (W_h,
    stored `(units, units)`) and `bias` (b).

    Args:
        units: int. Size of the hidden state h.
        activation: str. The non-linearity; `"tanh"` in the notes, or `"sigmoid"`,
            `"relu"`, `"linear"`. Defaults to `"tanh"`.
        kernel_initializer: str or dict. Initializer of W_x (a Keras initializer name or
            serialized config). Defaults to `"glorot_uniform"`.
        recurrent_initializer: str or dict. Initializer of W_h, e.g.
            `{"class_name": "Orthogonal", "config": {"gain": 3.0}}` for large recurrent
            weights. Defaults to `"orthogonal"`.
        bias_initializer: str or dict. Initializer of b. Defaults to `"zeros"`.

    Example:
    >>> import numpy as np
    >>> layer = keras.layers.RNN(ElmanCell(4), return_sequences=True)
    >>> x = np.zeros((2, 5, 3), "float32")
    >>> tuple(layer(x).shape)
    (2, 5, 4)
    >>> float(np.abs(keras.ops.convert_to_numpy(layer(x))).max())  # zero input, zero bias
    0.0
    """

    def __init__(
        self,
        units: int,
        activation: str = "tanh",
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        if activation not in _DERIVATIVE_FROM_OUTPUT:
            raise ValueError(
                f"activation must be one of {sorted(_DERIVATIVE_FROM_OUTPUT)}, got {activation!r}."
            )
        super().__init__(
            units, kernel_initializer, recurrent_initializer, bias_initializer, **kwargs
        )
        self.activation = activation
        self.state_size = self.units

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units),
            initializer=self.recurrent_initializer,
            name="recurrent_kernel",
        )
        self.bias = self.add_weight(
            shape=(self.units,), initializer=self.bias_initializer, name="bias"
        )

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, list[Any]]:
        h_prev = ops.convert_to_tensor(states[0] if isinstance(states, (list, tuple)) else states)
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel) + self.bias
        h = keras.activations.get(self.activation)(z)  # (batch, units)
        return h, [h]

    def state_jacobian(self, inputs: Any, states: Any) -> Any:
        """dh(t)/dh(t-1) = diag(act'(z(t))) W_h, `(batch, units, units)`.

        Row i, column j is the derivative of h_i(t) with respect to h_j(t-1); for tanh,
        act'(z) = 1 - h(t)^2, so saturated units (|h| near 1) pass no gradient back.
        """
        h, _ = self.call(inputs, states)
        slope = _DERIVATIVE_FROM_OUTPUT[self.activation](h)
        return _batch_diag_times(slope, ops.transpose(self.recurrent_kernel))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation}


@keras.saving.register_keras_serializable(package="mp_keras")
class LSTMCell(_RecurrentCell):
    """Long short-term memory cell: gated memory c(t) with an additive update.

    Notes, chapter 4 (LSTM), with [h, x] the concatenation of h(t-1) and x(t):

        f = sigmoid(W_f [h, x] + b_f)    forget gate
        i = sigmoid(W_i [h, x] + b_i)    input gate
        o = sigmoid(W_o [h, x] + b_o)    output gate
        g = tanh(W_g [h, x] + b_g)       candidate
        c(t) = f * c(t-1) + i * g,   h(t) = o * tanh(c(t)).

    Each W_* [h, x] is split as `h @ recurrent_kernel + x @ kernel`; the gates are stacked
    along the last axis in the order f, i, o, g (`kernel` is `(input_dim, 4 * units)`,
    `recurrent_kernel` `(units, 4 * units)`, `bias` `(4 * units,)`). The state is
    `[h, c]`; the output is h. Along c the Jacobian is dc(t)/dc(t-1) = diag(f) (the
    constant error carousel when f is near 1), which is why gradients survive many steps.

    Args:
        units: int. Size of h and c.
        unit_forget_bias: bool. Start b_f at 1 so that the cell remembers by default
            (Jozefowicz et al. 2015). Defaults to `True`.
        kernel_initializer: str or dict. Initializer of the input weights. Defaults to
            `"glorot_uniform"`.
        recurrent_initializer: str or dict. Initializer of the recurrent weights. Defaults
            to `"orthogonal"`.
        bias_initializer: str or dict. Initializer of the biases (b_f is then set to 1 if
            `unit_forget_bias`). Defaults to `"zeros"`.

    Example:
    >>> import numpy as np
    >>> layer = keras.layers.RNN(LSTMCell(4), return_state=True)
    >>> h, h_last, c_last = layer(np.ones((2, 5, 3), "float32"))
    >>> tuple(h.shape), tuple(c_last.shape)
    ((2, 4), (2, 4))
    >>> bias = keras.ops.convert_to_numpy(layer.cell.bias)
    >>> bias[:4].tolist(), bias[4:].tolist() == [0.0] * 12  # f, then i, o, g
    ([1.0, 1.0, 1.0, 1.0], True)
    """

    def __init__(
        self,
        units: int,
        unit_forget_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            units, kernel_initializer, recurrent_initializer, bias_initializer, **kwargs
        )
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]  # [h, c]

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        units = self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], 4 * units), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(units, 4 * units),
            initializer=self.recurrent_initializer,
            name="recurrent_kernel",
        )

        def bias_initializer(shape: tuple[int, ...], dtype: Any = None) -> Any:
            bias = self.bias_initializer(shape, dtype=dtype)
            if not self.unit_forget_bias:
                return bias
            return ops.concatenate([ops.ones((units,), dtype=dtype), bias[units:]])

        self.bias = self.add_weight(shape=(4 * units,), initializer=bias_initializer, name="bias")

    def _gates(self, inputs: Any, h_prev: Any) -> tuple[Any, Any, Any, Any]:
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel) + self.bias
        z_f, z_i, z_o, z_g = ops.split(z, 4, axis=-1)  # each (batch, units)
        return ops.sigmoid(z_f), ops.sigmoid(z_i), ops.sigmoid(z_o), ops.tanh(z_g)

    def call(self, inputs: Any, states: Any, training: bool = False) -> tuple[Any, list[Any]]:
        h_prev, c_prev = (ops.convert_to_tensor(s) for s in states)
        f, i, o, g = self._gates(inputs, h_prev)
        c = f * c_prev + i * g
        h = o * ops.tanh(c)
        return h, [h, c]

    def state_jacobian(self, inputs: Any, states: Any) -> Any:
        """d[h(t), c(t)] / d[h(t-1), c(t-1)], `(batch, 2 * units, 2 * units)`.

        Blocks, with U_* the notes' W_* restricted to h and s' the slopes of the gates:

            dc/dc = diag(f)
            dc/dh = diag(c(t-1) f') U_f + diag(g i') U_i + diag(i g') U_g
            dh/dh = diag(tanh(c(t)) o') U_o + diag(o tanh'(c(t))) dc/dh
            dh/dc = diag(o tanh'(c(t))) diag(f)
        """
        h_prev, c_prev = (ops.convert_to_tensor(s) for s in states)
        f, i, o, g = self._gates(inputs, h_prev)
        c = f * c_prev + i * g
        tanh_c = ops.tanh(c)
        u_f, u_i, u_o, u_g = (ops.transpose(u) for u in ops.split(self.recurrent_kernel, 4, -1))
        eye = ops.eye(self.units, dtype=f.dtype)
        dc_dc = _batch_diag_times(f, eye)
        dc_dh = (
            _batch_diag_times(c_prev * f * (1.0 - f), u_f)
            + _batch_diag_times(g * i * (1.0 - i), u_i)
            + _batch_diag_times(i * (1.0 - ops.square(g)), u_g)
        )
        through_c = (o * (1.0 - ops.square(tanh_c)))[:, :, None]
        dh_dh = _batch_diag_times(tanh_c * o * (1.0 - o), u_o) + through_c * dc_dh
        dh_dc = through_c * dc_dc
        top = ops.concatenate([dh_dh, dh_dc], axis=-1)
        bottom = ops.concatenate([dc_dh, dc_dc], axis=-1)
        return ops.concatenate([top, bottom], axis=1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


CELLS: dict[str, type[keras.layers.Layer]] = {"elman": ElmanCell, "lstm": LSTMCell}


def recurrent_cell(cell: str, units: int, **kwargs: Any) -> keras.layers.Layer:
    """A new cell by name: `"elman"` (`ElmanCell`) or `"lstm"` (`LSTMCell`).

    Example:
    >>> type(recurrent_cell("lstm", 8)).__name__, recurrent_cell("elman", 8).state_size
    ('LSTMCell', 8)
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}.")
    return CELLS[cell](units, **kwargs)
