"""Multilayer perceptron classifier (notes, section 1.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from mp_keras.models._classifier import Classifier


@keras.saving.register_keras_serializable(package="mp_keras")
class MLP(Classifier):
    """Multilayer perceptron classifier: affine maps and non-linearities, then logits.

    z^(l) = W^(l) a^(l-1) + b^(l), a^(l) = h(z^(l)) for each hidden layer, and a final
    affine layer giving one logit per class; softmax of the logits is p(y|x), so the
    cross-entropy loss is the categorical negative log-likelihood. Inputs of any shape
    are flattened first. Trained with Keras' own trainer: `compile()` defaults to Adam,
    sparse categorical cross-entropy on logits and accuracy.

    Args:
        input_shape: tuple of ints. Shape of one example. Defaults to `(8, 8, 1)`.
        num_classes: int. Number of classes. Defaults to `10`.
        hidden_units: tuple of ints. Widths of the hidden layers. Defaults to `(64,)`.
        activation: str. Hidden non-linearity h. Defaults to `"relu"`.
        dropout: float. Dropout rate after each hidden layer. Defaults to `0.0`.
        seed: int or None. Seed of the dropout masks (see `CNN`). Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> mlp = MLP(input_shape=(4,), num_classes=3, hidden_units=(8,))
    >>> mlp.compile()
    >>> x = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    >>> y = np.arange(30) % 3
    >>> history = mlp.fit(x, y, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'loss']
    >>> mlp.predict(x[:2], verbose=0).shape
    (2, 3)
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (8, 8, 1),
        num_classes: int = 10,
        hidden_units: Sequence[int] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        super().__init__(**kwargs)

        # === Config ===
        self.data_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.dropout = float(dropout)
        self.seed = seed

        # === Layers ===
        layers: list[keras.layers.Layer] = [keras.Input(self.data_shape), keras.layers.Flatten()]
        for index, units in enumerate(self.hidden_units):
            layers.append(keras.layers.Dense(units, activation=activation))
            if self.dropout:
                layer_seed = None if seed is None else seed + index
                layers.append(keras.layers.Dropout(self.dropout, seed=layer_seed))
        layers.append(keras.layers.Dense(self.num_classes, name="logits"))
        self.network = keras.Sequential(layers, name="network")
        self.built = True

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "input_shape": list(self.data_shape),
                "num_classes": self.num_classes,
                "hidden_units": list(self.hidden_units),
                "activation": self.activation,
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config
