"""Recurrent sequence taggers and classifiers (notes, chapter 4): many-to-many, many-to-one.

Inputs are token ids stored as floats (`(batch, time)`, the datasets' convention), turned
into one-hot vectors x(t) inside the model. The encoder-decoder shapes (one-to-many and
many-to-many of different lengths) live in `mp_keras.models.seq2seq`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.layers.recurrent import CELLS, recurrent_cell
from mp_keras.models._checks import check_shape, check_values
from mp_keras.models._classifier import Classifier


def check_tokens(owner: str, x: np.ndarray, length: int, num_tokens: int) -> None:
    """Raises `ValueError` unless `x` is `(batch, length)` integer token ids below `num_tokens`."""
    check_shape(owner, x, (length,), what="token ids")
    check_values(owner, x)
    x = np.asarray(x)
    bad = (x != np.round(x)) | (x < 0) | (x >= num_tokens)
    if np.any(bad):
        raise ValueError(
            f"{owner} expects token ids: integers in [0, {num_tokens}); got values such as "
            f"{np.unique(x[bad])[:5].tolist()}."
        )


def one_hot_tokens(tokens: Any, num_tokens: int) -> Any:
    """One-hot vectors `(..., num_tokens)` of token ids given as floats or ints."""
    return ops.one_hot(ops.cast(tokens, "int32"), num_tokens)


def _exact_match(y_true: Any, y_pred: Any) -> Any:
    predicted = ops.argmax(y_pred, axis=-1)
    same = ops.equal(ops.cast(y_true, "int32"), ops.cast(predicted, "int32"))
    return ops.cast(ops.all(same, axis=-1), "float32")


@keras.saving.register_keras_serializable(package="mp_keras")
class SequenceAccuracy(keras.metrics.MeanMetricWrapper):
    """Fraction of sequences whose every predicted token (argmax) equals the target.

    Args:
        name: str. Metric name. Defaults to `"sequence_accuracy"`.
        dtype: str or None. Dtype of the result. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> metric = SequenceAccuracy()
    >>> logits = np.eye(3, dtype="float32")[[[0, 1], [2, 2]]]  # predicts [0, 1], [2, 2]
    >>> metric.update_state(np.array([[0, 1], [2, 0]]), logits)
    >>> float(metric.result())
    0.5
    """

    def __init__(self, name: str = "sequence_accuracy", dtype: Any = None) -> None:
        super().__init__(fn=_exact_match, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class _SequenceModel(Classifier):
    """Shared by the sequence models: cell choice, token checks, classification compile."""

    def __init__(
        self,
        num_tokens: int,
        num_classes: int,
        cell: str,
        units: int,
        unroll: bool,
        **kwargs: Any,
    ) -> None:
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}.")
        if int(num_tokens) < 1 or int(num_classes) < 2 or int(units) < 1:
            raise ValueError(
                "num_tokens and units must be >= 1 and num_classes >= 2; got "
                f"num_tokens={num_tokens!r}, num_classes={num_classes!r}, units={units!r}."
            )
        super().__init__(**kwargs)
        self.num_tokens = int(num_tokens)
        self.num_classes = int(num_classes)
        self.cell = cell
        self.units = int(units)
        self.unroll = bool(unroll)

    def _input_length(self) -> int:
        raise NotImplementedError

    def _check(self, x: Any) -> None:
        check_shape(type(self).__name__, x, (self._input_length(),), what="token ids")

    def validate_data(self, x: np.ndarray) -> None:
        check_tokens(type(self).__name__, x, self._input_length(), self.num_tokens)

    def export_samples(self, name: str, num: int, seed: int) -> np.ndarray:
        """Valid token ids for the export's parity check (random normals are not tokens)."""
        rng = np.random.default_rng(seed)
        return rng.integers(0, self.num_tokens, size=(num, self._input_length())).astype("float32")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_tokens": self.num_tokens,
                "num_classes": self.num_classes,
                "cell": self.cell,
                "units": self.units,
                "unroll": self.unroll,
            }
        )
        return config


class _RecurrentReadout(_SequenceModel):
    """An RNN over one-hot tokens and a `Dense` read-out of every state or of the last."""

    def __init__(
        self,
        sequence_length: int,
        num_tokens: int,
        num_classes: int,
        cell: str,
        units: int,
        unroll: bool,
        return_sequences: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_tokens, num_classes, cell, units, unroll, **kwargs)
        self.sequence_length = int(sequence_length)
        self.label_shape = (self.sequence_length,) if return_sequences else ()

        # === Layers ===
        inputs = keras.Input((self.sequence_length, self.num_tokens))  # one-hot x(t)
        rnn = keras.layers.RNN(
            recurrent_cell(cell, self.units),
            return_sequences=return_sequences,
            unroll=self.unroll,
            name="rnn",
        )
        states = rnn(inputs)  # (batch, time, units) or h(T): (batch, units)
        logits = keras.layers.Dense(self.num_classes, name="logits")(states)
        self.network = keras.Model(inputs, logits, name="network")
        self.built = True

    def _input_length(self) -> int:
        return self.sequence_length

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Logits: `(batch, time, num_classes)` per step, or `(batch, num_classes)`."""
        self._check(inputs)
        return self.network(one_hot_tokens(inputs, self.num_tokens), training=training)

    def export_endpoints(self) -> dict[str, Any]:
        spec = keras.InputSpec(shape=(None, self.sequence_length), dtype="float32")
        return {"logits": (self.call, [spec])}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "sequence_length": self.sequence_length}


@keras.saving.register_keras_serializable(package="mp_keras")
class SequenceTagger(_RecurrentReadout):
    """Recurrent tagger: one label per time step (many-to-many, equal lengths).

    Notes, chapter 4 (the shapes of recurrent networks): h(t) = cell(h(t-1), x(t)) with x(t)
    the one-hot token, and logits y(t) = W_y h(t) + b_y at every step, so the label of step
    t can depend on the whole prefix x(1) .. x(t). Trained with Keras' own trainer;
    `compile()` defaults to Adam, sparse categorical cross-entropy on the per-step logits
    and per-step accuracy.

    Args:
        sequence_length: int. Number of time steps T.
        num_tokens: int. Size of the input vocabulary (token ids 0 .. num_tokens - 1).
        num_classes: int. Number of labels per step.
        cell: str. `"lstm"` (`LSTMCell`) or `"elman"` (`ElmanCell`). Defaults to `"lstm"`.
        units: int. Size of the hidden state. Defaults to `32`.
        unroll: bool. Unroll the recurrence into T copies of the step (fast for short
            sequences, and the exported TFLite model then needs only builtin ops); set
            False for long sequences (a loop; TFLite then needs Select TF ops).
            Defaults to `True`.

    Example:
    >>> import numpy as np
    >>> tagger = SequenceTagger(sequence_length=5, num_tokens=10, num_classes=2, units=8)
    >>> tagger.compile()
    >>> x = np.random.default_rng(0).integers(0, 10, size=(16, 5)).astype("float32")
    >>> history = tagger.fit(x, (np.cumsum(x, axis=1) % 2).astype("int32"), verbose=0)
    >>> sorted(history.history), tuple(tagger.predict(x[:3], verbose=0).shape)
    (['accuracy', 'loss'], (3, 5, 2))
    """

    def __init__(
        self,
        sequence_length: int,
        num_tokens: int,
        num_classes: int,
        cell: str = "lstm",
        units: int = 32,
        unroll: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            sequence_length, num_tokens, num_classes, cell, units, unroll, True, **kwargs
        )


@keras.saving.register_keras_serializable(package="mp_keras")
class SequenceClassifier(_RecurrentReadout):
    """Recurrent sequence classifier: the last hidden state gives one label (many-to-one).

    Notes, chapter 4 (the shapes of recurrent networks): the cell runs over the whole
    sequence, h(t) = cell(h(t-1), x(t)), and only the final state h(T) is read out,
    y = W_y h(T) + b_y. Trained with Keras' own trainer; `compile()` defaults to Adam,
    sparse categorical cross-entropy on logits and accuracy.

    Args:
        sequence_length: int. Number of time steps T.
        num_tokens: int. Size of the input vocabulary (token ids 0 .. num_tokens - 1).
        num_classes: int. Number of classes.
        cell: str. `"lstm"` (`LSTMCell`) or `"elman"` (`ElmanCell`). Defaults to `"lstm"`.
        units: int. Size of the hidden state. Defaults to `32`.
        unroll: bool. Unroll the recurrence into T copies of the step (fast for short
            sequences, and the exported TFLite model then needs only builtin ops); set
            False for long sequences (a loop; TFLite then needs Select TF ops).
            Defaults to `True`.

    Example:
    >>> import numpy as np
    >>> model = SequenceClassifier(sequence_length=7, num_tokens=4, num_classes=4, units=8)
    >>> model.compile()
    >>> x = np.random.default_rng(0).integers(0, 4, size=(16, 7)).astype("float32")
    >>> history = model.fit(x, (x[:, -1]).astype("int32"), verbose=0)
    >>> sorted(history.history), tuple(model.predict(x[:3], verbose=0).shape)
    (['accuracy', 'loss'], (3, 4))
    """

    def __init__(
        self,
        sequence_length: int,
        num_tokens: int,
        num_classes: int,
        cell: str = "lstm",
        units: int = 32,
        unroll: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            sequence_length, num_tokens, num_classes, cell, units, unroll, False, **kwargs
        )
