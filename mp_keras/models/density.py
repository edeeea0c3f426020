"""One vocabulary for every model with a likelihood (notes, chapters 5-7).

`DensityModel` is the shared interface: `log_prob(x)` (nats per example, shape
`(batch,)`), `nll(x)` and `bits_per_dim(x)` over a whole array, and `sample(num, seed)`.
`BinaryAutoregressive` is the shared base of the autoregressive models of binary data
(FVSBN, NADE, MADE, PixelRNN, PixelCNN, Gated PixelCNN): each writes only its
`conditional_logits(x)`, the logits of p(x_i = 1 | x_<i) for every i at once; the
chain-rule likelihood, the training loss, ancestral sampling, input checks and export
are here, once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import Phase, PhasedModel, compiled
from mp_keras.models._checks import (
    check_count,
    check_labels,
    check_no_targets,
    check_shape,
    check_values,
)

LN2 = math.log(2.0)


class DensityModel:
    """Mixin of the models that assign a likelihood to data.

    Subclasses define `log_prob(x, **kwargs)` in `keras.ops` (per-example log-density
    in nats) and `data_shape` (the shape of one example); this mixin adds the averages
    that tables compare. `nll` and `bits_per_dim` take whole arrays, evaluate them in
    batches and return Python floats; keyword arguments (e.g. a VAE's `num_samples`, a
    conditional model's `condition`) are passed to `log_prob`, and array-valued ones are
    batched along with `x`.
    """

    data_shape: tuple[int, ...]

    def log_prob(self, x: Any, **kwargs: Any) -> Any:
        """log p(x) per example, in nats, shape `(batch,)`."""
        raise NotImplementedError(f"{type(self).__name__} must implement log_prob(x).")

    @property
    def num_dims(self) -> int:
        """Dimensions of one example (pixels times channels): the "dim" of bits/dim."""
        return math.prod(self.data_shape)

    def nll(self, x: Any, batch_size: int = 256, **kwargs: Any) -> float:
        """Mean negative log-likelihood of `x`, in nats per example."""
        if hasattr(self, "validate_inputs"):
            self.validate_inputs(np.asarray(ops.convert_to_numpy(x)))
        return -batched_mean(self.log_prob, x, batch_size, **kwargs)

    def dims_of(self, x: Any) -> int:
        """Dimensions of each example of `x`: `num_dims`, unless a model takes examples of
        any length (WaveNet), which counts the ones given."""
        return self.num_dims

    def bits_per_dim(self, x: Any, batch_size: int = 256, **kwargs: Any) -> float:
        """`nll(x)` in bits per dimension: nll / (dims_of(x) * ln 2)."""
        return self.nll(x, batch_size, **kwargs) / (self.dims_of(x) * LN2)

    def density_metrics(self, x: Any, y: Any = None, batch_size: int = 256) -> dict[str, float]:
        """What `mp-keras evaluate` prints for a density model: `nll` and `bits_per_dim`.

        Labels `y` condition a conditional model and are ignored by the others."""
        conditional = y is not None and getattr(self, "is_conditional", False)
        kwargs = {"condition": np.asarray(y)} if conditional else {}
        nll = self.nll(x, batch_size, **kwargs)
        return {"nll": nll, "bits_per_dim": nll / (self.dims_of(x) * LN2)}


def batched_mean(fn: Any, x: Any, batch_size: int = 256, **kwargs: Any) -> float:
    """The mean over all examples of `fn(x_batch, **kwargs)` (shape `(batch,)`), as a float.

    `x` is evaluated in batches of `batch_size`; keyword arguments that are arrays with
    one entry per example are batched along with it, the others are passed as they are.

    Example:
    >>> import numpy as np
    >>> batched_mean(lambda v: ops.sum(v, axis=1), np.ones((5, 3)), batch_size=2)
    3.0
    """
    batch_size = check_count("batched_mean", "batch_size", batch_size)
    x = np.asarray(ops.convert_to_numpy(x))
    total = 0.0
    for start in range(0, len(x), batch_size):
        part = slice(start, start + batch_size)
        batch_kwargs = {
            key: value[part] if isinstance(value, np.ndarray) and len(value) == len(x) else value
            for key, value in kwargs.items()
        }
        total += float(np.sum(ops.convert_to_numpy(fn(x[part], **batch_kwargs)), dtype=np.float64))
    return total / max(len(x), 1)


def bernoulli_log_prob(x: Any, logits: Any) -> Any:
    """sum_i log Bernoulli(x_i; sigmoid(logit_i)) per example, stable for any logit."""
    x = ops.cast(x, logits.dtype)
    # log s(l) = -softplus(-l) and log(1 - s(l)) = -softplus(l), so the sum is
    # x l - softplus(l) element-wise.
    per_dim = x * logits - ops.softplus(logits)
    return ops.sum(ops.reshape(per_dim, (ops.shape(per_dim)[0], -1)), axis=-1)


class BinaryAutoregressive(DensityModel, PhasedModel):
    """Base of the autoregressive models of binary data (notes, chapter 6).

    By the chain rule, p(x) = prod_i p(x_i | x_<i) with each factor a Bernoulli whose
    logit the network computes from the previous dimensions only. Dimensions are
    numbered in the row-major order of `data_shape` (for images: rows, then columns,
    then channels, so R before G before B within a pixel); `ordering()` gives the order
    of generation and may be another permutation (MADE).

    Subclasses implement `conditional_logits(x, condition=None, training=False)`:
    logits of shape `x.shape`, entry i depending only on the dimensions before i in
    `ordering()` (the *autoregressive property*, which the tests check by gradient).

    Training maximises the exact log-likelihood (teacher forcing: the true previous
    values condition every factor); `loss` is the NLL in nats per example and
    `bits_per_dim` is logged. With `num_classes`, the model is class-conditional:
    `fit(x, labels)`, `log_prob(x, condition=labels)`, `sample(n, condition=labels)`.

    `call(x)` returns the conditional probabilities p(x_i = 1 | x_<i).

    Args:
        input_shape: tuple of ints. Shape of one example, e.g. `(28, 28, 1)` or `(784,)`.
        num_classes: int or None. Number of classes of a class-conditional model.
            Defaults to `None` (unconditional).
        seed: int or None. Seed of the model's random draws (sampling). Defaults to
            `None`.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        if num_classes is not None and int(num_classes) < 1:
            raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}.")
        super().__init__(**kwargs)
        self.data_shape = tuple(int(d) for d in input_shape)
        if not self.data_shape or min(self.data_shape) < 1:
            raise ValueError(f"input_shape must be positive sizes, got {tuple(input_shape)}.")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.track("bits_per_dim")

    @property
    def is_conditional(self) -> bool:
        """Whether the model is class-conditional (trains and samples given labels)."""
        return self.num_classes is not None

    # === Subclass interface ===

    def conditional_logits(self, x: Any, condition: Any = None, training: bool = False) -> Any:
        """Logits of p(x_i = 1 | x_<i) for every dimension i, shape `x.shape`."""
        raise NotImplementedError(f"{type(self).__name__} must implement conditional_logits.")

    def ordering(self) -> np.ndarray:
        """Flat indices of the dimensions in the order they are generated."""
        return np.arange(self.num_dims)

    # === Density ===

    def call(self, inputs: Any, condition: Any = None, training: bool = False) -> Any:
        """The conditional probabilities p(x_i = 1 | x_<i), shape `inputs.shape`."""
        return ops.sigmoid(self.conditional_logits(inputs, condition, training=training))

    def log_prob(self, x: Any, condition: Any = None, training: bool = False) -> Any:
        """Exact log p(x) = sum_i log p(x_i | x_<i), in nats, shape `(batch,)`."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        return bernoulli_log_prob(x, self.conditional_logits(x, condition, training=training))

    def sample(self, num: int, seed: int | None = None, condition: Any = None) -> Any:
        """Ancestral sampling: draws x_i ~ p(x_i | x_<i) in `ordering()`, one at a time.

        One compiled step (the whole network, then one dimension drawn) is reused for
        every dimension; the uniform numbers are drawn up front from `seed`, so the same
        seed gives the same samples. Conditional models need `condition`: `num` labels.
        """
        owner = type(self).__name__
        num = check_count(owner, "num", num)
        condition = self._sampling_condition(num, condition)
        dims = self.num_dims
        uniforms = keras.random.uniform(
            (num, dims),
            dtype=self.compute_dtype,
            seed=self.seed_generator if seed is None else seed,
        )

        def step(x: Any, u: Any, index: Any, *cond: Any) -> Any:
            images = ops.reshape(x, (num, *self.data_shape))
            logits = ops.reshape(self.conditional_logits(images, *cond), (num, dims))
            p = ops.sigmoid(ops.take(logits, index, axis=1))  # (num,)
            bit = ops.cast(ops.take(u, index, axis=1) < p, x.dtype)
            hot = ops.one_hot(index, dims, dtype=x.dtype)  # (dims,)
            return x + hot[None, :] * (bit - ops.take(x, index, axis=1))[:, None]

        run = compiled(step)
        x = ops.zeros((num, dims), dtype=self.compute_dtype)
        extra = () if condition is None else (condition,)
        for index in self.ordering():
            x = run(x, uniforms, ops.convert_to_tensor(int(index), dtype="int32"), *extra)
        return ops.reshape(x, (num, *self.data_shape))

    def _sampling_condition(self, num: int, condition: Any) -> Any:
        owner = type(self).__name__
        if self.num_classes is None:
            if condition is not None:
                raise ValueError(f"{owner} is unconditional; sample() takes no condition.")
            return None
        if condition is None:
            raise ValueError(
                f"{owner} is class-conditional ({self.num_classes} classes): pass "
                f"condition=labels, {num} class indices."
            )
        labels = np.broadcast_to(np.asarray(condition), (num,))
        check_labels(owner, labels, self.num_classes, what="condition")
        return ops.convert_to_tensor(labels.astype("int32"))

    # === Training ===

    def phases(self) -> list[Phase]:
        return [Phase("nll", self.trainable_variables, self._loss)]

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        nll = -ops.mean(self.log_prob(x, y, training=training))
        return nll, {"bits_per_dim": nll / (self.num_dims * LN2)}

    # === Checks ===

    def check_inputs(self, x: Any) -> None:
        """Shape check, valid on NumPy, eager and symbolic tensors (used in `call`)."""
        check_shape(type(self).__name__, x, self.data_shape)

    def validate_data(self, x: np.ndarray) -> None:
        owner = type(self).__name__
        self.check_inputs(x)
        check_values(owner, x)
        x = np.asarray(x)
        if not np.all((x == 0) | (x == 1)):
            odd = np.unique(x[(x != 0) & (x != 1)])[:5]
            raise ValueError(
                f"{owner} is a density model of binary data and expects values in {{0, 1}}; "
                f"got values such as {odd.tolist()}. Binarize the data first (e.g. the "
                "datasets 'digits_binarized' or 'binarized_mnist')."
            )

    def validate_targets(self, y: np.ndarray | None) -> None:
        owner = type(self).__name__
        if self.num_classes is None:
            check_no_targets(owner, y)
        elif y is None:
            raise ValueError(
                f"{owner} is class-conditional ({self.num_classes} classes) and trains on "
                "(images, labels); got no labels."
            )
        else:
            check_labels(owner, y, self.num_classes)

    def density_metrics(self, x: Any, y: Any = None, batch_size: int = 256) -> dict[str, float]:
        return super().density_metrics(x, y if self.num_classes else None, batch_size)

    # === Export ===

    def export_endpoints(self) -> dict[str, Any]:
        x_spec = keras.InputSpec(shape=(None, *self.data_shape), dtype="float32")
        if self.num_classes is None:
            return {
                "log_prob": (lambda x: self.log_prob(x), [x_spec]),
                "conditionals": (lambda x: self.call(x), [x_spec]),
            }
        y_spec = keras.InputSpec(shape=(None,), dtype="int32")
        return {
            "log_prob": (lambda x, y: self.log_prob(x, y), [x_spec, y_spec]),
            "conditionals": (lambda x, y: self.call(x, y), [x_spec, y_spec]),
        }

    def export_samples(self, name: str, num: int, seed: int) -> list[np.ndarray]:
        """Binary images (and labels) for the export's parity check."""
        rng = np.random.default_rng(seed)
        x = (rng.random((num, *self.data_shape)) < 0.5).astype("float32")
        if self.num_classes is None:
            return [x]
        return [x, rng.integers(0, self.num_classes, num).astype("int32")]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "input_shape": list(self.data_shape),
                "num_classes": self.num_classes,
                "seed": self.seed,
            }
        )
        return config
