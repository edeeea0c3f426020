"""How far back gradients reach through a recurrent cell: vanishing, exploding, carousel.

Backpropagation through time carries the gradient of a loss at step t back to the state
at step k < t through the product of one-step Jacobians (notes, chapter 4)

    ds(t)/ds(k) = J(t) J(t-1) ... J(k+1),    J(u) = ds(u)/ds(u-1).

For the Elman cell J(u) = diag(1 - h(u)^2) W_h, so with small recurrent weights the product
shrinks geometrically (vanishing gradients) and with large ones it can grow (exploding
gradients). In the LSTM the memory has dc(u)/dc(u-1) = diag(f(u)); with forget gates near
1 the error is carried almost unchanged (the constant error carousel).

`measure_gradient_flow` runs a cell on random inputs and reports the spectral norm (largest
singular value: the largest factor by which any error vector can grow) of
dh(t)/ds(k) for t - k = 1 .. steps, where s is the cell's whole state: h for Elman,
(h, c) for the LSTM. The loss at step t reads h(t) only, so these are the rows of the
product that carry its gradient back; the columns for c(k) are where the carousel shows.
The one-step Jacobians come from the cells' `state_jacobian` (the notes' formulas, checked
against automatic differentiation in the tests) and are multiplied in NumPy.

`clip_by_global_norm` is the notes' clipping rule, theta <- theta - eta * g *
min(1, tau / ||g||); Keras optimizers apply exactly this rule when built with
`global_clipnorm=tau` (`keras.optimizers.SGD(eta, global_clipnorm=tau)`), before their
update.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from mp_keras.layers.recurrent import recurrent_cell

# The three settings of the figure: (label, cell, recurrent_scale, forget_bias).
SETTINGS: tuple[tuple[str, str, float, float], ...] = (
    ("Elman, W_h = 0.5 x orthogonal", "elman", 0.5, 0.0),
    ("Elman, W_h = 3 x orthogonal", "elman", 3.0, 0.0),
    ("LSTM, forget bias 3", "lstm", 1.0, 3.0),
)
WARMUP = 20  # steps run before k, so that h(k) is a typical state, not the zero start


def clip_by_global_norm(grads: Sequence[Any], tau: float) -> list[Any]:
    """Scales gradients by min(1, tau / ||g||), ||g|| the norm of all of them together.

    The notes' clipping rule; `keras.optimizers.Optimizer(global_clipnorm=tau)` applies
    the same scaling before its update.

    Example:
    >>> import numpy as np
    >>> clipped = clip_by_global_norm([np.array([3.0]), np.array([4.0])], tau=1.0)
    >>> [np.round(keras.ops.convert_to_numpy(g), 3).tolist() for g in clipped]
    [[0.6], [0.8]]
    """
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau!r}.")
    grads = [keras.ops.convert_to_tensor(g, dtype="float32") for g in grads]
    norm = keras.ops.sqrt(sum(keras.ops.sum(keras.ops.square(g)) for g in grads))
    scale = keras.ops.minimum(1.0, tau / keras.ops.maximum(norm, 1e-12))
    return [g * scale for g in grads]


def build_cell(
    cell: str, units: int, input_dim: int, recurrent_scale: float, forget_bias: float, seed: int
) -> keras.layers.Layer:
    """A built cell with W_h = `recurrent_scale` x a random orthogonal matrix.

    For the LSTM, every gate's recurrent block is scaled, and b_f is set to `forget_bias`.
    """
    layer = recurrent_cell(
        cell,
        units,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        recurrent_initializer=keras.initializers.Orthogonal(gain=recurrent_scale, seed=seed + 1),
    )
    layer.build((None, input_dim))
    if cell == "lstm":
        bias = keras.ops.convert_to_numpy(layer.bias).copy()
        bias[:units] = forget_bias  # gates are stacked f, i, o, g
        layer.bias.assign(bias)
    return layer


def chained_jacobians(
    cell: keras.layers.Layer, inputs: np.ndarray, states: list[Any]
) -> np.ndarray:
    """ds(k + d)/ds(k) for d = 1 .. T, from the state `states` at step k.

    Args:
        cell: a built `ElmanCell` or `LSTMCell`.
        inputs: `(batch, T, input_dim)` inputs x(k + 1) .. x(k + T).
        states: the cell's states at step k, each `(batch, units)`.

    Returns:
        `(T, batch, S, S)` with S the total state size (units for Elman, 2 units for LSTM),
        states concatenated in the cell's order (h, then c).
    """
    products = []
    product = None
    for step in range(inputs.shape[1]):
        x = inputs[:, step]
        jac = keras.ops.convert_to_numpy(cell.state_jacobian(x, states))  # (batch, S, S)
        product = jac if product is None else jac @ product
        products.append(product)
        _, states = cell(x, states)
    return np.stack(products)


def measure_gradient_flow(
    cell: str = "elman",
    units: int = 16,
    steps: int = 50,
    recurrent_scale: float = 0.5,
    forget_bias: float = 3.0,
    input_scale: float = 1.0,
    num_sequences: int = 8,
    seed: int = 0,
) -> np.ndarray:
    """Spectral norm of dh(t)/ds(k) for t - k = 1 .. `steps`, median over sequences.

    Args:
        cell: `"elman"` or `"lstm"`.
        units: size of h (and of c).
        steps: largest distance t - k.
        recurrent_scale: W_h is this times a random orthogonal matrix.
        forget_bias: b_f of the LSTM (ignored for Elman).
        input_scale: standard deviation of the random inputs (input size = `units`).
        num_sequences: independent random input sequences; the median is reported.
        seed: seeds the weights and the inputs.

    Returns:
        float64 array of shape `(steps,)`; entry d - 1 is the norm at t - k = d.

    Example:
    >>> norms = measure_gradient_flow("elman", units=4, steps=10, recurrent_scale=0.5)
    >>> norms.shape, bool(norms[-1] < norms[0])
    ((10,), True)
    """
    if int(steps) < 1 or int(units) < 1 or int(num_sequences) < 1:
        raise ValueError(
            f"steps, units and num_sequences must be >= 1, got {steps}, {units}, {num_sequences}."
        )
    layer = build_cell(cell, units, units, recurrent_scale, forget_bias, seed)
    rng = np.random.default_rng(seed)
    inputs = rng.normal(0.0, input_scale, size=(num_sequences, WARMUP + steps, units))
    inputs = inputs.astype("float32")
    states = [np.zeros((num_sequences, units), "float32") for _ in np.atleast_1d(layer.state_size)]
    for step in range(WARMUP):
        _, states = layer(inputs[:, step], states)
    products = chained_jacobians(layer, inputs[:, WARMUP:], states)  # (steps, batch, S, S)
    norms = np.linalg.norm(products[:, :, :units, :].astype("float64"), ord=2, axis=(-2, -1))
    return np.median(norms, axis=1)


def run_gradient_flow(
    out_png: str | os.PathLike | None = None,
    steps: int = 50,
    units: int = 16,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Measures the three settings of `SETTINGS` and, if `out_png`, plots them (log scale).

    Returns:
        `{label: norms}` with norms as returned by `measure_gradient_flow`.
    """
    curves = {
        label: measure_gradient_flow(
            cell,
            units=units,
            steps=steps,
            recurrent_scale=scale,
            forget_bias=forget_bias,
            seed=seed,
        )
        for label, cell, scale, forget_bias in SETTINGS
    }
    if out_png is not None:
        from mp_keras.plots.sequences import save_gradient_flow_figure

        save_gradient_flow_figure(curves, out_png)
    return curves


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `mp-keras gradient-flow`."""
    parser.add_argument("--out", default="gradient_flow.png", help="PNG path")
    parser.add_argument("--steps", type=int, default=50, help="largest t - k (default: 50)")
    parser.add_argument("--units", type=int, default=16, help="state size (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    """`mp-keras gradient-flow`: writes the figure and prints the norms at a few distances."""
    curves = run_gradient_flow(args.out, steps=args.steps, units=args.units, seed=args.seed)
    distances = [d for d in (1, 10, 30, 50) if d <= args.steps]
    print("||dh(t)/ds(k)||_2 at t - k = " + ", ".join(map(str, distances)))
    for label, norms in curves.items():
        print(f"  {label:<32} " + "  ".join(f"{norms[d - 1]:.2e}" for d in distances))
    print(f"Wrote {args.out}.")
    return 0
