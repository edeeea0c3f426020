"""The private layers of CLIP: a host-drawn initializer and the text encoder's block."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="mp_keras")
class NumpyInitializer(keras.initializers.Initializer):
    """Glorot-uniform or normal(0, stddev) initial weights, drawn with NumPy.

    The same distributions as Keras' `GlorotUniform` and `RandomNormal`, but drawn on
    the host: on JAX every new weight shape would compile its own random kernel (about
    a second each on a CPU), most of the time it takes to build a small CLIP.

    Args:
        kind: str. `"glorot"` (uniform in +-sqrt(6 / (fan_in + fan_out))) or `"normal"`.
            Defaults to `"glorot"`.
        stddev: float. Standard deviation of `"normal"`. Defaults to `0.02`.
        seed: int or None. Seed of the draw; None draws one from NumPy's global state
            (which `keras.utils.set_random_seed` seeds). Defaults to `None`.

    Example:
    >>> w = NumpyInitializer(seed=0)((4, 6))
    >>> tuple(w.shape), bool(abs(keras.ops.convert_to_numpy(w)).max() <= math.sqrt(0.6))
    ((4, 6), True)
    """

    def __init__(self, kind: str = "glorot", stddev: float = 0.02, seed: int | None = None):
        if kind not in ("glorot", "normal"):
            raise ValueError(f"kind must be 'glorot' or 'normal', got {kind!r}.")
        self.kind, self.stddev, self.seed = kind, float(stddev), seed

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        shape = tuple(int(d) for d in shape)
        # The global state, so that keras.utils.set_random_seed makes unseeded runs repeat.
        seed = self.seed if self.seed is not None else np.random.randint(2**31)  # noqa: NPY002
        rng = np.random.default_rng(seed)
        if self.kind == "normal":
            values = rng.normal(0.0, self.stddev, shape)
        else:
            # Fans as Keras counts them: kernels (..., in, out), receptive field in front.
            receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
            fan_in = shape[-2] * receptive if len(shape) > 1 else shape[0]
            fan_out = shape[-1] * receptive if len(shape) > 1 else shape[0]
            limit = math.sqrt(6.0 / max(fan_in + fan_out, 1))
            values = rng.uniform(-limit, limit, shape)
        return ops.convert_to_tensor(values, dtype=dtype or keras.backend.floatx())

    def get_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "stddev": self.stddev, "seed": self.seed}


@keras.saving.register_keras_serializable(package="mp_keras")
class TextBlock(keras.layers.Layer):
    """Pre-norm bidirectional Transformer block with a padding mask (CLIP's text encoder).

    x + MHA(LN(x), mask), then h + MLP(LN(h)); pad positions attend to and are attended
    by nothing, so padding never changes the other tokens' features.

    Args:
        num_heads: int. Attention heads.
        key_dim: int. Size of each head.
        mlp_dim: int. Hidden units of the MLP.
        seed: int or None. Seed of the initial weights. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> block = TextBlock(num_heads=2, key_dim=4, mlp_dim=16)
    >>> mask = np.array([[True, True, False]])
    >>> tuple(block(np.zeros((1, 3, 8), "float32"), mask).shape)
    (1, 3, 8)
    """

    def __init__(
        self, num_heads: int, key_dim: int, mlp_dim: int, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.num_heads, self.key_dim, self.mlp_dim = int(num_heads), int(key_dim), int(mlp_dim)
        self.seed = seed
        seeds = iter(range(3)) if seed is None else iter(range(seed, seed + 3))

        def init() -> NumpyInitializer:
            return NumpyInitializer(seed=None if seed is None else next(seeds))

        self.norm_attention = keras.layers.LayerNormalization(epsilon=1e-5)
        self.norm_mlp = keras.layers.LayerNormalization(epsilon=1e-5)
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, self.key_dim, kernel_initializer=init()
        )
        self.hidden = keras.layers.Dense(self.mlp_dim, activation="gelu", kernel_initializer=init())
        self.out_initializer = init()

    def build(self, x_shape: Sequence[int | None], mask_shape: Any = None) -> None:
        width = int(x_shape[-1])
        self.norm_attention.build(x_shape)
        self.norm_mlp.build(x_shape)
        self.attention.build(x_shape, x_shape)
        self.hidden.build(x_shape)
        self.out = keras.layers.Dense(width, kernel_initializer=self.out_initializer)
        self.out.build((*x_shape[:-1], self.mlp_dim))

    def call(self, x: Any, mask: Any) -> Any:
        mask = ops.cast(mask, "bool")  # (batch, T), True on tokens
        pair_mask = ops.logical_and(mask[:, :, None], mask[:, None, :])  # (batch, T, T)
        h = self.norm_attention(x)
        x = x + self.attention(h, h, attention_mask=pair_mask)
        return x + self.out(self.hidden(self.norm_mlp(x)))

    def compute_output_shape(self, x_shape: Any, mask_shape: Any = None) -> Any:
        return x_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "mlp_dim": self.mlp_dim,
                "seed": self.seed,
            }
        )
        return config
