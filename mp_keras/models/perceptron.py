"""Rosenblatt's perceptron and its learning rule (notes, section 1.1)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import Phase, PhasedModel
from mp_keras.models._checks import check_labels, check_shape, check_values


@keras.saving.register_keras_serializable(package="mp_keras")
class Perceptron(PhasedModel):
    """Perceptron: a threshold unit trained by the perceptron learning rule, not by gradients.

    Rosenblatt, "The perceptron", Psychological Review 65(6), 1958. The unit predicts

        y_hat = 1{w^T x + b > 0}   (labels y in {0, 1}),

    and learns by the perceptron rule, with the bias as the weight of a constant input
    x_0 = 1:

        w <- w + eta * (y - y_hat) * x,   b <- b + eta * (y - y_hat).

    The rule changes the weights only on mistakes (y - y_hat is +1 or -1 there, 0
    elsewhere). It runs as the engine's *rule phase*: no optimizer, no gradient. With a
    batch of n examples the update is the sum of the n per-example terms, all computed
    with the weights the batch started with; `batch_size=1` is exactly the online rule
    of the notes. Starting from w = 0, b = 0 (as here), eta only scales the weights and
    never changes a prediction.

    On linearly separable data the online rule stops making mistakes after at most
    (R / gamma)^2 updates (Novikoff's theorem; R bounds ||(x, 1)||, gamma is the margin
    of the best unit-norm (w, b)). On data that no line separates, such as XOR, it
    never stops.

    Logged per epoch, with the weights each batch saw before its update: `error_rate`
    (fraction of mistakes; times the number of examples it is the number of updates
    when `batch_size=1`), `accuracy` (1 - error_rate), and `loss`, the perceptron
    criterion mean_i max(0, -t_i (w^T x_i + b)) with t = 2y - 1: zero when no example
    lies on the wrong side, and away from ties (w^T x + b = 0) the rule is gradient descent
    on its sum with step eta.

    Args:
        num_features: int. Size of an input vector x. Defaults to `2`.
        learning_rate: float. Step size eta of the rule. Defaults to `1.0`.

    Example:
    >>> import numpy as np
    >>> x = np.array([[2.0, 1.0], [-1.0, -2.0], [1.5, 2.0], [-2.0, -0.5]], "float32")
    >>> y = np.array([1, 0, 1, 0])
    >>> perceptron = Perceptron(num_features=2)
    >>> perceptron.compile()
    >>> history = perceptron.fit(x, y, epochs=3, batch_size=1, shuffle=False, verbose=0)
    >>> [round(e, 2) for e in history.history["error_rate"]]
    [0.25, 0.0, 0.0]
    >>> perceptron.predict(x, verbose=0).tolist()
    [1.0, 0.0, 1.0, 0.0]
    """

    def __init__(self, num_features: int = 2, learning_rate: float = 1.0, **kwargs: Any) -> None:
        if int(num_features) < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}.")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}.")
        super().__init__(**kwargs)

        # === Config ===
        self.num_features = int(num_features)
        self.learning_rate = float(learning_rate)

        # === Weights ===
        # Zeros, as in the convergence theorem; the rule needs no symmetry breaking.
        self.w = self.add_weight(shape=(self.num_features,), initializer="zeros", name="w")
        self.b = self.add_weight(shape=(), initializer="zeros", name="b")
        self.track("error_rate", "accuracy")
        self.built = True

    # === Forward ===

    def score(self, inputs: Any) -> Any:
        """The activation w^T x + b, shape `(batch,)`."""
        check_shape(type(self).__name__, inputs, (self.num_features,))
        inputs = ops.cast(inputs, self.w.dtype)
        return ops.matmul(inputs, self.w) + self.b  # (batch,)

    def call(self, inputs: Any) -> Any:
        """Predictions y_hat = 1{w^T x + b > 0} as 0.0/1.0, shape `(batch,)`."""
        return ops.cast(self.score(inputs) > 0, self.w.dtype)

    # === Training ===

    def phases(self) -> list[Phase]:
        return [Phase("perceptron_rule", [self.w, self.b], self._criterion, update=self._rule)]

    def _rule(self, x: Any, y: Any) -> list[Any]:
        """w + eta * sum_i (y_i - y_hat_i) x_i and b + eta * sum_i (y_i - y_hat_i)."""
        x = ops.cast(x, self.w.dtype)
        residual = self._labels(y) - self.call(x)  # (batch,), each -1, 0 or +1
        new_w = self.w + self.learning_rate * ops.matmul(residual, x)
        new_b = self.b + self.learning_rate * ops.sum(residual)
        return [new_w, new_b]

    def _criterion(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        y = self._labels(y)
        score = self.score(x)
        criterion = ops.mean(ops.relu(-(2.0 * y - 1.0) * score))
        error_rate = ops.mean(ops.cast(ops.not_equal(ops.cast(score > 0, y.dtype), y), y.dtype))
        return criterion, {"error_rate": error_rate, "accuracy": 1.0 - error_rate}

    def _labels(self, y: Any) -> Any:
        if y is None:
            raise ValueError("Perceptron is trained on labelled data: fit(x, y), y in {0, 1}.")
        return ops.reshape(ops.cast(y, self.w.dtype), (-1,))  # (batch,)

    # === Input checks ===

    def validate_data(self, x: np.ndarray) -> None:
        check_shape(type(self).__name__, x, (self.num_features,))
        check_values(type(self).__name__, x)

    def validate_targets(self, y: np.ndarray | None) -> None:
        if y is None:
            raise ValueError("Perceptron is trained on labelled data: fit(x, y), y in {0, 1}.")
        check_labels(type(self).__name__, y, 2)

    # === Export and config ===

    def export_endpoints(self) -> dict[str, Any]:
        spec = keras.InputSpec(shape=(None, self.num_features), dtype="float32")
        return {"score": (self.score, [spec]), "predict": (self.call, [spec])}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"num_features": self.num_features, "learning_rate": self.learning_rate})
        return config
