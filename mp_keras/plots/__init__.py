"""PNG figures of what a model does: samples, reconstructions, predictions."""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def write_figure(fig: Any, path: str | os.PathLike, dpi: int = 100) -> None:
    """Saves a Matplotlib figure crash-safely (temporary name, then rename) and closes it."""
    from mp_keras.io import atomic_path

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        _pyplot().close(fig)


def _as_images(x: np.ndarray) -> np.ndarray:
    """Grayscale images `(n, height, width)`; vectors become one-row strips."""
    x = np.asarray(x, dtype="float32")
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim == 2:  # (n, features): e.g. a VAE trained on vectors
        x = x[:, None, :]
    return x


def _image_row(axes: Any, images: np.ndarray, titles: list[str] | None = None) -> None:
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < len(images):
            ax.imshow(np.clip(images[i], 0, 1), cmap="gray", vmin=0, vmax=1)
            if titles:
                ax.set_title(titles[i], fontsize=8)


def save_image_grid(
    rows: dict[str, np.ndarray], path: str | os.PathLike, titles: dict[str, list[str]] | None = None
) -> None:
    """Saves labelled rows of grayscale images (values in [0, 1]) as a PNG."""
    plt = _pyplot()
    rows = {name: _as_images(images) for name, images in rows.items()}
    low = min(float(images.min()) for images in rows.values())
    high = max(float(images.max()) for images in rows.values())
    if low < 0 or high > 1:  # not [0, 1] images: one grey scale for every row
        rows = {name: (images - low) / max(high - low, 1e-12) for name, images in rows.items()}
    cols = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 0.9, len(rows) * 1.1), squeeze=False)
    for (name, images), ax_row in zip(rows.items(), axes):
        _image_row(ax_row, images, (titles or {}).get(name))
        ax_row[0].text(-0.3, 0.5, name, transform=ax_row[0].transAxes, ha="right", va="center")
    fig.tight_layout()
    write_figure(fig, path)


def save_scatter(
    samples: np.ndarray,
    path: str | os.PathLike,
    data: np.ndarray | None = None,
    title: str = "samples",
    labels: np.ndarray | None = None,
) -> None:
    """Saves 2-D points as a PNG: model samples in red over the data in grey, or
    points coloured by `labels` (e.g. a classifier's predictions)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if data is not None:
        ax.scatter(data[:, 0], data[:, 1], s=3, c="0.75", label="data")
    if labels is None:
        ax.scatter(samples[:, 0], samples[:, 1], s=3, c="tab:red", label="model")
        ax.legend(loc="upper right", fontsize=8)
    else:
        ax.scatter(samples[:, 0], samples[:, 1], s=3, c=labels, cmap="tab10")
    ax.set_aspect("equal")
    ax.set_title(title)
    fig.tight_layout()
    write_figure(fig, path)


def _predicted_classes(outputs: Any) -> np.ndarray:
    """Class indices from logits (batch, classes), or from one 0/1 output per example."""
    outputs = np.asarray(keras.ops.convert_to_numpy(outputs))
    if outputs.ndim >= 2 and outputs.shape[-1] > 1:
        return outputs.argmax(axis=-1)
    return (outputs.reshape(len(outputs)) > 0.5).astype(int)


def save_model_figure(
    model: keras.Model,
    path: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray | None = None,
    num: int = 16,
    seed: int = 0,
) -> None:
    """The figure `mp-keras train` writes: samples (and reconstructions) or predictions.

    Autoencoders (`figure_rows`) get rows of corrupted inputs, reconstructions and clean
    inputs; generative models with `sample` get a grid of samples (a scatter plot for 2-D
    data);
    models with `encode` add a row of inputs and a row of their reconstructions;
    classifiers get test images titled with predicted and true labels.
    """
    points = x.ndim == 2 and x.shape[1] == 2  # 2-D densities are shown as point clouds
    if hasattr(model, "figure_rows"):  # autoencoders: (corrupted,) reconstructed, clean rows
        save_image_grid(model.figure_rows(np.asarray(x[:num]), seed=seed), path)
        return
    if hasattr(model, "sample"):
        from mp_keras.plots.samples import draw_samples, save_samples

        samples, labels = draw_samples(model, 1000 if points else num, seed)
        if points:
            save_scatter(samples, path, data=x[:1000], title=f"{type(model).__name__} samples")
            return
        if not hasattr(model, "encode"):  # images, audio, strokes or text, as fits
            save_samples(model, samples, path, labels)
            return
        x = np.asarray(x[:num])
        rows = {"samples": samples[:num], "inputs": x}
        rows["reconstructions"] = keras.ops.convert_to_numpy(model(x))
        save_image_grid(rows, path)
        return
    if points:
        predicted = _predicted_classes(model(x[:1000]))
        title = f"{type(model).__name__}: predicted classes"
        save_scatter(x[:1000], path, title=title, labels=predicted)
        return
    x = np.asarray(x[:num])
    predicted = _predicted_classes(model(x))
    truth = predicted if y is None else y[:num]
    titles = [f"{p} ({int(t)})" for p, t in zip(predicted, truth)]
    save_image_grid({"predicted (true)": x}, path, titles={"predicted (true)": titles})
