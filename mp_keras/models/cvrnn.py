"""Conditional VRNN: the VRNN told which class to draw (notes, 6.6)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.models._checks import check_count, check_labels
from mp_keras.models.vrnn import VRNN


@keras.saving.register_keras_serializable(package="mp_keras")
class CVRNN(VRNN):
    """Conditional VRNN: a VRNN told which class to draw (notes, 6.6).

    Notes, 6.6 (the C-VRNN; Aksan et al. 2018 use it for handwriting styles): a label y,
    here the digit to draw, is embedded as e(y) and read by the prior, the encoder, the
    decoder and the recurrence (see `mp_keras.layers.VRNNCell`). Training is the VRNN's
    on (sequences, labels): `fit(x, labels)`, `log_prob(x, condition=labels)`. Sampling
    follows the notes: x_t is generated from the prior's z_t, then the posterior of z_t
    given that x_t (its mean) updates h_t, as in training, where h_t reads the posterior
    draw (`recurrence_latent="posterior"`; `"prior"` feeds the prior draw instead).

    `call` takes `(x, condition=labels)`, or one array `(batch, T, features + 1)` whose
    last column holds the label (read at the first step), the single-tensor form of
    Keras' functional API and `predict`.

    Args:
        sequence_length: int. Steps T of a training sequence.
        features: int. Features of one step x_t.
        num_classes: int. Number of classes of the label.
        embedding_dim: int. Size of the label embedding e(y). Defaults to `16`.
        recurrence_latent: str. `"posterior"` or `"prior"` (see above). Defaults to
            `"posterior"`.
        **kwargs: the other arguments of `VRNN` (`latent_dim`, `units`, `hidden_units`,
            `cell`, `likelihood`, `min_std`, `seed`).

    Example:
    >>> model = CVRNN(sequence_length=4, features=2, num_classes=3, latent_dim=2, units=8,
    ...               hidden_units=(8,), seed=0)  # train: compile(), then fit(x, labels)
    >>> tuple(model.sample(3, seed=1, condition=[0, 1, 2]).shape)  # one of each class
    (3, 4, 2)
    """

    def __init__(
        self,
        sequence_length: int,
        features: int,
        num_classes: int,
        embedding_dim: int = 16,
        recurrence_latent: str = "posterior",
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        num_classes = check_count(owner, "num_classes", num_classes)
        embedding_dim = check_count(owner, "embedding_dim", embedding_dim)
        super().__init__(
            sequence_length,
            features,
            recurrence_latent=recurrence_latent,
            _labels=(num_classes, embedding_dim),
            **kwargs,
        )
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim

    @property
    def is_conditional(self) -> bool:
        """Always True: trains and samples given labels."""
        return True

    def _split_inputs(self, inputs: Any, condition: Any) -> tuple[Any, Any]:
        owner = type(self).__name__
        if condition is None:
            shape = tuple(getattr(inputs, "shape", np.shape(inputs)))
            if len(shape) != 3 or shape[-1] != self.features + 1:
                raise ValueError(
                    f"{owner} is class-conditional ({self.num_classes} classes): pass "
                    f"condition=labels, or sequences of shape (batch, {self.sequence_length}, "
                    f"{self.features + 1}) whose last column is the label; got shape {shape}."
                )
            inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
            inputs, condition = inputs[..., : self.features], inputs[:, 0, self.features]
        self._check(inputs)
        labels = ops.reshape(ops.cast(condition, "int32"), (-1,))
        return ops.convert_to_tensor(inputs, dtype=self.compute_dtype), labels

    def _sampling_labels(self, num: int, condition: Any) -> Any:
        if condition is None:
            raise ValueError(
                f"{type(self).__name__} is class-conditional ({self.num_classes} classes): "
                f"pass condition=labels, {num} class indices."
            )
        labels = np.broadcast_to(np.asarray(condition), (num,))
        check_labels(type(self).__name__, labels, self.num_classes, what="condition")
        return ops.convert_to_tensor(labels.astype("int32"))

    def validate_inputs(self, x: np.ndarray) -> None:
        x = np.asarray(x)
        if x.ndim == 3 and x.shape[-1] == self.features + 1:  # the label is the last column
            check_labels(type(self).__name__, x[:, 0, -1], self.num_classes)
            x = x[..., :-1]
        self.validate_data(x)

    def validate_targets(self, y: np.ndarray | None) -> None:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} is class-conditional ({self.num_classes} classes) and "
                "trains on (sequences, labels); got no labels."
            )
        check_labels(type(self).__name__, y, self.num_classes)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "embedding_dim": self.embedding_dim})
        return config
