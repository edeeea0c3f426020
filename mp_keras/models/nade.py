"""Neural autoregressive density estimator (notes, section 6.2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from mp_keras.models._checks import check_count
from mp_keras.models.density import BinaryAutoregressive

# Dimensions per block of the blocked recursion in `conditional_logits`.
BLOCK_SIZE = 16


@keras.saving.register_keras_serializable(package="mp_keras")
class NADE(BinaryAutoregressive):
    """Neural autoregressive density estimator: one hidden layer shared by every step.

    Larochelle & Murray, "The Neural Autoregressive Distribution Estimator", AISTATS
    2011 (notes, section 6.2). With W `(hidden, n)`, b `(hidden,)`, V `(n, hidden)` and
    c `(n,)` shared by all dimensions,

        h_i = sigmoid(W[:, <i] x_<i + b),    p(x_i = 1 | x_<i) = sigmoid(V[i] . h_i + c_i).

    The pre-activations obey a_1 = 0, a_(i+1) = a_i + W[:, i] x_i, so all n hidden
    states cost O(n d) rather than O(n^2 d). `conditional_logits` sums this recursion
    in blocks of `BLOCK_SIZE` dimensions: a cumulative sum over the blocks and, inside
    each block, a small triangular matrix product, O(n d BLOCK_SIZE) multiply-adds done
    by matrix multiplication, which halves a training step against an elementwise
    cumulative sum over all n (`naive_conditional_logits` applies the definition, one i
    at a time, for comparison). The model has 2 n d + n + d parameters.

    Args:
        input_shape: tuple of ints. Shape of one binary example, e.g. `(28, 28, 1)`.
        hidden_units: int. Size d of the hidden layer. Defaults to `500`, as in the paper.
        activation: str. Activation of the hidden layer. Defaults to `"sigmoid"`.
        seed: int or None. Seed of the initial weights and of the sampling draws.
            Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = NADE(input_shape=(4, 4, 1), hidden_units=8, seed=0)
    >>> model.count_params() == 2 * 16 * 8 + 16 + 8
    True
    >>> model.compile(optimizer="adam")
    >>> x = (np.random.default_rng(0).random((32, 4, 4, 1)) > 0.5).astype("float32")
    >>> history = model.fit(x, epochs=1, batch_size=16, verbose=0)
    >>> tuple(model.log_prob(x[:3]).shape), tuple(model.sample(2, seed=1).shape)
    ((3,), (2, 4, 4, 1))
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (28, 28, 1),
        hidden_units: int = 500,
        activation: str = "sigmoid",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("num_classes", None)  # unconditional
        super().__init__(input_shape=input_shape, seed=seed, **kwargs)
        self.hidden_units = check_count(type(self).__name__, "hidden_units", hidden_units)
        self.activation = activation
        self.hidden_activation = keras.activations.get(activation)
        n, d = self.num_dims, self.hidden_units

        # === Layers ===
        def init(index: int) -> keras.initializers.Initializer:
            return keras.initializers.GlorotUniform(None if seed is None else seed + index)

        self.W = self.add_weight(shape=(d, n), initializer=init(0), name="W")
        self.b = self.add_weight(shape=(d,), initializer="zeros", name="b")
        self.V = self.add_weight(shape=(n, d), initializer=init(1), name="V")
        self.c = self.add_weight(shape=(n,), initializer="zeros", name="c")
        self.built = True

    def conditional_logits(self, x: Any, condition: Any = None, training: bool = False) -> Any:
        self.check_inputs(x)
        n, d = self.num_dims, self.hidden_units
        k = min(BLOCK_SIZE, n)
        r = -(-n // k)  # blocks of k dimensions; the last is padded with zeros
        flat = ops.pad(ops.reshape(x, (-1, n)), [[0, 0], [0, r * k - n]])
        xb = ops.reshape(flat, (-1, r, k))  # (batch, r, k)
        wb = ops.reshape(ops.pad(ops.transpose(self.W), [[0, r * k - n], [0, 0]]), (r, k, d))
        # a_i = sum_(j < i) x_j W[:, j], the recursion summed in blocks: the sums of the
        # earlier blocks (an exclusive cumulative sum over blocks) plus the earlier
        # dimensions of i's own block (a strictly lower-triangular k x k mask).
        block_sums = ops.einsum("brk,rkd->brd", xb, wb)  # (batch, r, d)
        before = ops.cumsum(ops.pad(block_sums[:, :-1], [[0, 0], [1, 0], [0, 0]]), axis=1)
        earlier = ops.tril(ops.ones((k, k), xb.dtype), -1)  # earlier[i, j] = 1 if j < i
        within = ops.einsum("brij,rjd->brid", xb[:, :, None, :] * earlier, wb)
        h = self.hidden_activation(within + (before + self.b)[:, :, None, :])  # (batch, r, k, d)
        vb = ops.reshape(ops.pad(self.V, [[0, r * k - n], [0, 0]]), (r, k, d))
        logits = ops.reshape(ops.sum(h * vb, axis=-1), (-1, r * k))[:, :n] + self.c
        return ops.reshape(logits, ops.shape(x))

    def naive_conditional_logits(self, x: Any) -> Any:
        """The same logits by the definition: each h_i from x_<i afresh, O(n^2 d)."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        self.check_inputs(x)
        flat = ops.reshape(x, (-1, self.num_dims))
        logits = []
        for i in range(self.num_dims):
            if i == 0:
                pre = ops.zeros((ops.shape(flat)[0], self.hidden_units), flat.dtype)
            else:
                pre = ops.matmul(flat[:, :i], ops.transpose(self.W[:, :i]))  # (batch, d)
            h = self.hidden_activation(pre + self.b)
            logits.append(ops.sum(h * self.V[i], axis=-1) + self.c[i])
        return ops.reshape(ops.stack(logits, axis=1), ops.shape(x))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("num_classes")
        config.update({"hidden_units": self.hidden_units, "activation": self.activation})
        return config
