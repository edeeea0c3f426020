"""Shared base of the models that Keras' own trainer fits with a cross-entropy on logits."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from mp_keras.engine import BaseModel
from mp_keras.models._checks import check_labels, check_shape, check_values


class Classifier(BaseModel):
    """Logits from `self.network`, trained by `keras.Model.fit` on integer labels.

    `compile()` defaults to Adam, sparse categorical cross-entropy on logits (the
    categorical negative log-likelihood of softmax(logits)) and `default_metrics()`.
    Subclasses build `self.network`, mapping `(batch, *self.data_shape)` to logits, and
    may override `call`, `validate_data` and `export_endpoints` when their inputs differ.
    Targets are integer class indices in `[0, num_classes)` of shape
    `(batch, *label_shape)` (`label_shape` is `()` for one label per example).
    """

    label_shape: tuple[int, ...] = ()
    label_name = "labels"

    def default_metrics(self) -> list[Any]:
        return ["accuracy"]

    def compile(
        self,
        optimizer: Any = "adam",
        loss: Any = None,
        metrics: Any = None,
        **kwargs: Any,
    ) -> None:
        """`keras.Model.compile` with classification defaults for `loss` and `metrics`."""
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics is None:
            metrics = self.default_metrics()
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Logits."""
        check_shape(type(self).__name__, inputs, self.data_shape)
        return self.network(inputs, training=training)

    def validate_data(self, x: np.ndarray) -> None:
        check_shape(type(self).__name__, x, self.data_shape)
        check_values(type(self).__name__, x)

    def validate_targets(self, y: np.ndarray | None) -> None:
        owner = type(self).__name__
        if y is None:
            raise ValueError(f"{owner} is trained on labelled data: pass targets y to fit.")
        check_labels(owner, y, self.num_classes, self.label_shape, self.label_name)

    def export_endpoints(self) -> dict[str, Any]:
        spec = keras.InputSpec(shape=(None, *self.data_shape), dtype="float32")
        return {"logits": (self.call, [spec])}
