"""Figures of segmentation models: input images, true masks and predicted masks."""

from __future__ import annotations

import os

import keras
import numpy as np

from mp_keras.plots import _pyplot, write_figure

# Background black, then distinct colours; classes beyond these cycle.
_CLASS_COLOURS = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.89, 0.10, 0.11],
        [0.22, 0.49, 0.72],
        [0.30, 0.69, 0.29],
        [1.00, 0.50, 0.00],
        [0.60, 0.31, 0.64],
        [1.00, 1.00, 0.20],
        [0.65, 0.34, 0.16],
    ]
)


def colour_masks(masks: np.ndarray) -> np.ndarray:
    """Int masks `(..., height, width)` as RGB images `(..., height, width, 3)` in [0, 1].

    Example:
    >>> colour_masks(np.array([[0, 1]])).shape
    (1, 2, 3)
    """
    return _CLASS_COLOURS[np.asarray(masks) % len(_CLASS_COLOURS)]


def save_segmentation_figure(
    model: keras.Model,
    path: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray | None = None,
    num: int = 8,
) -> np.ndarray:
    """Saves a PNG with rows input, true mask (when `y` is given) and predicted mask.

    The predicted mask is the per-pixel arg-max of the model's output; each prediction is
    titled with its pixel accuracy when the true mask is known.

    Args:
        model: keras.Model. Maps images `(batch, height, width, channels)` to per-pixel
            scores `(batch, height, width, num_classes)`.
        path: str or path. Where to write the PNG.
        x: array. Images in [0, 1].
        y: array or None. True int masks `(batch, height, width)`. Defaults to `None`.
        num: int. Number of examples shown (the first ones). Defaults to `8`.

    Returns:
        The predicted masks of the examples shown, int `(num, height, width)`.
    """
    plt = _pyplot()
    x = np.asarray(x[:num], dtype="float32")
    predicted = keras.ops.convert_to_numpy(model(x)).argmax(axis=-1)
    rows: list[tuple[str, np.ndarray]] = [("input", x[..., 0] if x.shape[-1] == 1 else x)]
    titles = [""] * len(x)
    if y is not None:
        y = np.asarray(y[:num])
        rows.append(("true mask", colour_masks(y)))
        titles = [f"{(p == t).mean():.1%}" for p, t in zip(predicted, y)]
    rows.append(("predicted", colour_masks(predicted)))

    fig, axes = plt.subplots(
        len(rows), len(x), figsize=(len(x) * 1.2, len(rows) * 1.3), squeeze=False
    )
    for (name, images), ax_row in zip(rows, axes):
        for i, ax in enumerate(ax_row):
            ax.axis("off")
            ax.imshow(np.clip(images[i], 0, 1), cmap="gray", vmin=0, vmax=1)
            if name == "predicted" and titles[i]:
                ax.set_title(titles[i], fontsize=7)
        ax_row[0].text(-0.15, 0.5, name, transform=ax_row[0].transAxes, ha="right", va="center")
    fig.tight_layout()
    write_figure(fig, path)
    return predicted
