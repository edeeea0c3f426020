"""Which earlier pixels a PixelCNN's prediction depends on: the blind spot, by gradient.

The logit of pixel (i, j) of an autoregressive image model may depend on the pixels
before it in raster order only. Stacked masked convolutions (PixelCNN) depend on fewer:
each 3 x 3 type-B layer reaches one row up and one column right at most, so a pixel r
rows above and more than r columns to the right is never seen, however deep the network
(the *blind spot*, notes section 6.4, figure 17). The Gated PixelCNN's vertical stack
sees whole rows above and removes it.

`receptive_field` measures the dependence exactly: the gradient of one output logit with
respect to every input (summed in absolute value over a few random inputs, so that a
ReLU that happens to be off for one input does not hide a connection). Zero means no
path in the network. `save_receptive_field_figure` compares the two models on one image.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from mp_keras.engine import value_and_gradients

# Colours of the figure, by category: later pixel, seen, blind spot, the pixel itself.
LATER, SEEN, BLIND, TARGET = 0, 1, 2, 3
COLOURS = ("white", "gold", "0.55", "black")


def receptive_field(
    model: Any,
    pixel: Sequence[int],
    x: np.ndarray | None = None,
    condition: Any = None,
    num_probes: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """|d logit(pixel) / d x|, summed over probes, shape `model.data_shape`.

    Args:
        model: a model with `conditional_logits(x, condition)` and `data_shape`
            (`PixelCNN`, `GatedPixelCNN`, or any `BinaryAutoregressive` of images).
        pixel: `(row, column)` or `(row, column, channel)` of the output logit.
            The channel defaults to 0.
        x: `(num_probes, *data_shape)` inputs at which to differentiate. Defaults to
            standard normal draws from `seed` (real values reach more paths than 0/1).
        condition: labels of a class-conditional model, one per probe (or one for all).
        num_probes: number of random inputs when `x` is not given.
        seed: seed of those inputs.

    Returns:
        float64 array of shape `model.data_shape`; zero where the logit cannot depend on
        that input.

    Example:
    >>> from mp_keras.models.pixelcnn import PixelCNN
    >>> model = PixelCNN((4, 4, 1), filters=8, num_layers=0, first_kernel_size=3)
    >>> seen = receptive_field(model, (1, 1))[..., 0] > 0
    >>> seen.astype(int).tolist()  # one 3 x 3 mask A: the row above, the pixel to the left
    [[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    """
    shape = tuple(model.data_shape)
    index = tuple(int(p) for p in pixel) + (0,) * (len(shape) - len(pixel))
    if len(index) != len(shape) or any(not 0 <= i < n for i, n in zip(index, shape)):
        raise ValueError(f"pixel must index an image of shape {shape}, got {tuple(pixel)}.")
    if x is None:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(int(num_probes), *shape))
    x = np.asarray(x, "float32")
    extra = () if condition is None else (keras.ops.convert_to_tensor(condition, "int32"),)
    if extra:
        extra = (keras.ops.broadcast_to(extra[0], (len(x),)),)

    def total_logit(inputs: Any) -> Any:
        # Examples are independent, so the gradient of the sum is each one's gradient.
        logits = model.conditional_logits(inputs, *extra)
        return keras.ops.sum(logits[(slice(None), *index)])

    _, (grad,) = value_and_gradients(total_logit, [x])
    return np.abs(np.asarray(grad, "float64")).sum(axis=0)


def dependence_map(model: Any, pixel: Sequence[int], **kwargs: Any) -> np.ndarray:
    """Categories of the pixels `(height, width)` for `pixel`'s logit.

    `TARGET` the pixel itself, `SEEN` an earlier pixel it depends on, `BLIND` an earlier
    pixel it does not depend on, `LATER` a pixel after it in raster order. Keyword
    arguments go to `receptive_field`.
    """
    row, col = int(pixel[0]), int(pixel[1])
    grad = receptive_field(model, (row, col), **kwargs).sum(axis=-1)  # (H, W)
    height, width = grad.shape
    order = np.arange(height * width).reshape(height, width)
    earlier = order < row * width + col
    categories = np.full((height, width), LATER)
    categories[earlier & (grad > 0)] = SEEN
    categories[earlier & (grad == 0)] = BLIND
    categories[row, col] = TARGET
    return categories


def compare_models(
    image_size: int = 7,
    num_layers: int = 5,
    pixel: Sequence[int] | None = None,
    filters: int = 8,
    seed: int = 0,
    num_probes: int = 3,
) -> dict[str, np.ndarray]:
    """Dependence maps of a `PixelCNN` and a `GatedPixelCNN` with the same depth.

    Both have 3 x 3 kernels throughout (also in the first layer) and `num_layers`
    masked layers in all, so the difference is the blind spot alone. `pixel` defaults
    to `(2 * image_size // 3, image_size // 3)`, low and left, so that the blind spot
    above and to the right of it is large: (4, 2) on a 7 x 7 image, where five Gated
    layers reach every earlier pixel.
    """
    from mp_keras.models.gated_pixelcnn import GatedPixelCNN
    from mp_keras.models.pixelcnn import PixelCNN

    if int(num_layers) < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers!r}.")
    shape = (int(image_size), int(image_size), 1)
    pixel = (2 * shape[0] // 3, shape[1] // 3) if pixel is None else tuple(pixel)
    keras.utils.set_random_seed(seed)
    common = {"input_shape": shape, "filters": filters, "first_kernel_size": 3, "kernel_size": 3}
    models = {
        "PixelCNN": PixelCNN(num_layers=int(num_layers) - 1, **common),
        "Gated PixelCNN": GatedPixelCNN(num_layers=int(num_layers), **common),
    }
    return {
        name: dependence_map(model, pixel, seed=seed, num_probes=num_probes)
        for name, model in models.items()
    }


def save_receptive_field_figure(
    path: str | os.PathLike,
    image_size: int = 7,
    num_layers: int = 5,
    pixel: Sequence[int] | None = None,
    seed: int = 0,
    num_probes: int = 3,
) -> dict[str, np.ndarray]:
    """Writes a PNG of `compare_models`: PixelCNN (blind spot) beside Gated PixelCNN.

    Returns the maps it drew, `{"PixelCNN": ..., "Gated PixelCNN": ...}`, each
    `(height, width)` of `LATER`, `SEEN`, `BLIND` and `TARGET`.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from mp_keras.plots import _pyplot, write_figure

    maps = compare_models(image_size, num_layers, pixel, seed=seed, num_probes=num_probes)
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.6))
    cmap = ListedColormap(COLOURS)
    for ax, (name, categories) in zip(axes, maps.items()):
        ax.imshow(categories, cmap=cmap, vmin=0, vmax=len(COLOURS) - 1)
        ax.set_xticks(np.arange(-0.5, categories.shape[1]), minor=True)
        ax.set_yticks(np.arange(-0.5, categories.shape[0]), minor=True)
        ax.grid(which="minor", color="0.3", linewidth=0.5)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        unseen = int((categories == BLIND).sum())
        ax.set_title(f"{name}\n{unseen} earlier pixels not seen", fontsize=9)
    labels = ("later pixel", "depends on", "not seen (blind spot)", "predicted pixel")
    handles = [Patch(facecolor=c, edgecolor="0.3", label=t) for c, t in zip(COLOURS, labels)]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle(f"Receptive field after {num_layers} masked 3x3 layers", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 0.93))
    write_figure(fig, path)
    return maps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `mp-keras receptive-field`."""
    parser.add_argument("--out", default="receptive_field.png", help="PNG path")
    parser.add_argument("--size", type=int, default=7, help="image height = width (default: 7)")
    parser.add_argument("--layers", type=int, default=4, help="masked layers (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def run(args: argparse.Namespace) -> int:
    """`mp-keras receptive-field`: writes the figure and prints the blind-spot sizes."""
    maps = save_receptive_field_figure(args.out, args.size, args.layers, seed=args.seed)
    for name, categories in maps.items():
        print(f"{name:<16} earlier pixels not seen: {int((categories == BLIND).sum())}")
    print(f"Wrote {args.out}.")
    return 0
