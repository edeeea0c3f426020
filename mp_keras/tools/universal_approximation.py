"""Universal approximation in practice: wider one-hidden-layer networks fit a curve better.

The universal approximation theorem (Cybenko 1989, Hornik 1991; notes, chapter 1) says
that networks with one hidden layer of sigmoid-like units and a linear output,

    f_W(x) = c + sum_{j=1..W} v_j h(w_j x + b_j),

approximate any continuous function on a compact interval to any accuracy in the max
norm, given enough units W. This tool measures it: for each width W it trains such a
network by `model.fit` on a dense grid of [0, 1] and reports the maximum absolute error
max_x |f_W(x) - f(x)| on a denser grid, which falls as W grows.

The default target is f(x) = sin(2 pi x) + 1/2 cos(6 pi x) (`"sines"`): smooth, with
two scales (one slow period and three fast ones), so one unit captures little of it
and a few units only the slow part.

How the networks are trained:

* Input x in [0, 1] is mapped to u = 2x - 1; hidden weights start as N(0, 6^2) and
  biases as U(-6, 6), so the units start as steep steps spread over the interval (the
  building blocks of the theorem's constructive proof) and output weights start at 0.
* Adam on the mean squared error, full batch: `epochs` is the number of passes over
  the grid, each one gradient step.
* Each width is trained from `restarts` initialisations and the one with the smallest
  max error is kept: the theorem is about what a width can represent, not about one
  optimisation run, and gradient descent on the squared error sometimes leaves a unit
  where it helps little (two units then fit no better than one).
* All networks train together as one Keras model whose loss is the sum of their mean
  squared errors. They share no parameter, so each receives exactly the gradient of
  its own loss, and Adam works coordinate by coordinate: this is the same as training
  each one alone, in one `fit` instead of widths x restarts.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.plots import write_figure

TARGETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sines": lambda x: np.sin(2 * np.pi * x) + 0.5 * np.cos(6 * np.pi * x),
    "sin": lambda x: np.sin(2 * np.pi * x),
    "kink": lambda x: np.abs(x - 0.5),
}
DEFAULT_WIDTHS = (1, 2, 4, 8, 16, 32)
INIT_SCALE = 6.0  # hidden weights ~ N(0, 6^2), biases ~ U(-6, 6), on u in [-1, 1]


class _NetworkBank(keras.layers.Layer):
    """Output layers of several one-hidden-layer networks whose units are concatenated.

    Takes the hidden activations of all networks side by side, `(batch, total_units)`,
    and returns each network's output c_k + sum_{j in network k} v_j h_j, `(batch,
    num_networks)`: one output weight per hidden unit, summed within each network by a
    fixed 0/1 assignment matrix, so no weight is shared between networks.
    """

    def __init__(self, widths: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.widths = [int(w) for w in widths]
        owner = np.repeat(np.arange(len(self.widths)), self.widths)
        # (total_units, num_networks): unit j belongs to network owner[j]
        self._assignment = np.eye(len(self.widths), dtype="float32")[owner]

    def build(self, input_shape: Any) -> None:
        self.v = self.add_weight(shape=(sum(self.widths),), initializer="zeros", name="v")
        self.c = self.add_weight(shape=(len(self.widths),), initializer="zeros", name="c")

    def call(self, hidden: Any) -> Any:
        return ops.matmul(hidden * self.v, ops.convert_to_tensor(self._assignment)) + self.c


def build_networks(
    widths: Sequence[int], restarts: int = 5, activation: str = "tanh", seed: int = 0
) -> keras.Model:
    """One Keras model holding `restarts` one-hidden-layer networks of each width.

    Args:
        widths: Hidden widths W.
        restarts: Networks (initialisations) per width.
        activation: Hidden non-linearity h, `"tanh"` or `"sigmoid"`.
        seed: Seed of the initial weights.

    Returns:
        A model mapping x `(batch, 1)` to the outputs of all networks,
        `(batch, len(widths) * restarts)`, ordered width by width.

    Example:
    >>> model = build_networks((1, 3), restarts=2)
    >>> tuple(model(np.zeros((5, 1), "float32")).shape), model.count_params()
    ((5, 4), 28)
    """
    if activation not in ("tanh", "sigmoid"):
        raise ValueError(f"activation must be 'tanh' or 'sigmoid', got {activation!r}.")
    widths = [int(w) for w in widths for _ in range(int(restarts))]
    inputs = keras.Input((1,))
    u = keras.layers.Rescaling(2.0, offset=-1.0)(inputs)  # [0, 1] -> [-1, 1]
    hidden_layer = keras.layers.Dense(sum(widths), activation=activation, name="hidden")
    hidden = hidden_layer(u)  # (batch, total_units)
    model = keras.Model(inputs, _NetworkBank(widths)(hidden), name="networks")
    # Drawn by NumPy, not by Keras' initializers, so every backend starts from the same
    # weights and gives the same figures up to rounding.
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0.0, INIT_SCALE, size=(1, sum(widths)))
    bias = rng.uniform(-INIT_SCALE, INIT_SCALE, size=sum(widths))
    hidden_layer.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return model


def _target_fn(target: str | Callable[[np.ndarray], np.ndarray]) -> Callable:
    if callable(target):
        return target
    if target not in TARGETS:
        raise ValueError(f"Unknown target {target!r}; available: {', '.join(TARGETS)}.")
    return TARGETS[target]


def summed_squared_error(y_true: Any, y_pred: Any) -> Any:
    """Per example, the sum over networks of their squared errors, `(batch,)`.

    Keras averages it over the batch, so the loss is the sum of the networks' MSEs.
    """
    return ops.sum(ops.square(y_true - y_pred), axis=-1)


def train_full_batch(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    """`epochs` gradient steps of a compiled model, each on the whole of (x, y)."""
    # The data tiled `chunk` times with batch_size = len(x): every batch is all of it, so
    # each step is a full-batch step, with one Keras epoch (and its overhead) per chunk.
    chunk = min(int(epochs), 100)
    passes, rest = divmod(int(epochs), chunk)
    for count, steps in ((passes, chunk), (1 if rest else 0, rest)):
        if count:
            model.fit(
                np.tile(x, (steps, 1)),
                np.tile(y, (steps, 1)),
                batch_size=len(x),
                epochs=count,
                shuffle=False,
                verbose=0,
            )


def fit_widths(
    widths: Sequence[int] = DEFAULT_WIDTHS,
    target: str | Callable[[np.ndarray], np.ndarray] = "sines",
    epochs: int = 3000,
    seed: int = 0,
    restarts: int = 5,
    activation: str = "tanh",
    learning_rate: float = 0.01,
    num_points: int = 256,
    num_eval_points: int = 2001,
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], dict[int, float]]:
    """Trains the networks of each width and measures their maximum error.

    Args:
        widths: Hidden widths W to compare.
        target: A name from `TARGETS` or a function of a NumPy array on [0, 1].
        epochs: Full-batch Adam steps (passes over the training grid).
        seed: Seed of the initial weights.
        restarts: Initialisations per width; the one with the smallest error is kept.
        activation: `"tanh"` or `"sigmoid"`.
        learning_rate: Adam's step size.
        num_points: Size of the training grid on [0, 1].
        num_eval_points: Size of the evaluation grid on [0, 1].

    Returns:
        `(x, f(x), fits, max_errors)` on the evaluation grid: `fits[W]` is the best
        width-W network's output there and `max_errors[W]` its max |error|.

    Example:
    >>> x, f, fits, errors = fit_widths((1, 8), epochs=100, restarts=1, num_points=64)
    >>> sorted(errors), fits[8].shape, bool(errors[1] > 0.8)  # one unit: one step
    ([1, 8], (2001,), True)
    """
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1 or len(set(widths)) != len(widths):
        raise ValueError(f"widths must be distinct positive ints, got {widths}.")
    if int(epochs) < 1 or int(restarts) < 1 or int(num_points) < 2:
        raise ValueError(
            f"epochs and restarts must be >= 1 and num_points >= 2, got {epochs}, "
            f"{restarts} and {num_points}."
        )
    f = _target_fn(target)
    x = np.linspace(0.0, 1.0, int(num_points), dtype="float32")[:, None]  # (points, 1)
    y = np.asarray(f(x.astype(np.float64)), dtype="float32").reshape(-1, 1)
    if not np.all(np.isfinite(y)):
        raise ValueError("The target gives non-finite values on [0, 1].")

    model = build_networks(widths, restarts=restarts, activation=activation, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=summed_squared_error)
    train_full_batch(model, x, np.tile(y, (1, len(widths) * int(restarts))), epochs)

    x_eval = np.linspace(0.0, 1.0, int(num_eval_points), dtype="float32")[:, None]
    f_eval = np.asarray(f(x_eval.astype(np.float64)), dtype="float64").reshape(-1)
    outputs = np.asarray(model.predict(x_eval, batch_size=len(x_eval), verbose=0), "float64")
    outputs = outputs.reshape(len(x_eval), len(widths), int(restarts))
    errors = np.abs(outputs - f_eval[:, None, None]).max(axis=0)  # (widths, restarts)
    best = errors.argmin(axis=1)
    fits = {w: outputs[:, i, best[i]] for i, w in enumerate(widths)}
    max_errors = {w: float(errors[i, best[i]]) for i, w in enumerate(widths)}
    return x_eval[:, 0].astype("float64"), f_eval, fits, max_errors


def save_universal_approximation_figure(
    path: str | os.PathLike,
    x: np.ndarray,
    f: np.ndarray,
    fits: dict[int, np.ndarray],
    max_errors: dict[int, float],
) -> None:
    """Two panels: the target and each width's fit; max |error| against width (log-log)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers and CI
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(x, f, color="black", linewidth=2.5, label="target")
    colours = plt.cm.viridis(np.linspace(0.0, 0.9, len(fits)))
    for colour, (width, fit) in zip(colours, sorted(fits.items())):
        left.plot(x, fit, color=colour, linewidth=1.2, label=f"W = {width}")
    left.set_xlabel("x")
    left.set_title("one hidden layer of W units")
    left.legend(fontsize=7, ncol=2)
    widths = sorted(max_errors)
    right.plot(widths, [max_errors[w] for w in widths], "o-")
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("hidden units W")
    right.set_ylabel("max |f_W(x) - f(x)|")
    right.set_title("maximum error")
    right.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    write_figure(fig, path)


def run_universal_approximation(
    out_png: str | os.PathLike | None = "universal_approximation.png",
    widths: Sequence[int] = DEFAULT_WIDTHS,
    target: str | Callable[[np.ndarray], np.ndarray] = "sines",
    epochs: int = 3000,
    seed: int = 0,
    restarts: int = 5,
    activation: str = "tanh",
    num_points: int = 256,
) -> dict[int, float]:
    """Fits networks of each width to `target` and, if `out_png`, writes the figure.

    Args:
        out_png: Path of the PNG, or None for no figure.
        widths: Hidden widths W to compare.
        target: A name from `TARGETS` (default `"sines"`: sin(2 pi x) + 1/2 cos(6 pi x))
            or a function of a NumPy array on [0, 1].
        epochs: Full-batch Adam steps.
        seed: Seed of the initial weights.
        restarts: Initialisations per width (the best is kept).
        activation: `"tanh"` or `"sigmoid"`.
        num_points: Size of the training grid on [0, 1].

    Returns:
        `{W: max |f_W(x) - f(x)|}` over 2,001 points of [0, 1].

    Example:
    >>> errors = run_universal_approximation(None, widths=(1, 4), epochs=100, restarts=1)
    >>> list(errors), all(error > 0 for error in errors.values())
    ([1, 4], True)
    """
    x, f, fits, max_errors = fit_widths(
        widths,
        target,
        epochs=epochs,
        seed=seed,
        restarts=restarts,
        activation=activation,
        num_points=num_points,
    )
    if out_png is not None:
        save_universal_approximation_figure(out_png, x, f, fits, max_errors)
    return max_errors


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `mp-keras approximate`."""
    parser.add_argument("--out", default="universal_approximation.png", help="PNG path")
    parser.add_argument(
        "--widths",
        default=",".join(map(str, DEFAULT_WIDTHS)),
        help="comma-separated hidden widths (default: 1,2,4,8,16,32)",
    )
    parser.add_argument(
        "--target", default="sines", choices=sorted(TARGETS), help="function on [0, 1]"
    )
    parser.add_argument("--epochs", type=int, default=3000, help="full-batch steps (3000)")
    parser.add_argument("--restarts", type=int, default=5, help="inits per width (5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    """`mp-keras approximate`: writes the figure and prints the max error per width."""
    try:
        widths = [int(w) for w in str(args.widths).split(",") if w.strip()]
    except ValueError:
        raise SystemExit(f"--widths takes comma-separated ints, got {args.widths!r}.") from None
    errors = run_universal_approximation(
        args.out,
        widths=widths,
        target=args.target,
        epochs=args.epochs,
        seed=args.seed,
        restarts=getattr(args, "restarts", 5),
    )
    print("hidden units  max |error|")
    for width, error in errors.items():
        print(f"{width:>12}  {error:.4f}")
    print(f"Wrote {args.out}.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mp_keras.tools.universal_approximation`, the same as `mp-keras approximate`."""
    parser = argparse.ArgumentParser(
        prog="python -m mp_keras.tools.universal_approximation",
        description="Max error of one-hidden-layer networks of growing width on a 1-D function.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
