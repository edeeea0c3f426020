"""The sinusoidal embedding of a diffusion step t (notes, section 9.3; Ho et al. 2020)."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from mp_keras.layers._checks import int_at_least


@keras.saving.register_keras_serializable(package="mp_keras")
class SinusoidalTimeEmbedding(keras.layers.Layer):
    """Embeds a timestep t as [sin(t w_0), ..., sin(t w_{h-1}), cos(t w_0), ..., cos(t w_{h-1})].

    Vaswani et al., "Attention Is All You Need", 2017 (section 3.5), as used for the
    diffusion step by Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", 2020:
    with h = dim / 2 frequencies w_k = max_period^(-k / h), k = 0..h-1, from one cycle
    per 2 pi steps down to one per 2 pi max_period steps. t may be an integer step or a
    real time; the layer has no weights (a network follows it with Dense layers).

    Args:
        dim: int. Size of the embedding; must be even. Defaults to `32`.
        max_period: float. The slowest period's scale. Defaults to `10000.0`.

    Example:
    >>> import numpy as np
    >>> layer = SinusoidalTimeEmbedding(4)
    >>> emb = ops.convert_to_numpy(layer(np.array([0, 1])))  # (batch, dim)
    >>> emb.round(3).tolist()
    [[0.0, 0.0, 1.0, 1.0], [0.841, 0.01, 0.54, 1.0]]
    """

    def __init__(self, dim: int = 32, max_period: float = 10000.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.dim = int_at_least(owner, "dim", dim, low=2)
        if self.dim % 2:
            raise ValueError(f"{owner}: dim must be even (sines and cosines), got {dim!r}.")
        if not max_period > 1:
            raise ValueError(f"{owner}: max_period must be > 1, got {max_period!r}.")
        self.max_period = float(max_period)

    def frequencies(self) -> list[float]:
        """w_k = max_period^(-k / (dim / 2)) for k = 0..dim/2 - 1."""
        half = self.dim // 2
        return [math.exp(-math.log(self.max_period) * k / half) for k in range(half)]

    def call(self, t: Any) -> Any:
        t = ops.cast(t, self.compute_dtype)
        if len(t.shape) == 2:  # (batch, 1) as well as (batch,)
            t = ops.squeeze(t, axis=-1)
        w = ops.convert_to_tensor(self.frequencies(), dtype=self.compute_dtype)
        angles = t[:, None] * w[None, :]  # (batch, dim / 2)
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0], self.dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"dim": self.dim, "max_period": self.max_period})
        return config
