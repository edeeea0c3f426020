"""Fully visible sigmoid belief network (notes, section 6.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.models.density import BinaryAutoregressive


@keras.saving.register_keras_serializable(package="mp_keras")
class FVSBN(BinaryAutoregressive):
    """Fully visible sigmoid belief network: one logistic regression per dimension.

    Frey, "Graphical Models for Machine Learning and Digital Communication", 1998. In
    the row-major order of the dimensions (notes, section 6.1),

        p(x_i = 1 | x_<i) = sigmoid(alpha_0^(i) + alpha_1^(i) x_1 + ... + alpha_(i-1)^(i) x_(i-1)),

    so dimension i has i parameters and the model (n^2 + n) / 2 in all
    (`num_free_parameters`). The weights are stored as an n x n matrix and multiplied
    through a fixed strictly upper-triangular mask (a masked matmul, the kernel itself
    is never rewritten): column i of `W * M` holds the weights of x_1 ... x_(i-1).

    Args:
        input_shape: tuple of ints. Shape of one binary example, e.g. `(28, 28, 1)`.
        seed: int or None. Seed of the sampling draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = FVSBN(input_shape=(4, 4, 1), seed=0)
    >>> model.num_free_parameters() == (16**2 + 16) // 2
    True
    >>> model.compile(optimizer="adam")
    >>> x = (np.random.default_rng(0).random((32, 4, 4, 1)) > 0.5).astype("float32")
    >>> history = model.fit(x, epochs=1, batch_size=16, verbose=0)
    >>> tuple(model.log_prob(x[:3]).shape), tuple(model.sample(2, seed=1).shape)
    ((3,), (2, 4, 4, 1))
    """

    def __init__(
        self, input_shape: Sequence[int] = (28, 28, 1), seed: int | None = None, **kwargs: Any
    ) -> None:
        kwargs.pop("num_classes", None)  # unconditional by definition
        super().__init__(input_shape=input_shape, seed=seed, **kwargs)
        n = self.num_dims

        # === Layers ===
        self.kernel = self.add_weight(shape=(n, n), initializer="zeros", name="kernel")
        self.bias = self.add_weight(shape=(n,), initializer="zeros", name="bias")
        # mask[j, i] = 1 iff j < i: the logit of x_i sees x_1 ... x_(i-1) only.
        self.mask = np.triu(np.ones((n, n), "float32"), k=1)
        self.built = True

    def conditional_logits(self, x: Any, condition: Any = None, training: bool = False) -> Any:
        self.check_inputs(x)
        flat = ops.reshape(x, (-1, self.num_dims))  # (batch, n)
        logits = ops.matmul(flat, self.kernel * self.mask) + self.bias
        return ops.reshape(logits, ops.shape(x))

    def num_free_parameters(self) -> int:
        """Weights not masked out, plus biases: (n^2 + n) / 2 (notes, section 6.1)."""
        return int(self.mask.sum()) + self.num_dims

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("num_classes")
        return config
