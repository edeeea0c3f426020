"""An MLP trained by gradient descent written out as a rule (notes, section 1.3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import Phase, PhasedModel
from mp_keras.models._checks import check_labels, check_shape, check_values
from mp_keras.tools.backprop import (
    ACTIVATIONS,
    backprop,
    forward,
    loss_and_output_gradient,
)


@keras.saving.register_keras_serializable(package="mp_keras")
class GradientDescentMLP(PhasedModel):
    """MLP classifier whose training step is theta <- theta - eta * grad L, by hand.

    The same network as `MLP` (flatten, hidden `Dense` layers with activation h, a final
    affine layer of logits), trained on the mean softmax cross-entropy of integer labels
    by plain gradient descent (notes, section 1.3),

        theta <- theta - eta * grad_theta L(y_hat, y),

    where the gradient comes from `mp_keras.tools.backprop.backprop`: the chain rule
    written out layer by layer, not automatic differentiation. The step runs as the
    engine's *rule phase* (like `Perceptron`): no optimizer, the engine assigns the new
    weights. It is the same step as `keras.optimizers.SGD(learning_rate=eta)` (no
    momentum) on the same loss, which the tests check trajectory by trajectory.

    Logged: `loss` (the cross-entropy, with the weights the batch started with) and
    `accuracy`.

    Args:
        input_shape: tuple of ints. Shape of one example. Defaults to `(8, 8, 1)`.
        num_classes: int. Number of classes. Defaults to `10`.
        hidden_units: tuple of ints. Widths of the hidden layers. Defaults to `(64,)`.
        activation: str. Hidden non-linearity h: `"relu"`, `"sigmoid"`, `"tanh"` or
            `"linear"`. Defaults to `"relu"`.
        learning_rate: float. Step size eta. Defaults to `0.1`.
        seed: int or None. Seed of the Glorot-uniform initial kernels. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int32")
    >>> model = GradientDescentMLP(input_shape=(4,), num_classes=2, hidden_units=(8,), seed=0)
    >>> model.compile()  # no optimizer: the rule is the update
    >>> history = model.fit(x, y, epochs=20, batch_size=30, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'loss']
    >>> bool(history.history["loss"][-1] < history.history["loss"][0])
    True
    >>> model.predict(x[:2], verbose=0).shape
    (2, 2)
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (8, 8, 1),
        num_classes: int = 10,
        hidden_units: Sequence[int] = (64,),
        activation: str = "relu",
        learning_rate: float = 0.1,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes!r}.")
        if activation not in (*ACTIVATIONS, "linear"):
            raise ValueError(
                f"activation must be one of 'relu', 'sigmoid', 'tanh', 'linear' (backprop "
                f"writes out their derivatives); got {activation!r}."
            )
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}.")
        if any(int(u) < 1 for u in hidden_units):
            raise ValueError(f"hidden_units must be positive ints, got {hidden_units!r}.")
        super().__init__(**kwargs)

        # === Config ===
        self.data_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.learning_rate = float(learning_rate)
        self.seed = seed

        # === Layers ===
        keras_activation = "linear" if activation == "identity" else activation
        layers: list[keras.layers.Layer] = [keras.Input(self.data_shape), keras.layers.Flatten()]
        for index, units in enumerate((*self.hidden_units, self.num_classes)):
            last = index == len(self.hidden_units)
            layers.append(
                keras.layers.Dense(
                    units,
                    activation="linear" if last else keras_activation,
                    kernel_initializer=keras.initializers.GlorotUniform(
                        seed=None if seed is None else seed + index
                    ),
                    name="logits" if last else f"hidden_{index}",
                )
            )
        self.network = keras.Sequential(layers, name="network")
        self.dense_layers = [
            layer for layer in self.network.layers if isinstance(layer, keras.layers.Dense)
        ]
        self.track("accuracy")
        self.built = True

    # === Forward ===

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Logits, shape `(batch, num_classes)`."""
        check_shape(type(self).__name__, inputs, self.data_shape)
        return self.network(inputs, training=training)

    # === Training ===

    def phases(self) -> list[Phase]:
        return [
            Phase("gradient_descent", self._kernels_and_biases(), self._loss, update=self._step)
        ]

    def _kernels_and_biases(self) -> list[Any]:
        """[W_1, b_1, ..., W_L, b_L], the order of the rule's new values."""
        return [v for layer in self.dense_layers for v in (layer.kernel, layer.bias)]

    def _backprop_arguments(self, x: Any) -> tuple[list[Any], list[Any], list[str], Any]:
        check_shape(type(self).__name__, x, self.data_shape)
        flat = ops.reshape(ops.cast(x, self.compute_dtype), (-1, int(np.prod(self.data_shape))))
        kernels = [layer.kernel for layer in self.dense_layers]
        biases = [layer.bias for layer in self.dense_layers]
        return kernels, biases, [self.activation] * len(self.hidden_units), flat

    def _step(self, x: Any, y: Any) -> list[Any]:
        """theta - eta * dL/dtheta for every kernel and bias, the gradient by backprop."""
        kernels, biases, names, flat = self._backprop_arguments(x)
        _, grad_kernels, grad_biases = backprop(kernels, biases, names, flat, self._labels(y))
        new_values = []
        for w, b, grad_w, grad_b in zip(kernels, biases, grad_kernels, grad_biases):
            new_values += [w - self.learning_rate * grad_w, b - self.learning_rate * grad_b]
        return new_values

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        labels = self._labels(y)
        kernels, biases, names, flat = self._backprop_arguments(x)
        _, activations = forward(kernels, biases, names, flat)
        logits = activations[-1]  # (batch, num_classes)
        loss, _ = loss_and_output_gradient(logits, labels)
        hits = ops.equal(ops.argmax(logits, axis=-1), labels)
        return loss, {"accuracy": ops.mean(ops.cast(hits, loss.dtype))}

    def _labels(self, y: Any) -> Any:
        if y is None:
            raise ValueError(f"{type(self).__name__} is trained on labelled data: fit(x, y).")
        return ops.reshape(ops.cast(y, "int32"), (-1,))  # (batch,)

    # === Input checks ===

    def validate_data(self, x: np.ndarray) -> None:
        check_shape(type(self).__name__, x, self.data_shape)
        check_values(type(self).__name__, x)

    def validate_targets(self, y: np.ndarray | None) -> None:
        if y is None:
            raise ValueError(f"{type(self).__name__} is trained on labelled data: fit(x, y).")
        check_labels(type(self).__name__, y, self.num_classes)

    # === Export and config ===

    def export_endpoints(self) -> dict[str, Any]:
        spec = keras.InputSpec(shape=(None, *self.data_shape), dtype="float32")
        return {"logits": (self.call, [spec])}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "input_shape": list(self.data_shape),
                "num_classes": self.num_classes,
                "hidden_units": list(self.hidden_units),
                "activation": self.activation,
                "learning_rate": self.learning_rate,
                "seed": self.seed,
            }
        )
        return config
