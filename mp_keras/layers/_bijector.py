"""The `Bijector` base class (see mp_keras/layers/bijectors.py for the convention)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def per_example_sum(v: Any) -> Any:
    """Sum over every axis but the batch axis: `(batch, ...) -> (batch,)`."""
    return ops.sum(v, axis=tuple(range(1, len(v.shape))))


class Bijector(keras.layers.Layer):
    """Base of the bijectors: `forward(z)` and `inverse(x)` (see the module docstring).

    Subclasses implement `_forward` and `_inverse`; both go through `__call__`
    (`self(x, inverse=True)`), so Keras builds the layer on its first use either way.
    """

    _dispatching = False  # inside __call__ on PyTorch, where torch calls `forward`

    def forward(self, z: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """x = f(z) and log|det df/dz| per example."""
        if self._dispatching:
            # On PyTorch a Keras layer is a torch.nn.Module, whose __call__ runs
            # `forward`: hand the call back to Keras (see `__call__`).
            self._dispatching = False
            return super().forward(z, *args, **kwargs)
        return self(z)

    def inverse(self, x: Any, training: bool | None = None) -> tuple[Any, Any]:
        """z = f^-1(x) and log|det df^-1/dx| per example.

        `training` reaches the bijectors inside through Keras's call context (only
        `ActNorm` uses it: it initialises from the data in training); None inherits it.
        """
        if training is None:
            return self(x, inverse=True)
        return self(x, inverse=True, training=training)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Only torch.nn.Module.__call__ calls `forward` while this runs (the flag is
        # unused on TensorFlow and JAX).
        self._dispatching = True
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self._dispatching = False

    def call(
        self, inputs: Any, inverse: bool = False, training: bool | None = None
    ) -> tuple[Any, Any]:
        # `training` is in the signature so that Keras records it for nested bijectors.
        return self._inverse(inputs) if inverse else self._forward(inputs)

    def _forward(self, z: Any) -> tuple[Any, Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement _forward.")

    def _inverse(self, x: Any) -> tuple[Any, Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement _inverse.")
