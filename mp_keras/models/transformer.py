"""Decoder-only Transformer: an autoregressive model of token sequences (notes, 6.7)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import CompiledCache, Phase, PhasedModel
from mp_keras.layers.attention import POSITIONS, TransformerBlock
from mp_keras.layers.token_embedding import ShiftedTokenEmbedding
from mp_keras.models._checks import check_count, check_no_targets, check_shape, check_values
from mp_keras.models._transformer_decoding import TransformerDecoding
from mp_keras.models.density import LN2, DensityModel


@keras.saving.register_keras_serializable(package="mp_keras")
class Transformer(TransformerDecoding, DensityModel, PhasedModel):
    """Decoder-only Transformer over tokens or binary pixels, with KV-cached decoding.

    Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (notes, section 6.7), as a
    decoder only (the GPT layout): token embedding + positions (`"learned"` or the
    paper's `"sinusoidal"` ones), `num_layers` pre-norm `TransformerBlock`s (causal
    self-attention, MLP), a final LayerNorm and the logits of the next token. The input
    is shifted right by a start token (id `vocab_size`; `ShiftedTokenEmbedding`), so the
    logits at t are those of p(x_t | x_<t) and log p(x) = sum_t log p(x_t | x_<t) is
    exact (in nats). Training maximises it on whole sequences (teacher forcing, one
    pass); `bits_per_dim` is logged.

    Two uses of one class:

    * sequences (`max_length`): `x` is `(batch, T)` token ids, T <= `max_length` (a
      prefix's log_prob is its exact marginal); `call(x)` gives the logits
      `(batch, T, vocab_size)`; `sample` and `generate` return int32 tokens.
    * binary images (`input_shape=(H, W, 1)`, `vocab_size=2`): the image read row-major
      as H * W pixel tokens; `call(x)` and `conditional_logits(x)` give p(x_i = 1 | x_<i)
      and its logit per pixel (as the other binary image models), and `sample` images.
      Pixels are embedded as E[0] + x (E[1] - E[0]), the look-up on 0/1 but
      differentiable, so the tests prove the autoregressive property by gradient.

    `generate(prompt or num, length, seed, cache=True)` decodes one token at a time.
    The cached path runs one compiled `decode_step` for every token, carrying the keys
    and values of all layers (O(T d) per token); `cache=False` reruns the full network on
    the whole (fixed-size, so compiled once) sequence for every token (O(T^2 d)). Both
    draw the same Gumbel noise up front from `seed`: the same seed gives the same tokens.
    Later calls of the same shapes reuse the compiled steps, also after training (the
    weights are their arguments, `mp_keras.engine.CompiledCache`).

    Args:
        vocab_size: int. Number of tokens. Defaults to `2` (binary pixels).
        max_length: int or None. Longest sequence; for images H * W (the default then).
        input_shape: tuple or None. `(H, W, 1)` for binary images, None for sequences.
            Defaults to `None`.
        embed_dim: int. Width d of the residual stream. Defaults to `64`.
        num_heads: int. Attention heads, dividing `embed_dim`. Defaults to `4`.
        num_layers: int. Transformer blocks. Defaults to `2`.
        mlp_dim: int or None. Hidden units of each MLP. Defaults to `4 * embed_dim`.
        dropout: float. Dropout of embeddings, attention weights and branches.
            Defaults to `0.0`.
        positions: str. `"learned"` or `"sinusoidal"`. Defaults to `"learned"`.
        vocabulary: sequence of str or None. How each token id prints (`decode`, and
            what `mp-keras sample` writes), e.g. `mp_keras.data.addition.VOCABULARY`;
            `None` prints ids. Defaults to `None`.
        seed: int or None. Seed of dropout and sampling draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = Transformer(vocab_size=5, max_length=6, embed_dim=8, num_heads=2,
    ...                     num_layers=1, seed=0)
    >>> x = np.array([[1, 2, 3, 4, 0, 1]], "float32")
    >>> tuple(model(x).shape), tuple(model.log_prob(x).shape)
    ((1, 6, 5), (1,))
    >>> tokens = model.generate(prompt=x[:, :2], length=3, seed=1)
    >>> keras.ops.convert_to_numpy(tokens).shape  # the prompt and three new tokens
    (1, 5)
    """

    def __init__(
        self,
        vocab_size: int = 2,
        max_length: int | None = None,
        input_shape: Sequence[int] | None = None,
        embed_dim: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        mlp_dim: int | None = None,
        dropout: float = 0.0,
        positions: str = "learned",
        vocabulary: Sequence[str] | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.vocab_size = check_count(owner, "vocab_size", vocab_size)
        self.images = input_shape is not None
        if self.images:
            self.data_shape = tuple(int(d) for d in input_shape)
            if len(self.data_shape) != 3 or self.data_shape[-1] != 1 or min(self.data_shape) < 1:
                raise ValueError(
                    f"{owner} models binary images of shape (height, width, 1); got "
                    f"input_shape={tuple(input_shape)}."
                )
            if self.vocab_size != 2:
                raise ValueError(f"{owner} of binary images needs vocab_size=2, got {vocab_size}.")
            pixels = math.prod(self.data_shape)
            if max_length not in (None, pixels):
                raise ValueError(f"{owner}: max_length of {self.data_shape} images is {pixels}.")
            max_length = pixels
        elif max_length is None:
            raise ValueError(f"{owner} needs max_length (sequences) or input_shape (images).")
        self.max_length = check_count(owner, "max_length", max_length)
        if not self.images:
            self.data_shape = (self.max_length,)
        self.embed_dim = check_count(owner, "embed_dim", embed_dim)
        self.num_heads = check_count(owner, "num_heads", num_heads)
        if self.embed_dim % self.num_heads:
            raise ValueError(f"{owner}: num_heads={num_heads} must divide embed_dim={embed_dim}.")
        self.key_dim = self.embed_dim // self.num_heads
        self.num_layers = check_count(owner, "num_layers", num_layers)
        self.mlp_dim = check_count(
            owner, "mlp_dim", 4 * self.embed_dim if mlp_dim is None else mlp_dim
        )
        self.dropout = float(dropout)
        if positions not in POSITIONS:
            raise ValueError(f"{owner}: positions must be one of {POSITIONS}, got {positions!r}.")
        self.positions = positions
        if vocabulary is not None:
            vocabulary = tuple(str(token) for token in vocabulary)
            if len(vocabulary) != self.vocab_size:
                raise ValueError(
                    f"{owner}: vocabulary must name all {self.vocab_size} tokens; got "
                    f"{len(vocabulary)} names."
                )
        self.vocabulary = vocabulary
        self.seed = seed
        self.start_token = self.vocab_size
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._compiled_fns = CompiledCache()  # decoding steps, see `_compiled`

        # === Layers ===
        def offset(i: int) -> int | None:
            return None if seed is None else seed + i

        d = self.embed_dim
        self.embedding = ShiftedTokenEmbedding(
            self.vocab_size, self.max_length, d, positions, name="embedding"
        )
        self.embedding_dropout = keras.layers.Dropout(self.dropout, seed=offset(0))
        self.blocks = [
            TransformerBlock(
                self.num_heads,
                self.key_dim,
                self.mlp_dim,
                self.dropout,
                seed=offset(2 * i + 1),
                name=f"block_{i}",
            )
            for i in range(self.num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")
        self.head = keras.layers.Dense(self.vocab_size, name="logits")

        # === Build ===
        self.embedding.build()
        for block in self.blocks:
            block.build((None, None, d))
        self.final_norm.build((None, d))
        self.head.build((None, d))
        self.track("bits_per_dim")
        self.built = True

    # === Network ===

    def _tokens(self, x: Any) -> Any:
        """Data as a `(batch, T)` sequence of ids (images flattened row-major)."""
        self.check_inputs(x)
        return ops.reshape(x, (ops.shape(x)[0], -1)) if self.images else x

    def logits(self, x: Any, training: bool = False) -> Any:
        """Logits of p(x_t | x_<t) for every t, `(batch, T, vocab_size)`."""
        return self._sequence_logits(self._tokens(x), training=training)

    def _sequence_logits(self, tokens: Any, training: bool = False) -> Any:
        """`logits` of a `(batch, T)` sequence of ids (flattened images included)."""
        h = self.embedding(tokens)  # (batch, T, d), position t embeds x_(t-1)
        h = self.embedding_dropout(h, training=training)
        for block in self.blocks:
            h = block(h, training=training)  # (batch, T, d)
        return self.head(self.final_norm(h))

    def conditional_logits(self, x: Any, training: bool = False) -> Any:
        """Binary images: the logit of p(x_i = 1 | x_<i) per pixel, shape `x.shape`."""
        if not self.images:
            raise ValueError(f"{type(self).__name__} of sequences has no binary conditionals.")
        logits = self.logits(x, training=training)
        return ops.reshape(logits[..., 1] - logits[..., 0], ops.shape(x))

    def ordering(self) -> np.ndarray:
        """Flat indices of the dimensions in the order they are generated (row-major)."""
        return np.arange(self.max_length)

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Next-token logits `(batch, T, vocab)`; for images p(x_i = 1 | x_<i), x.shape."""
        if self.images:
            return ops.sigmoid(self.conditional_logits(inputs, training=training))
        return self.logits(inputs, training=training)

    # === Density ===

    def log_prob(self, x: Any, training: bool = False) -> Any:
        """Exact log p(x) = sum_t log p(x_t | x_<t), in nats, shape `(batch,)`."""
        if isinstance(x, np.ndarray):
            self.validate_inputs(x)
        log_p = ops.log_softmax(self.logits(x, training=training), axis=-1)  # (b, T, V)
        tokens = ops.cast(self._tokens(x), "int32")
        return ops.sum(log_p * ops.one_hot(tokens, self.vocab_size, dtype=log_p.dtype), axis=(1, 2))

    def sample(self, num: int, seed: int | None = None) -> Any:
        """`num` sequences (int32 tokens) or binary images (float32), cached decoding."""
        tokens = self.generate(num=num, seed=seed)
        if not self.images:
            return tokens
        return ops.reshape(ops.cast(tokens, "float32"), (-1, *self.data_shape))

    def decode(self, tokens: Any) -> list[str]:
        """Token sequences `(batch, T)` as strings, one per sequence, by `vocabulary`
        (ids separated by spaces without one).

        Example:
        >>> Transformer(vocab_size=3, max_length=2, vocabulary="ab.").decode([[0, 2]])
        ['a.']
        """
        tokens = np.asarray(ops.convert_to_numpy(tokens)).astype("int64")
        if tokens.ndim != 2:
            raise ValueError(f"decode expects tokens of shape (batch, T); got {tokens.shape}.")
        if self.vocabulary is None:
            return [" ".join(str(t) for t in row) for row in tokens]
        return ["".join(self.vocabulary[t] for t in row) for row in tokens]

    # === Training ===

    def phases(self) -> list[Phase]:
        return [Phase("nll", self.trainable_variables, self._loss)]

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        nll = -ops.mean(self.log_prob(x, training=training))
        steps = ops.cast(ops.shape(self._tokens(x))[1], nll.dtype)
        return nll, {"bits_per_dim": nll / (steps * LN2)}

    # === Checks ===

    def check_inputs(self, x: Any) -> None:
        """Shape check, valid on NumPy, eager and symbolic tensors."""
        owner = type(self).__name__
        if self.images:
            check_shape(owner, x, self.data_shape)
            return
        shape = tuple(getattr(x, "shape", np.shape(x)))
        if len(shape) != 2 or (shape[1] is not None and not 1 <= shape[1] <= self.max_length):
            raise ValueError(
                f"{owner} expects token ids of shape (batch, length) with length <= "
                f"max_length={self.max_length}; got shape {shape}."
            )

    def _check_tokens(self, x: np.ndarray, what: str = "token ids") -> None:
        owner = type(self).__name__
        check_values(owner, x)
        x = np.asarray(x)
        if x.size and (x.min() < 0 or x.max() >= self.vocab_size or np.any(x != np.round(x))):
            bad = x[(x < 0) | (x >= self.vocab_size) | (x != np.round(x))]
            raise ValueError(
                f"{owner} has a vocabulary of {self.vocab_size} tokens and expects {what} "
                f"as integers in [0, {self.vocab_size}); got values such as "
                f"{np.unique(bad)[:5].tolist()}."
            )

    def validate_data(self, x: np.ndarray) -> None:
        self.check_inputs(x)
        if not self.images:
            self._check_tokens(x)
            return
        check_values(type(self).__name__, x)
        x = np.asarray(x)
        if not np.all((x == 0) | (x == 1)):
            raise ValueError(
                f"{type(self).__name__} is a density model of binary images and expects "
                f"values in {{0, 1}}; got values such as "
                f"{np.unique(x[(x != 0) & (x != 1)])[:5].tolist()}. Binarize the data first."
            )

    def validate_targets(self, y: np.ndarray | None) -> None:
        check_no_targets(type(self).__name__, y)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "max_length": self.max_length,
                "input_shape": list(self.data_shape) if self.images else None,
                "embed_dim": self.embed_dim,
                "num_heads": self.num_heads,
                "num_layers": self.num_layers,
                "mlp_dim": self.mlp_dim,
                "dropout": self.dropout,
                "positions": self.positions,
                "vocabulary": None if self.vocabulary is None else list(self.vocabulary),
                "seed": self.seed,
            }
        )
        return config
