"""Figures of chapter 4: gradient flow through time, and a sequence model's predictions."""

from __future__ import annotations

import os

import keras
import numpy as np

from mp_keras.plots import _pyplot, write_figure


def save_gradient_flow_figure(curves: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Plots ||dh(t)/ds(k)|| against t - k on a log scale, one line per setting."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for label, norms in curves.items():
        distances = np.arange(1, len(norms) + 1)
        ax.semilogy(distances, np.maximum(norms, 1e-300), label=label)
    ax.set_xlabel("t - k (steps back in time)")
    ax.set_ylabel("spectral norm of dh(t)/ds(k)")
    ax.set_title("Gradient flow through time")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_figure(fig, path)


def _token_row(ax: object, tokens: np.ndarray, y: float, colours: list[str] | None) -> None:
    for t, token in enumerate(np.asarray(tokens).astype(int)):
        colour = "white" if colours is None else colours[t]
        ax.add_patch(_rectangle(t, y, colour))
        ax.text(t + 0.5, y + 0.45, str(token), ha="center", va="center", fontsize=8)


def _rectangle(x: float, y: float, colour: str) -> object:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), 1.0, 0.9, facecolor=colour, edgecolor="0.6")


def save_sequence_figure(
    model: keras.Model,
    path: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray | None = None,
    num: int = 6,
) -> None:
    """The figure `mp-keras train` writes for sequence models: inputs, targets, predictions.

    For each of the first `num` examples, three rows of tokens: the input, the target and
    the model's prediction (the argmax of `model(x)`, greedy decoding for the decoders),
    each predicted token green where it matches the target and red where it does not.
    """
    plt = _pyplot()
    x = np.asarray(x[:num])
    predicted = keras.ops.convert_to_numpy(model(x)).argmax(axis=-1)
    predicted = predicted.reshape(len(x), -1)  # sequence classifiers predict one token
    truth = None if y is None else np.asarray(y[:num]).reshape(len(x), -1)
    width = max(x.shape[1], predicted.shape[1])
    fig, ax = plt.subplots(figsize=(0.45 * width + 1.4, 1.25 * len(x)))
    for row in range(len(x)):
        top = -row * 4.0
        _token_row(ax, x[row], top, None)
        if truth is not None:
            _token_row(ax, truth[row], top - 1.0, ["0.9"] * truth.shape[1])
            colours = ["#b6e3b6" if ok else "#f4b6b6" for ok in predicted[row] == truth[row]]
        else:
            colours = None
        _token_row(ax, predicted[row], top - 2.0, colours)
        for offset, name in enumerate(("input", "target", "predicted")):
            ax.text(-0.3, top - offset + 0.45, name, ha="right", va="center", fontsize=8)
    ax.set_xlim(-2.6, width + 0.2)
    ax.set_ylim(-4.0 * len(x) + 0.8, 1.0)
    ax.axis("off")
    ax.set_title(f"{type(model).__name__}: test examples", fontsize=9)
    fig.tight_layout()
    write_figure(fig, path)
