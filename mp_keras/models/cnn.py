"""Convolutional neural network classifier (notes, chapter 2: CNNs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from mp_keras.layers.convolution import Convolution2D
from mp_keras.models._classifier import Classifier

CONVS = ("correlation", "convolution")


@keras.saving.register_keras_serializable(package="mp_keras")
class CNN(Classifier):
    """Convolutional classifier: conv, ReLU and max-pooling blocks, then a dense head.

    Each block computes a^(l) = maxpool(ReLU(a^(l-1) ⋆ W^(l) + b^(l))) with `"same"`
    padding, so a block keeps the image size and its 2x2 max pooling halves it; the
    last feature map is flattened and passed through an optional hidden dense layer to
    one logit per class (notes, chapter 2). A block whose feature map is already 1
    pixel wide or high skips its pooling, so small images (8x8 digits) can stack as
    many blocks as large ones. `conv="correlation"` uses `keras.layers.Conv2D` (what
    deep-learning libraries call convolution); `conv="convolution"` uses
    `Convolution2D`, the flipped-kernel convolution of the notes. Both learn the same
    functions: one is the other with every kernel rotated by 180 degrees.

    Trained with Keras' own trainer: `compile()` defaults to Adam, sparse categorical
    cross-entropy on logits and accuracy.

    Args:
        input_shape: tuple of 3 ints. `(height, width, channels)` of one image.
            Defaults to `(28, 28, 1)`.
        num_classes: int. Number of classes. Defaults to `10`.
        filters: tuple of ints. Channels of each conv block. Defaults to `(32, 64)`.
        kernel_size: int. Side of the square kernels. Defaults to `3`.
        dense_units: int. Width of the hidden dense layer; `0` for none. Defaults to
            `128`.
        dropout: float. Dropout rate after the conv blocks and after the hidden dense
            layer. Defaults to `0.25`.
        conv: str. `"correlation"` (`keras.layers.Conv2D`) or `"convolution"`
            (`Convolution2D`). Defaults to `"correlation"`.
        seed: int or None. Seed of the dropout masks; with one, training is
            reproducible on every backend (on PyTorch, unseeded dropout draws from
            torch's global generator). Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> cnn = CNN(input_shape=(8, 8, 1), num_classes=3, filters=(4,), dense_units=0)
    >>> cnn.compile()
    >>> x = np.random.default_rng(0).random((30, 8, 8, 1)).astype("float32")
    >>> y = np.arange(30) % 3
    >>> history = cnn.fit(x, y, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'loss']
    >>> cnn.predict(x[:2], verbose=0).shape
    (2, 3)
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (28, 28, 1),
        num_classes: int = 10,
        filters: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        dense_units: int = 128,
        dropout: float = 0.25,
        conv: str = "correlation",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ValueError(
                f"input_shape must be (height, width, channels) of positive ints; "
                f"got {tuple(input_shape)!r}."
            )
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes!r}.")
        if not filters or min(filters) < 1:
            raise ValueError(f"filters must be one or more positive ints; got {filters!r}.")
        if int(kernel_size) < 1 or int(dense_units) < 0:
            raise ValueError(
                f"kernel_size must be >= 1 and dense_units >= 0; got {kernel_size!r} and "
                f"{dense_units!r}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        if conv not in CONVS:
            raise ValueError(f"conv must be one of {CONVS}; got {conv!r}.")
        super().__init__(**kwargs)

        # === Config ===
        self.data_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.filters = tuple(int(f) for f in filters)
        self.kernel_size = int(kernel_size)
        self.dense_units = int(dense_units)
        self.dropout = float(dropout)
        self.seed = seed
        self.conv = conv

        # === Layers ===
        conv_layer = keras.layers.Conv2D if conv == "correlation" else Convolution2D
        layers: list[keras.layers.Layer] = [keras.Input(self.data_shape)]
        height, width = self.data_shape[:2]
        for block, channels in enumerate(self.filters):
            layers.append(
                conv_layer(
                    channels,
                    self.kernel_size,
                    padding="same",
                    activation="relu",
                    name=f"conv{block}",
                )
            )
            if min(height, width) >= 2:
                layers.append(keras.layers.MaxPooling2D(2, name=f"pool{block}"))
                height, width = height // 2, width // 2
        # (batch, height, width, filters[-1]) -> (batch, height * width * filters[-1])
        layers.append(keras.layers.Flatten())
        if self.dropout:
            layers.append(keras.layers.Dropout(self.dropout, seed=_offset(seed, 0)))
        if self.dense_units:
            layers.append(keras.layers.Dense(self.dense_units, activation="relu", name="hidden"))
            if self.dropout:
                layers.append(keras.layers.Dropout(self.dropout, seed=_offset(seed, 1)))
        layers.append(keras.layers.Dense(self.num_classes, name="logits"))
        self.network = keras.Sequential(layers, name="network")
        self.built = True

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "input_shape": list(self.data_shape),
                "num_classes": self.num_classes,
                "filters": list(self.filters),
                "kernel_size": self.kernel_size,
                "dense_units": self.dense_units,
                "dropout": self.dropout,
                "conv": self.conv,
                "seed": self.seed,
            }
        )
        return config


def _offset(seed: int | None, index: int) -> int | None:
    """A distinct seed for each dropout layer (None stays None)."""
    return None if seed is None else seed + index
