"""Backpropagation written out: an MLP's gradients by the chain rule (notes, section 1.3).

Gradient descent, theta <- theta - eta * grad L(theta), needs the gradient of the loss
with respect to every weight. Backpropagation computes all of them in one backward sweep,
a dynamic programme over the layers: each layer's error delta_l = dL/dz_l is built from
the next layer's, so no product of Jacobians is ever formed twice.

With a batch as rows (x of shape `(batch, d_0)`), Keras' kernel layout W_l of shape
`(d_{l-1}, d_l)` and

    z_l = a_{l-1} W_l + b_l,    a_l = sigma_l(z_l),    a_0 = x,

the loss L = (1/n) sum_i l(a_L[i], y_i) over the n examples of the batch gives

    delta_L = dl/da_L * sigma_L'(z_L)                      (one row per example)
    delta_l = (delta_{l+1} W_{l+1}^T) * sigma_l'(z_l)       (l = L-1, ..., 1)
    dL/dW_l = a_{l-1}^T delta_l / n,    dL/db_l = mean over the batch of delta_l.

`*` is the elementwise product. For the softmax cross-entropy of logits a_L,
dl/da_L = softmax(a_L) - onehot(y); for the mean squared error over the K outputs (Keras'
`"mse"`), dl/da_L = 2 (a_L - y) / K. The derivatives of the activations are written out
in `activation_derivative`; nothing here asks a backend for a gradient, and
`tests/test_backprop.py` checks the result against automatic differentiation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras import ops

ACTIVATIONS = ("identity", "relu", "sigmoid", "tanh")
LOSSES = ("softmax_cross_entropy", "mse")
_ALIASES = {"linear": "identity"}  # Keras calls the identity "linear"


def _name(name: str) -> str:
    name = _ALIASES.get(name, name)
    if name not in ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {name!r}; backprop knows {[*ACTIVATIONS, *_ALIASES]}."
        )
    return name


def activation(name: str, z: Any) -> Any:
    """sigma(z) for one of `ACTIVATIONS` (or `"linear"`, Keras' name of the identity).

    Example:
    >>> import numpy as np
    >>> ops.convert_to_numpy(activation("relu", np.array([-1.0, 2.0]))).tolist()
    [0.0, 2.0]
    """
    name = _name(name)
    if name == "relu":
        return ops.maximum(z, 0.0)
    if name == "sigmoid":
        return ops.sigmoid(z)
    if name == "tanh":
        return ops.tanh(z)
    return z


def activation_derivative(name: str, z: Any) -> Any:
    """sigma'(z), written out: relu' = 1{z > 0}, sigmoid' = s (1 - s), tanh' = 1 - tanh^2.

    Example:
    >>> import numpy as np
    >>> ops.convert_to_numpy(activation_derivative("sigmoid", np.zeros(2))).tolist()
    [0.25, 0.25]
    """
    name = _name(name)
    z = ops.convert_to_tensor(z)
    if name == "relu":
        return ops.cast(z > 0, z.dtype)  # 0 at the kink, as Keras' relu gradient
    if name == "sigmoid":
        s = ops.sigmoid(z)
        return s * (1.0 - s)
    if name == "tanh":
        t = ops.tanh(z)
        return 1.0 - t * t
    return ops.ones_like(z)


def _layer_activations(
    activation_names: str | Sequence[str], num_layers: int, output_activation: str
) -> list[str]:
    """One activation name per layer: the hidden ones, then the output's."""
    if isinstance(activation_names, str):
        hidden = [activation_names] * (num_layers - 1)
    else:
        hidden = list(activation_names)
    if len(hidden) != num_layers - 1:
        raise ValueError(
            f"{num_layers} layers need {num_layers - 1} hidden activations (the output "
            f"layer's is `output_activation`); got {len(hidden)}: {hidden}."
        )
    return [_name(name) for name in [*hidden, output_activation]]


def _check_parameters(weights: Sequence[Any], biases: Sequence[Any]) -> None:
    if not weights or len(weights) != len(biases):
        raise ValueError(
            f"backprop needs one bias per weight matrix (at least one layer); got "
            f"{len(weights)} weights and {len(biases)} biases."
        )
    for index, (w, b) in enumerate(zip(weights, biases)):
        w_shape, b_shape = tuple(w.shape), tuple(b.shape)
        if len(w_shape) != 2 or b_shape != w_shape[1:]:
            raise ValueError(
                f"Layer {index}: expected a kernel of shape (inputs, units) and a bias of "
                f"shape (units,); got {w_shape} and {b_shape}."
            )
        if index and tuple(weights[index - 1].shape)[1] != w_shape[0]:
            raise ValueError(
                f"Layer {index} takes {w_shape[0]} inputs but layer {index - 1} has "
                f"{tuple(weights[index - 1].shape)[1]} units."
            )


def forward(
    weights: Sequence[Any],
    biases: Sequence[Any],
    activation_names: str | Sequence[str],
    x: Any,
    output_activation: str = "identity",
) -> tuple[list[Any], list[Any]]:
    """The forward pass, keeping what the backward pass needs.

    Args:
        weights: sequence of L kernels, W_l of shape `(d_{l-1}, d_l)` (Keras' layout).
        biases: sequence of L biases, b_l of shape `(d_l,)`.
        activation_names: str or sequence of L - 1 str. The hidden layers' activations
            (one name for all of them, or one per layer), from `ACTIVATIONS`.
        x: array of shape `(batch, d_0)`.
        output_activation: str. The last layer's activation. Defaults to `"identity"`
            (logits, or a regression output).

    Returns:
        `(zs, activations)`: the pre-activations z_1..z_L and the activations
        a_0 = x, a_1..a_L, each of shape `(batch, d_l)`.
    """
    _check_parameters(weights, biases)
    names = _layer_activations(activation_names, len(weights), output_activation)
    a = ops.convert_to_tensor(x)
    inputs = int(weights[0].shape[0])
    if len(a.shape) != 2 or a.shape[1] != inputs:
        raise ValueError(
            f"backprop expects x of shape (batch, {inputs}); got "
            f"{tuple(a.shape)} (flatten the examples first)."
        )
    a = ops.cast(a, ops.convert_to_tensor(weights[0]).dtype)
    zs, activations = [], [a]
    for w, b, name in zip(weights, biases, names):
        z = ops.matmul(a, w) + b  # (batch, d_l)
        a = activation(name, z)
        zs.append(z)
        activations.append(a)
    return zs, activations


def loss_and_output_gradient(output: Any, y: Any, loss: str = "softmax_cross_entropy") -> Any:
    """The batch-mean loss and dl/da_L per example (not divided by the batch size).

    `softmax_cross_entropy` takes integer labels of shape `(batch,)` (or `(batch, 1)`);
    `mse` takes targets of the output's shape `(batch, K)`.
    """
    if loss == "softmax_cross_entropy":
        labels = ops.reshape(ops.cast(y, "int32"), (-1,))
        log_p = ops.log_softmax(output, axis=-1)  # (batch, K)
        onehot = ops.one_hot(labels, output.shape[-1], dtype=output.dtype)
        value = -ops.mean(ops.sum(onehot * log_p, axis=-1))
        return value, ops.exp(log_p) - onehot
    if loss == "mse":
        residual = output - ops.cast(ops.reshape(y, ops.shape(output)), output.dtype)
        value = ops.mean(residual * residual)
        return value, 2.0 * residual / output.shape[-1]
    raise ValueError(f"Unknown loss {loss!r}; backprop knows {list(LOSSES)}.")


def mlp_loss(
    weights: Sequence[Any],
    biases: Sequence[Any],
    activation_names: str | Sequence[str],
    x: Any,
    y: Any,
    loss: str = "softmax_cross_entropy",
    output_activation: str = "identity",
) -> Any:
    """The batch-mean loss of the MLP (what `backprop` differentiates), a scalar tensor."""
    _, activations = forward(weights, biases, activation_names, x, output_activation)
    value, _ = loss_and_output_gradient(activations[-1], y, loss)
    return value


def backprop(
    weights: Sequence[Any],
    biases: Sequence[Any],
    activation_names: str | Sequence[str],
    x: Any,
    y: Any,
    loss: str = "softmax_cross_entropy",
    output_activation: str = "identity",
) -> tuple[Any, list[Any], list[Any]]:
    """The loss of an MLP and its gradients, by the chain rule layer by layer.

    Args:
        weights: sequence of L kernels, W_l of shape `(d_{l-1}, d_l)` (Keras' `Dense`
            layout: z = a W + b).
        biases: sequence of L biases, b_l of shape `(d_l,)`.
        activation_names: str or sequence of L - 1 str. The hidden activations, from
            `ACTIVATIONS` (`"linear"` is accepted for the identity).
        x: array of shape `(batch, d_0)`.
        y: integer labels `(batch,)` for `softmax_cross_entropy`, targets `(batch, d_L)`
            for `mse`.
        loss: str. `"softmax_cross_entropy"` (of logits) or `"mse"` (Keras' mean over
            outputs and batch). Defaults to `"softmax_cross_entropy"`.
        output_activation: str. The last layer's activation. Defaults to `"identity"`.

    Returns:
        `(loss, weight_gradients, bias_gradients)`: the batch-mean loss and dL/dW_l,
        dL/db_l for every layer, as tensors shaped like the weights and biases.

    Example:
    >>> import numpy as np
    >>> w = [np.array([[1.0, -1.0]]), np.array([[1.0], [2.0]])]
    >>> b = [np.zeros(2), np.zeros(1)]
    >>> x, y = np.array([[2.0]]), np.array([[1.0]])
    >>> value, grad_w, grad_b = backprop(w, b, "relu", x, y, loss="mse")
    >>> float(value), ops.convert_to_numpy(grad_w[0]).tolist()
    (1.0, [[4.0, 0.0]])
    """
    zs, activations = forward(weights, biases, activation_names, x, output_activation)
    names = _layer_activations(activation_names, len(weights), output_activation)
    value, output_gradient = loss_and_output_gradient(activations[-1], y, loss)
    batch = ops.cast(ops.shape(activations[0])[0], output_gradient.dtype)

    grad_weights: list[Any] = [None] * len(weights)
    grad_biases: list[Any] = [None] * len(weights)
    delta = output_gradient * activation_derivative(names[-1], zs[-1])  # (batch, d_L)
    for layer in reversed(range(len(weights))):
        grad_weights[layer] = ops.matmul(ops.transpose(activations[layer]), delta) / batch
        grad_biases[layer] = ops.mean(delta, axis=0)
        if layer:  # carry the error one layer down: delta_l from delta_{l+1}
            upstream = ops.matmul(delta, ops.transpose(weights[layer]))  # (batch, d_l)
            delta = upstream * activation_derivative(names[layer - 1], zs[layer - 1])
    return value, grad_weights, grad_biases
