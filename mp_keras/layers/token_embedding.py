"""Token embeddings of the decoder-only Transformer (notes, 6.7): the start-token shift,
learned or sinusoidal positions, and a one-step form for cached decoding."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.layers._checks import int_at_least
from mp_keras.layers.attention import POSITIONS, step_positions


def sinusoidal_positions(length: int, dim: int) -> np.ndarray:
    """Vaswani et al.'s fixed encodings (section 3.5), float32 `(length, dim)`.

    Entry (p, 2i) is sin(p / 10000^(2i / dim)) and (p, 2i + 1) the cosine of the same.

    Example:
    >>> sinusoidal_positions(3, 4)[1].round(3).tolist()
    [0.841, 0.54, 0.01, 1.0]
    """
    position = np.arange(length, dtype="float64")[:, None]
    rates = 1.0 / 10000.0 ** (np.arange(0, dim, 2, dtype="float64") / dim)
    table = np.zeros((length, dim))
    table[:, 0::2] = np.sin(position * rates)
    table[:, 1::2] = np.cos(position * rates)[:, : dim // 2]
    return table.astype("float32")


@keras.saving.register_keras_serializable(package="mp_keras")
class ShiftedTokenEmbedding(keras.layers.Layer):
    """A decoder's input: E[x_(t-1)] + P[t] at position t, x_(-1) being a start token.

    The token table E has `vocab_size + 1` rows, the last one the start token (id
    `vocab_size`); the sequence is shifted right by it, so a causal stack on top sees
    x_0 ... x_(t-1) at position t and predicts x_t. P is a learned table or Vaswani et
    al.'s sinusoidal one (`sinusoidal_positions`). With `vocab_size=2` a sequence of 0/1
    is embedded as E[0] + x (E[1] - E[0]): the look-up on binary values, but
    differentiable in x, so the autoregressive property can be checked by gradient.

    Args:
        vocab_size: int. Number of tokens (the start token is one more).
        max_length: int. Number of positions.
        output_dim: int. Size d of each embedding.
        positions: str. `"learned"` or `"sinusoidal"`. Defaults to `"learned"`.

    Example:
    >>> layer = ShiftedTokenEmbedding(vocab_size=3, max_length=4, output_dim=2)
    >>> tuple(layer(np.array([[0, 1, 2]])).shape)  # (batch, time, d)
    (1, 3, 2)
    """

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        output_dim: int,
        positions: str = "learned",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.vocab_size = int_at_least(owner, "vocab_size", vocab_size)
        self.max_length = int_at_least(owner, "max_length", max_length)
        self.output_dim = int_at_least(owner, "output_dim", output_dim)
        if positions not in POSITIONS:
            raise ValueError(f"{owner}: positions must be one of {POSITIONS}, got {positions!r}.")
        self.positions = positions
        self.table = sinusoidal_positions(self.max_length, self.output_dim)

    def build(self, input_shape: Any = None) -> None:
        uniform = keras.initializers.RandomUniform(-0.05, 0.05)  # keras Embedding's default
        d = self.output_dim
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.vocab_size + 1, d), initializer=uniform
        )
        self.position_embeddings = (
            self.add_weight(
                name="position_embeddings", shape=(self.max_length, d), initializer=uniform
            )
            if self.positions == "learned"
            else None
        )
        self.built = True

    def position_vectors(self, index: Any) -> Any:
        """P at `index` (ints), shape `index.shape + (d,)`."""
        table = self.position_embeddings
        if table is None:
            table = ops.convert_to_tensor(self.table, self.compute_dtype)
        return ops.take(table, index, axis=0)

    def call(self, tokens: Any) -> Any:
        """`(batch, time)` ids -> `(batch, time, d)`: position t embeds x_(t-1)."""
        table = self.embeddings  # (vocab_size + 1, d)
        if self.vocab_size == 2:
            x01 = ops.cast(tokens, table.dtype)[..., None]
            embedded = table[0] + x01 * (table[1] - table[0])
        else:
            embedded = ops.take(table, ops.cast(tokens, "int32"), axis=0)  # (batch, time, d)
        start = ops.zeros_like(embedded[:, :1]) + table[self.vocab_size]
        shifted = ops.concatenate([start, embedded[:, :-1]], axis=1)
        return shifted + self.position_vectors(ops.arange(ops.shape(shifted)[1]))[None]

    def call_step(self, token: Any, position: Any) -> Any:
        """The embedding at `position` of the `token` read there (the start token at 0,
        else x_(position - 1)): `(batch,)` ids -> `(batch, d)`."""
        token = ops.reshape(ops.cast(token, "int32"), (-1,))
        return ops.take(self.embeddings, token, axis=0) + self.position_vectors(
            step_positions(position)
        )

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape, self.output_dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "max_length": self.max_length,
                "output_dim": self.output_dim,
                "positions": self.positions,
            }
        )
        return config
