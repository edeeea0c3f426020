"""Bijectors: invertible layers with a tractable log-determinant (notes, chapter 7).

One convention throughout. A bijector is a map f from the latent side z to the data
side x:

    forward(z) -> (x, log|det df/dz|)        inverse(x) -> (z, log|det df^-1/dx|)

with the log-determinants per example, shape `(batch,)`, so that `inverse` gives
log p(x) = log p_z(z) + log|det df^-1/dx| (7.1) and the two log-determinants at matching
points are negatives of each other. Layers named after an operation on the data (the
squeeze, the logit transform, the dequantisation) perform it in the data-to-latent
direction, `inverse`, as the papers write them. A `Chain([f_1, ..., f_m])` is
f_m o ... o f_1 (7.3): `forward` runs the list in order, `inverse` in reverse.

Coupling layers (7.2; defined in coupling.py, re-exported here) take a binary `mask`
with 1 on the part x_B that is kept and conditions the rest: `alternating_mask` for
vectors, `checkerboard_mask` and `channel_mask` for images. Their conditioner (an MLP,
or for images a small conv net) ends in a zero-initialised layer, so each coupling
starts as the identity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from mp_keras.layers._bijector import Bijector, per_example_sum
from mp_keras.layers.coupling import (
    AdditiveCoupling,
    AffineCoupling,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
)

__all__ = [
    "AdditiveCoupling",
    "AffineCoupling",
    "Bijector",
    "Chain",
    "Dequantize",
    "LogitTransform",
    "Scaling",
    "Squeeze",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
]


@keras.saving.register_keras_serializable(package="mp_keras")
class Chain(Bijector):
    """f_m o ... o f_1 (notes, 7.3): log-determinants add, `inverse` runs in reverse.

    Args:
        bijectors: list of bijectors (or their serialised configs), f_1 first.

    Example:
    >>> import numpy as np
    >>> chain = Chain([Scaling(), Scaling()])
    >>> x, log_det = chain.forward(np.ones((2, 3), "float32"))
    >>> tuple(x.shape), tuple(log_det.shape)
    ((2, 3), (2,))
    """

    def __init__(self, bijectors: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bijectors = [
            keras.saving.deserialize_keras_object(b) if isinstance(b, dict) else b
            for b in bijectors
        ]
        if not self.bijectors:
            raise ValueError("Chain needs at least one bijector; got an empty list.")
        odd = [type(b).__name__ for b in self.bijectors if not isinstance(b, Bijector)]
        if odd:
            raise ValueError(f"Chain takes Bijector layers only; got {odd}.")

    def _forward(self, z: Any) -> tuple[Any, Any]:
        total = 0.0
        for bijector in self.bijectors:
            z, log_det = bijector.forward(z)
            total = total + log_det
        return z, total

    def _inverse(self, x: Any) -> tuple[Any, Any]:
        total = 0.0
        for bijector in reversed(self.bijectors):
            x, log_det = bijector.inverse(x)
            total = total + log_det
        return x, total

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["bijectors"] = [keras.saving.serialize_keras_object(b) for b in self.bijectors]
        return config


@keras.saving.register_keras_serializable(package="mp_keras")
class Scaling(Bijector):
    """NICE's diagonal scaling x = z * exp(log_s): log|det df/dz| = sum log s.

    One trainable log-scale per dimension, initialised to 0 (the identity), so s > 0
    always.

    Example:
    >>> import numpy as np
    >>> layer = Scaling()
    >>> x, log_det = layer.forward(np.ones((1, 3), "float32"))
    >>> ops.convert_to_numpy(log_det).tolist()
    [0.0]
    """

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.log_scale = self.add_weight(
            shape=tuple(input_shape[1:]), initializer="zeros", name="log_scale"
        )

    def _forward(self, z: Any) -> tuple[Any, Any]:
        return z * ops.exp(self.log_scale), per_example_sum(ops.zeros_like(z) + self.log_scale)

    def _inverse(self, x: Any) -> tuple[Any, Any]:
        return x * ops.exp(-self.log_scale), -per_example_sum(ops.zeros_like(x) + self.log_scale)


@keras.saving.register_keras_serializable(package="mp_keras")
class Squeeze(Bijector):
    """RealNVP's squeeze, data to latent (`inverse`): (H, W, C) -> (H/2, W/2, 4C).

    Each 2x2 block of a channels-last image becomes one position with 4C channels,
    ordered (row in block, column in block, channel): output channel `(2 di + dj) C + c`
    holds `x[2 i + di, 2 j + dj, c]`. A permutation, so the log-det is 0.

    Example:
    >>> import numpy as np
    >>> z, _ = Squeeze().inverse(np.arange(16, dtype="float32").reshape(1, 4, 4, 1))
    >>> ops.convert_to_numpy(z)[0, 0, 0].tolist()
    [0.0, 1.0, 4.0, 5.0]
    """

    def _inverse(self, x: Any) -> tuple[Any, Any]:
        if len(x.shape) != 4:
            raise ValueError(f"Squeeze takes images (batch, h, w, c); got shape {x.shape}.")
        h, w, c = x.shape[1:]
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze needs an even height and width; got (h, w) = ({h}, {w}).")
        blocks = ops.reshape(x, (-1, h // 2, 2, w // 2, 2, c))
        z = ops.reshape(ops.transpose(blocks, (0, 1, 3, 2, 4, 5)), (-1, h // 2, w // 2, 4 * c))
        return z, per_example_sum(ops.zeros_like(z))

    def _forward(self, z: Any) -> tuple[Any, Any]:
        if len(z.shape) != 4 or z.shape[-1] % 4:
            raise ValueError(
                f"Squeeze.forward takes (batch, h, w, 4c) with channels divisible by 4; "
                f"got shape {z.shape}."
            )
        h, w, c4 = z.shape[1:]
        blocks = ops.reshape(z, (-1, h, w, 2, 2, c4 // 4))
        x = ops.reshape(ops.transpose(blocks, (0, 1, 3, 2, 4, 5)), (-1, 2 * h, 2 * w, c4 // 4))
        return x, per_example_sum(ops.zeros_like(x))


@keras.saving.register_keras_serializable(package="mp_keras")
class LogitTransform(Bijector):
    """RealNVP's logit transform, data to latent: y = logit(alpha + (1 - 2 alpha) x).

    Maps x in [0, 1] to the real line (`alpha` keeps 0 and 1 finite);
    log|det df^-1/dx| = sum log(1 - 2 alpha) - log p - log(1 - p), p = alpha + (1 - 2 alpha) x.
    `forward` is the sigmoid back to [0, 1].

    Args:
        alpha: float in [0, 0.5). Defaults to `0.05` (RealNVP's CIFAR-10 value).

    Example:
    >>> import numpy as np
    >>> y, _ = LogitTransform(alpha=0.0).inverse(np.array([[0.5]], "float32"))
    >>> ops.convert_to_numpy(y).tolist()
    [[0.0]]
    """

    def __init__(self, alpha: float = 0.05, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= float(alpha) < 0.5:
            raise ValueError(f"LogitTransform: alpha must be in [0, 0.5); got {alpha!r}.")
        self.alpha = float(alpha)

    def _inverse(self, x: Any) -> tuple[Any, Any]:
        p = self.alpha + (1.0 - 2.0 * self.alpha) * x
        log_p, log_q = ops.log(p), ops.log(1.0 - p)
        return log_p - log_q, per_example_sum(math.log(1.0 - 2.0 * self.alpha) - log_p - log_q)

    def _forward(self, y: Any) -> tuple[Any, Any]:
        log_p, log_q = -ops.softplus(-y), -ops.softplus(y)  # log sigmoid(y), log(1 - sigmoid(y))
        x = (ops.exp(log_p) - self.alpha) / (1.0 - 2.0 * self.alpha)
        return x, per_example_sum(log_p + log_q - math.log(1.0 - 2.0 * self.alpha))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="mp_keras")
class Dequantize(Bijector):
    """Data on a grid of `num_levels` values in [0, 1] to the unit cube, data to latent.

    `inverse` maps level k/(L-1) to the centre (k + 1/2)/L of its bin, an affine map with
    log|det| = D log((L-1)/L). The uniform noise of dequantisation (Theis et al. 2016) is
    not drawn here: the model's training loss adds (u - 1/2)/(L-1), u ~ U(0, 1), to the
    data, which this map sends to (k + u)/L, uniform over the bin.

    Args:
        num_levels: int >= 2. Number of values of the discrete data (17 for `digits`).

    Example:
    >>> import numpy as np
    >>> y, _ = Dequantize(num_levels=2).inverse(np.array([[0.0, 1.0]], "float32"))
    >>> ops.convert_to_numpy(y).tolist()
    [[0.25, 0.75]]
    """

    def __init__(self, num_levels: int = 256, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(num_levels, bool) or int(num_levels) != num_levels or num_levels < 2:
            raise ValueError(f"Dequantize: num_levels must be an int >= 2; got {num_levels!r}.")
        self.num_levels = int(num_levels)

    def _inverse(self, x: Any) -> tuple[Any, Any]:
        levels = self.num_levels
        y = (x * (levels - 1) + 0.5) / levels
        return y, per_example_sum(ops.zeros_like(x) + math.log((levels - 1) / levels))

    def _forward(self, y: Any) -> tuple[Any, Any]:
        levels = self.num_levels
        x = (y * levels - 0.5) / (levels - 1)
        return x, per_example_sum(ops.zeros_like(y) + math.log(levels / (levels - 1)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_levels": self.num_levels}
