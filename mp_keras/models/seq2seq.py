"""Recurrent decoders (notes, chapter 4): one-to-many generation and encoder-decoder.

Both models end in the same decoder: a recurrent cell whose input at step t is the
previous output token y(t-1) (a start token at t = 1) and whose logits give y(t).

* Training uses **teacher forcing**: the decoder reads the *target* tokens shifted by one,
  so all steps run in one pass of `keras.layers.RNN`. Keras' trainer calls the model on x
  alone and passes the targets only to `compute_loss`, so that is where the teacher-forced
  logits are computed; the compiled loss (sparse categorical cross-entropy) is applied to
  them. (A training step therefore also runs greedy decoding, for the metrics.)
* Inference (`call`, `predict`, `evaluate`'s metrics) uses **greedy decoding**: the argmax
  of step t is fed back as the input of step t + 1, for a fixed number of steps (a Python
  loop, unrolled when traced). `accuracy` is therefore the per-token accuracy of what the
  model generates on its own, and `sequence_accuracy` the fraction of exactly right
  sequences.

Export needs no loop inside the graph: `encode` maps x to the decoder's initial state,
`decode_step` maps (previous token, state) to (logits, next state); the application runs
the loop. States are concatenated into one vector (h, or h then c for the LSTM).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.layers.recurrent import recurrent_cell
from mp_keras.models._checks import check_shape
from mp_keras.models.sequence import SequenceAccuracy, _SequenceModel, one_hot_tokens


class _RecurrentDecoder(_SequenceModel):
    """Decoder shared by `SequenceGenerator` and `Seq2Seq`; subclasses define `encode`.

    Output tokens are 0 .. num_classes - 1; the decoder reads them plus a start token
    (id `num_classes`), one-hot.
    """

    def __init__(
        self,
        num_tokens: int,
        num_classes: int,
        output_length: int,
        cell: str,
        units: int,
        unroll: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_tokens, num_classes, cell, units, unroll, **kwargs)
        self.output_length = int(output_length)
        if self.output_length < 1:
            raise ValueError(f"output_length must be >= 1, got {output_length!r}.")
        self.label_shape = (self.output_length,)
        self.label_name = "targets"
        self.start_token = self.num_classes
        self.num_states = 2 if cell == "lstm" else 1

        # === Decoder: (tokens y(0) .. y(T-1), initial state) -> logits of y(1) .. y(T) ===
        tokens = keras.Input((self.output_length, self.num_classes + 1))
        states = [keras.Input((self.units,)) for _ in range(self.num_states)]
        outputs = keras.layers.RNN(
            recurrent_cell(cell, self.units),
            return_sequences=True,
            unroll=self.unroll,
            name="decoder_rnn",
        )(tokens, initial_state=states)  # (batch, time, units)
        logits = keras.layers.Dense(self.num_classes, name="logits")(outputs)
        self.decoder = keras.Model([tokens, *states], logits, name="decoder")

    # === Subclass interface ===

    def encode(self, inputs: Any, training: bool = False) -> Any:
        """The decoder's initial state, `(batch, num_states * units)`."""
        raise NotImplementedError

    # === Decoding ===

    def _split(self, state: Any) -> list[Any]:
        return ops.split(state, self.num_states, axis=-1) if self.num_states > 1 else [state]

    def decode_step(self, token: Any, state: Any) -> dict[str, Any]:
        """One step: previous token `(batch, 1)` and state -> logits `(batch, C)`, state.

        Runs the decoder's cell and read-out directly (the same weights as the decoder
        network), so a step is a fixed graph without a loop.
        """
        check_shape(type(self).__name__, token, (1,), what="previous tokens")
        check_shape(type(self).__name__, state, (self.num_states * self.units,), what="states")
        x = one_hot_tokens(token[:, 0], self.num_classes + 1)  # (batch, C + 1)
        h, states = self.decoder.get_layer("decoder_rnn").cell(x, self._split(state))
        logits = self.decoder.get_layer("logits")(h)
        return {"logits": logits, "state": ops.concatenate(states, axis=-1)}

    def teacher_forced_logits(self, x: Any, y: Any, training: bool = False) -> Any:
        """Logits `(batch, T, C)` when step t reads the true y(t-1) (teacher forcing)."""
        y = ops.cast(y, "int32")
        start = ops.full((ops.shape(y)[0], 1), self.start_token, dtype="int32")
        previous = ops.concatenate([start, y[:, :-1]], axis=1)  # y shifted right
        state = self.encode(x, training=training)
        tokens = one_hot_tokens(previous, self.num_classes + 1)
        return self.decoder([tokens, *self._split(state)], training=training)

    def generate(self, inputs: Any) -> Any:
        """Greedy decoding: the `output_length` most likely tokens, `(batch, T)` int32."""
        return ops.cast(ops.argmax(self(inputs), axis=-1), "int32")

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Logits `(batch, output_length, num_classes)` of greedy decoding."""
        state = self.encode(inputs, training=training)
        token = ops.full((ops.shape(state)[0], 1), self.start_token, dtype="int32")
        all_logits = []
        for _ in range(self.output_length):
            step = self.decode_step(token, state)
            state = step["state"]
            token = ops.cast(ops.argmax(step["logits"], axis=-1), "int32")[:, None]  # fed back
            all_logits.append(step["logits"])
        return ops.stack(all_logits, axis=1)

    # === Training ===

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """The compiled loss on teacher-forced logits (`y_pred` is greedy decoding's)."""
        if y is not None:
            self._check_targets(y)
            y_pred = self.teacher_forced_logits(x, y, training=training)
        return super().compute_loss(x, y, y_pred, sample_weight, training=training)

    def default_metrics(self) -> list[Any]:
        return ["accuracy", SequenceAccuracy()]

    def _check_targets(self, y: Any) -> None:
        check_shape(type(self).__name__, y, (self.output_length,), what="targets")

    # === Export ===

    def export_endpoints(self) -> dict[str, Any]:
        state_size = self.num_states * self.units
        source = keras.InputSpec(shape=(None, self._input_length()), dtype="float32")
        token = keras.InputSpec(shape=(None, 1), dtype="float32")
        state = keras.InputSpec(shape=(None, state_size), dtype="float32")
        return {
            "encode": (self.encode, [source]),
            "decode_step": (self.decode_step, [token, state]),
        }

    def export_samples(self, name: str, num: int, seed: int) -> Any:
        if name == "encode":
            return super().export_samples(name, num, seed)
        rng = np.random.default_rng(seed)
        token = rng.integers(0, self.num_classes + 1, size=(num, 1)).astype("float32")
        state = rng.uniform(-1.0, 1.0, size=(num, self.num_states * self.units))
        return [token, state.astype("float32")]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["output_length"] = self.output_length
        return config


@keras.saving.register_keras_serializable(package="mp_keras")
class SequenceGenerator(_RecurrentDecoder):
    """One-to-many recurrent generator: one input token, a sequence of output tokens.

    Notes, chapter 4 (the shapes of recurrent networks; one-to-many, as in captioning):
    the input token x sets the decoder's initial state, h(0) = tanh(W_0 x + b_0) (and
    c(0) likewise for the LSTM), and the decoder then emits y(1) .. y(T), reading y(t-1)
    at step t: teacher forcing in training, its own greedy outputs at inference (see the
    module docstring). `compile()` defaults to Adam, sparse categorical cross-entropy,
    per-token `accuracy` and exact-match `sequence_accuracy`.

    Args:
        num_tokens: int. Number of possible inputs (token ids 0 .. num_tokens - 1).
        num_classes: int. Number of output tokens.
        output_length: int. Number of tokens generated, T.
        cell: str. `"lstm"` (`LSTMCell`) or `"elman"` (`ElmanCell`). Defaults to `"lstm"`.
        units: int. Size of the hidden state. Defaults to `32`.
        unroll: bool. Unroll the teacher-forced decoder over its T steps (see
            `SequenceTagger`). Defaults to `True`.

    Example:
    >>> import numpy as np
    >>> model = SequenceGenerator(num_tokens=10, num_classes=10, output_length=4, units=8)
    >>> model.compile()
    >>> x = np.arange(10, dtype="float32")[:, None]  # (batch, 1)
    >>> y = ((x + np.arange(4)) % 10).astype("int32")  # counting from x
    >>> history = model.fit(x, y, epochs=2, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'loss', 'sequence_accuracy']
    >>> tuple(model.generate(x[:3]).shape)
    (3, 4)
    """

    def __init__(
        self,
        num_tokens: int,
        num_classes: int,
        output_length: int,
        cell: str = "lstm",
        units: int = 32,
        unroll: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_tokens, num_classes, output_length, cell, units, unroll, **kwargs)

        # === Encoder: one-hot x -> initial state ===
        inputs = keras.Input((self.num_tokens,))
        state = keras.layers.Dense(self.num_states * self.units, activation="tanh")(inputs)
        self.initial_state = keras.Model(inputs, state, name="initial_state")
        self.built = True

    def _input_length(self) -> int:
        return 1

    def encode(self, inputs: Any, training: bool = False) -> Any:
        self._check(inputs)
        return self.initial_state(one_hot_tokens(inputs[:, 0], self.num_tokens), training=training)


@keras.saving.register_keras_serializable(package="mp_keras")
class Seq2Seq(_RecurrentDecoder):
    """Encoder-decoder (sequence to sequence) RNN: input and output lengths may differ.

    Notes, chapter 4 (the shapes of recurrent networks; many-to-many with different
    lengths, Sutskever et al. 2014): an encoder RNN reads x(1) .. x(S); its final state
    (h(S), and c(S) for the LSTM) is the decoder's initial state; the decoder emits
    y(1) .. y(T), reading y(t-1) at step t: teacher forcing in training, its own greedy
    outputs at inference (see the module docstring). Variable-length strings are padded;
    an end token in the targets marks where the output stops. `compile()` defaults to Adam,
    sparse categorical cross-entropy, per-token `accuracy` and exact-match
    `sequence_accuracy`, both of greedy decoding.

    Args:
        input_length: int. Number of input steps S (pad shorter strings).
        output_length: int. Number of output steps T.
        num_tokens: int. Size of the input vocabulary (token ids 0 .. num_tokens - 1).
        num_classes: int. Size of the output vocabulary.
        cell: str. `"lstm"` (`LSTMCell`) or `"elman"` (`ElmanCell`), for both encoder and
            decoder. Defaults to `"lstm"`.
        units: int. Size of the hidden state. Defaults to `64`.
        unroll: bool. Unroll the encoder and the teacher-forced decoder (see
            `SequenceTagger`). Defaults to `True`.

    Example:
    >>> import numpy as np
    >>> model = Seq2Seq(input_length=3, output_length=4, num_tokens=5, num_classes=5, units=8)
    >>> x = np.array([[1, 2, 3], [4, 0, 0]], dtype="float32")
    >>> y = np.array([[3, 2, 1, 4], [0, 0, 4, 4]], dtype="int32")
    >>> tuple(model.teacher_forced_logits(x, y).shape)  # what training scores
    (2, 4, 5)
    >>> tuple(model.generate(x).shape)  # greedy decoding (train first: model.fit(x, y))
    (2, 4)
    """

    def __init__(
        self,
        input_length: int,
        output_length: int,
        num_tokens: int,
        num_classes: int,
        cell: str = "lstm",
        units: int = 64,
        unroll: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_tokens, num_classes, output_length, cell, units, unroll, **kwargs)
        self.input_length = int(input_length)

        # === Encoder: one-hot x(1) .. x(S) -> final state ===
        inputs = keras.Input((self.input_length, self.num_tokens))
        _, *states = keras.layers.RNN(
            recurrent_cell(cell, self.units),
            return_state=True,
            unroll=self.unroll,
            name="encoder_rnn",
        )(inputs)
        state = keras.layers.Concatenate()(states) if len(states) > 1 else states[0]
        self.encoder = keras.Model(inputs, state, name="encoder")
        self.built = True

    def _input_length(self) -> int:
        return self.input_length

    def encode(self, inputs: Any, training: bool = False) -> Any:
        self._check(inputs)
        return self.encoder(one_hot_tokens(inputs, self.num_tokens), training=training)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "input_length": self.input_length}
