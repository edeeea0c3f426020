"""Causal self-attention, the pre-norm Transformer block and the decoder's input
embedding (notes, section 6.7).

Self-attention extracts keys, values and queries from the sequence X (n x d),

    K = X W_K,    V = X W_V,    Q = X W_Q,

and each output is a soft look-up: Y = softmax(Q K^T / sqrt(d) + M) V, where the mask M
is -inf above the diagonal so that output t attends to positions <= t only (the
autoregressive property). With several heads, W_Q, W_K and W_V map to `num_heads`
blocks of `key_dim` columns, each head attends on its own, and the heads' outputs are
concatenated and projected back by W_O (Vaswani et al. 2017, section 3.2.2).

The cost is O(n^2 d) for the n x n scores; generation would pay it at every new token,
so `call_step` computes one position from a *KV cache*: the keys and values of the
earlier positions, kept in fixed-size tensors `(batch, heads, max_length, key_dim)`
that the step writes at `position` (a one-hot select, which compiles and exports on
every backend) and reads masked to positions <= `position`, for O(n d) per token.

`ShiftedTokenEmbedding` is a decoder's input: token plus position embeddings of the
sequence shifted right by a start token, so that a causal stack predicts x_t from x_<t.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from mp_keras.layers._checks import int_at_least

# The -inf of the mask: large enough that exp() underflows to exactly 0 next to any real
# score, small enough to be finite in float16 (max 65504), so masked scores never
# produce inf - inf = NaN.
MASK_VALUE = -3.0e4
POSITIONS = ("learned", "sinusoidal")


def _rate(owner: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{owner}: dropout must be a float in [0, 1), got {value!r}.")
    return float(value)


def step_positions(position: Any) -> Any:
    """`position` (a scalar, or one per example) as int32 `(1,)` or `(batch,)`: shapes
    that broadcast against the batch in the step's comparisons."""
    return ops.reshape(ops.cast(position, "int32"), (-1,))


@keras.saving.register_keras_serializable(package="mp_keras")
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head causal self-attention: softmax(Q K^T / sqrt(d) + M) V, M = -inf above
    the diagonal.

    Vaswani et al., "Attention Is All You Need", NeurIPS 2017, section 3.2 (notes,
    section 6.7). The projections are the notes' matrices: `query_kernel` is W_Q of
    shape `(d, num_heads * key_dim)` (likewise W_K, W_V), head h uses columns
    `h * key_dim ... (h + 1) * key_dim`, scores are scaled by 1 / sqrt(key_dim), and
    `output_kernel` W_O `(num_heads * key_dim, d)` maps the concatenated heads back to
    the input width. Output t depends on inputs 0 ... t only; equal, given the same
    weights, to `keras.layers.MultiHeadAttention(num_heads, key_dim)(x, x,
    use_causal_mask=True)` (whose kernels are these reshaped to `(d, heads, key_dim)`).

    The notes' M also hides the diagonal (output t sees x_<t); a Transformer keeps the
    diagonal and shifts its input right by a start token instead, which gives the same
    dependence.

    Args:
        num_heads: int. Number of attention heads.
        key_dim: int. Size of each head's queries, keys and values.
        dropout: float. Dropout rate on the attention weights during training.
            Defaults to `0.0`.
        use_bias: bool. Biases in the four projections. Defaults to `True`.
        seed: int or None. Seed of the dropout draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> layer = CausalSelfAttention(num_heads=2, key_dim=4)
    >>> x = np.random.default_rng(0).normal(size=(3, 5, 8)).astype("float32")
    >>> y = layer(x)
    >>> tuple(y.shape)  # (batch, time, d)
    (3, 5, 8)
    >>> later = x.copy(); later[:, 3:] = 0.0  # change the future of position 2
    >>> bool(np.allclose(keras.ops.convert_to_numpy(layer(later))[:, :3],
    ...                  keras.ops.convert_to_numpy(y)[:, :3], atol=1e-6))
    True
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        dropout: float = 0.0,
        use_bias: bool = True,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.num_heads = int_at_least(owner, "num_heads", num_heads)
        self.key_dim = int_at_least(owner, "key_dim", key_dim)
        self.dropout = _rate(owner, dropout)
        self.use_bias = bool(use_bias)
        self.seed = seed
        self.attention_dropout = keras.layers.Dropout(
            self.dropout, seed=seed, dtype=self.dtype_policy
        )

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        d = input_shape[-1]
        if d is None:
            raise ValueError(
                f"{type(self).__name__} needs a known feature size, got {input_shape}."
            )
        self.input_dim = int(d)
        inner = self.num_heads * self.key_dim
        for name in ("query", "key", "value"):
            setattr(
                self, f"{name}_kernel", self.add_weight(name=f"{name}_kernel", shape=(d, inner))
            )
            bias = (
                self.add_weight(name=f"{name}_bias", shape=(inner,), initializer="zeros")
                if self.use_bias
                else None
            )
            setattr(self, f"{name}_bias", bias)
        self.output_kernel = self.add_weight(name="output_kernel", shape=(inner, d))
        self.output_bias = (
            self.add_weight(name="output_bias", shape=(d,), initializer="zeros")
            if self.use_bias
            else None
        )
        self.built = True

    def _project(self, x: Any, name: str) -> Any:
        """x W (+ b) for `name` in query/key/value, split into heads: (..., heads, key_dim)."""
        y = ops.matmul(x, getattr(self, f"{name}_kernel"))
        if self.use_bias:
            y = y + getattr(self, f"{name}_bias")
        return ops.reshape(y, (*ops.shape(x)[:-1], self.num_heads, self.key_dim))

    def _merge(self, heads: Any) -> Any:
        """Concatenated heads (..., heads, key_dim) times W_O (+ b): (..., d)."""
        shape = ops.shape(heads)
        y = ops.matmul(ops.reshape(heads, (*shape[:-2], shape[-2] * shape[-1])), self.output_kernel)
        return y + self.output_bias if self.use_bias else y

    def attention_weights(self, x: Any) -> Any:
        """softmax(Q K^T / sqrt(key_dim) + M) per head, `(batch, heads, time, time)`."""
        # Heads first, then batched matmuls (XLA on CPU runs the einsum of the same
        # product several times slower).
        q = ops.transpose(self._project(x, "query"), (0, 2, 1, 3))  # (batch, heads, time, k)
        k = ops.transpose(self._project(x, "key"), (0, 2, 3, 1))  # (batch, heads, k, time)
        scores = ops.matmul(q, k) / math.sqrt(self.key_dim)  # (batch, heads, time, time)
        steps = ops.arange(ops.shape(x)[1])
        causal = steps[:, None] >= steps[None, :]  # [t, s]: s is not after t
        masked = ops.where(causal[None, None], scores, ops.cast(MASK_VALUE, scores.dtype))
        return ops.softmax(masked, axis=-1)

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Attention over positions <= t for every t: `(batch, time, d)` -> same shape."""
        weights = self.attention_dropout(self.attention_weights(inputs), training=training)
        v = ops.transpose(self._project(inputs, "value"), (0, 2, 1, 3))  # (b, heads, time, k)
        return self._merge(ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3)))

    def call_step(
        self, x_t: Any, cache_k: Any, cache_v: Any, position: Any
    ) -> tuple[Any, Any, Any]:
        """Output at `position` from its input `x_t` `(batch, d)` and the KV cache.

        `cache_k` and `cache_v` are `(batch, heads, max_length, key_dim)`, holding the
        keys and values of positions < `position` (anything after it is ignored). The
        step writes this position's key and value at `position` and attends over
        positions <= `position`. `position` is an int (tensor) or one per example.

        Returns:
            `(out_t, cache_k, cache_v)`: the output `(batch, d)`, equal to `call` on the
            whole sequence at that position, and the updated caches.
        """
        x_t = ops.convert_to_tensor(x_t, self.compute_dtype)
        max_length = ops.shape(cache_k)[2]
        position = step_positions(position)
        slots = ops.arange(max_length, dtype="int32")[None, :]  # (1, max_length)
        here = (slots == position[:, None])[:, None, :, None]  # (batch, 1, max_length, 1)
        k_t = self._project(x_t, "key")[:, :, None, :]  # (batch, heads, 1, key_dim)
        v_t = self._project(x_t, "value")[:, :, None, :]
        cache_k = ops.where(here, ops.cast(k_t, cache_k.dtype), cache_k)
        cache_v = ops.where(here, ops.cast(v_t, cache_v.dtype), cache_v)
        q_t = self._project(x_t, "query")  # (batch, heads, key_dim)
        scores = ops.matmul(cache_k, q_t[..., None])[..., 0] / math.sqrt(self.key_dim)
        seen = (slots <= position[:, None])[:, None, :]  # (batch, 1, max_length)
        weights = ops.softmax(ops.where(seen, scores, ops.cast(MASK_VALUE, scores.dtype)), axis=-1)
        heads = ops.matmul(weights[:, :, None, :], cache_v)[:, :, 0]  # (batch, heads, key_dim)
        return self._merge(heads), cache_k, cache_v

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="mp_keras")
class TransformerBlock(keras.layers.Layer):
    """Pre-norm decoder block: x + attention(LN(x)), then h + MLP(LN(h)).

    Vaswani et al. 2017 put the LayerNorm after each residual sum; normalising the
    branch input instead (the GPT-2 order, Xiong et al. 2020) trains without a
    learning-rate warm-up, which suits the short runs of the course. The MLP is
    Dense(mlp_dim, activation) -> Dense(d); dropout follows each branch.

    Args:
        num_heads: int. Attention heads.
        key_dim: int. Size of each head.
        mlp_dim: int. Hidden units of the MLP.
        dropout: float. Dropout of the attention weights and of each branch's output.
            Defaults to `0.0`.
        activation: str. Activation of the MLP. Defaults to `"gelu"`.
        epsilon: float. LayerNorm epsilon. Defaults to `1e-5`.
        seed: int or None. Seed of the dropout draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> block = TransformerBlock(num_heads=2, key_dim=4, mlp_dim=16)
    >>> tuple(block(np.zeros((2, 5, 8), "float32")).shape)
    (2, 5, 8)
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        mlp_dim: int,
        dropout: float = 0.0,
        activation: str = "gelu",
        epsilon: float = 1e-5,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.num_heads, self.key_dim = num_heads, key_dim
        self.mlp_dim = int_at_least(owner, "mlp_dim", mlp_dim)
        self.dropout = _rate(owner, dropout)
        self.activation = activation
        self.epsilon = float(epsilon)
        self.seed = seed

        # === Layers ===
        policy = self.dtype_policy  # a float16 block computes in float16 throughout
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=epsilon, dtype=policy, name="ln_1"
        )
        self.attention = CausalSelfAttention(
            num_heads, key_dim, dropout=dropout, seed=seed, dtype=policy, name="attention"
        )
        self.mlp_norm = keras.layers.LayerNormalization(epsilon=epsilon, dtype=policy, name="ln_2")
        self.mlp_hidden = keras.layers.Dense(
            self.mlp_dim, activation=activation, dtype=policy, name="mlp_1"
        )
        offset = None if seed is None else seed + 1
        self.branch_dropout = keras.layers.Dropout(self.dropout, seed=offset, dtype=policy)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        d = int(input_shape[-1])
        self.mlp_output = keras.layers.Dense(d, dtype=self.dtype_policy, name="mlp_2")
        for layer in (self.attention_norm, self.attention, self.mlp_norm):
            layer.build(input_shape)
        self.mlp_hidden.build(input_shape)
        self.mlp_output.build((*input_shape[:-1], self.mlp_dim))
        self.built = True

    def _mlp(self, h: Any, training: bool) -> Any:
        update = self.mlp_output(self.mlp_hidden(self.mlp_norm(h)))
        return h + self.branch_dropout(update, training=training)

    def call(self, inputs: Any, training: bool = False) -> Any:
        """`(batch, time, d)` -> `(batch, time, d)`, output t from inputs <= t."""
        update = self.attention(self.attention_norm(inputs), training=training)
        return self._mlp(inputs + self.branch_dropout(update, training=training), training)

    def call_step(
        self, x_t: Any, cache_k: Any, cache_v: Any, position: Any
    ) -> tuple[Any, Any, Any]:
        """One position `(batch, d)` with the attention's KV cache (see
        `CausalSelfAttention.call_step`); returns `(out_t, cache_k, cache_v)`."""
        x_t = ops.convert_to_tensor(x_t, self.compute_dtype)
        update, cache_k, cache_v = self.attention.call_step(
            self.attention_norm(x_t), cache_k, cache_v, position
        )
        return self._mlp(x_t + update, training=False), cache_k, cache_v

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "mlp_dim": self.mlp_dim,
                "dropout": self.dropout,
                "activation": self.activation,
                "epsilon": self.epsilon,
                "seed": self.seed,
            }
        )
        return config
