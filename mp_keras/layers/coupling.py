"""Coupling layers (notes, 7.2) and their masks: NICE's additive, RealNVP's affine.

A coupling keeps the part x_B of its input where `mask` is 1 and moves the rest with an
invertible element-wise h(x_A, beta(x_B)); beta (an MLP, or a small conv net for images)
need not be invertible and ends in a zero-initialised layer, so each coupling starts as
the identity. Same convention as every bijector (mp_keras/layers/bijectors.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.layers._bijector import Bijector, per_example_sum


def alternating_mask(d: int, parity: int = 0) -> np.ndarray:
    """`(d,)` mask with 1 at the indices i where `(i + parity)` is even (NICE's split).

    Example:
    >>> alternating_mask(5, 0).tolist(), alternating_mask(5, 1).tolist()
    ([1.0, 0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0, 0.0])
    """
    return ((np.arange(int(d)) + int(parity)) % 2 == 0).astype("float32")


def checkerboard_mask(h: int, w: int, parity: int = 0) -> np.ndarray:
    """`(h, w, 1)` RealNVP checkerboard: 1 where `(row + column + parity)` is even.

    Example:
    >>> checkerboard_mask(2, 3, 1)[..., 0].tolist()
    [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]
    """
    rows, cols = np.meshgrid(np.arange(int(h)), np.arange(int(w)), indexing="ij")
    return ((rows + cols + int(parity)) % 2 == 0).astype("float32")[..., None]


def channel_mask(c: int, parity: int = 0) -> np.ndarray:
    """`(c,)` RealNVP channel mask: parity 0 keeps the first `c // 2` channels, 1 the rest.

    Example:
    >>> channel_mask(4, 0).tolist(), channel_mask(4, 1).tolist()
    ([1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0])
    """
    first = (np.arange(int(c)) < int(c) // 2).astype("float32")
    return first if int(parity) == 0 else 1.0 - first


class _Coupling(Bijector):
    """Shared by the couplings: the mask and the conditioner network beta(x_B)."""

    outputs_per_dim = 1  # parameters the conditioner predicts per dimension of x

    def __init__(
        self,
        mask: Any,
        hidden_units: Sequence[int] = (64, 64),
        conditioner: str = "auto",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        mask = np.asarray(mask, dtype="float32")
        if mask.size == 0 or not np.all((mask == 0) | (mask == 1)):
            raise ValueError(f"{owner}: mask must be a non-empty array of 0s and 1s; got {mask}.")
        if conditioner not in ("auto", "mlp", "conv"):
            raise ValueError(f"{owner}: conditioner must be 'auto', 'mlp' or 'conv'.")
        self.mask = mask
        if isinstance(hidden_units, (int, np.integer)):
            hidden_units = (hidden_units,)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        if any(u < 1 for u in self.hidden_units):
            raise ValueError(f"{owner}: hidden_units must be positive; got {hidden_units}.")
        self.conditioner = conditioner
        self.seed = seed

    def build(self, input_shape: Sequence[int | None]) -> None:
        example = tuple(input_shape[1:])
        try:
            np.broadcast_shapes(self.mask.shape, example)
        except ValueError:
            raise ValueError(
                f"{type(self).__name__}: mask of shape {self.mask.shape} does not broadcast "
                f"against examples of shape {example}."
            ) from None
        kind = self.conditioner
        if kind == "auto":
            kind = "conv" if len(example) == 3 else "mlp"
        if kind == "conv" and len(example) != 3:
            raise ValueError(f"A conv conditioner takes images (h, w, c); got {example}.")
        width = self.outputs_per_dim * (example[-1] if kind == "conv" else math.prod(example))

        def init(index: int) -> Any:
            return keras.initializers.GlorotUniform(
                None if self.seed is None else self.seed + index
            )

        def bias(index: int, fan_in: int) -> Any:
            # Random hidden biases, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch's default:
            # with zeros every first-layer ReLU would bend at the same point, x_B = 0, which
            # costs the 2-D flows a visible part of their likelihood.
            bound = 1.0 / math.sqrt(fan_in)
            seed = None if self.seed is None else self.seed + 50 + index
            return keras.initializers.RandomUniform(-bound, bound, seed=seed)

        fan_ins = [example[-1] * 9 if kind == "conv" else math.prod(example)]
        fan_ins += [u * (9 if kind == "conv" else 1) for u in self.hidden_units[:-1]]
        if kind == "conv":
            hidden = [
                keras.layers.Conv2D(
                    u,
                    3,
                    padding="same",
                    activation="relu",
                    kernel_initializer=init(i),
                    bias_initializer=bias(i, fan_ins[i]),
                )
                for i, u in enumerate(self.hidden_units)
            ]
            last = keras.layers.Conv2D(width, 3, padding="same", kernel_initializer="zeros")
        else:
            hidden = [
                keras.layers.Dense(
                    u,
                    activation="relu",
                    kernel_initializer=init(i),
                    bias_initializer=bias(i, fan_ins[i]),
                )
                for i, u in enumerate(self.hidden_units)
            ]
            last = keras.layers.Dense(width, kernel_initializer="zeros")
        self._flatten = kind == "mlp"
        self.network = [*hidden, last]
        shape = (None, math.prod(example)) if self._flatten else (None, *example)
        for layer in self.network:
            layer.build(shape)
            shape = (*shape[:-1], layer.units if kind == "mlp" else layer.filters)

    def _conditioner(self, x: Any) -> list[Any]:
        """beta(x_B): `outputs_per_dim` tensors shaped like `x`, read from x * mask only."""
        mask = ops.convert_to_tensor(self.mask, dtype=x.dtype)
        h = x * mask
        if self._flatten:
            h = ops.reshape(h, (-1, math.prod(tuple(x.shape[1:]))))
        for layer in self.network:
            h = layer(h)
        parts = ops.split(h, self.outputs_per_dim, axis=-1)
        return [ops.reshape(p, (-1, *tuple(x.shape[1:]))) * (1.0 - mask) for p in parts]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "mask": self.mask.tolist(),
                "hidden_units": list(self.hidden_units),
                "conditioner": self.conditioner,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="mp_keras")
class AdditiveCoupling(_Coupling):
    """NICE's additive coupling: x_A = z_A + m(z_B), x_B = z_B; log-det exactly 0.

    Dinh, Krueger & Bengio, "NICE", 2014 (notes, 7.5). `mask` is 1 on B (kept).

    Args:
        mask: array of 0/1 broadcasting against one example (e.g. `alternating_mask(d)`).
        hidden_units: tuple of ints. Hidden ReLU layers of m. Defaults to `(64, 64)`.
        conditioner: str. `"mlp"` (on the flattened example), `"conv"` (3x3 convs on
            images) or `"auto"` (conv for rank-3 examples). Defaults to `"auto"`.
        seed: int or None. Seed of the hidden layers' initial weights. Defaults to None.

    Example:
    >>> layer = AdditiveCoupling(alternating_mask(4), hidden_units=(8,))
    >>> x, log_det = layer.forward(np.ones((2, 4), "float32"))
    >>> ops.convert_to_numpy(log_det).tolist()
    [0.0, 0.0]
    """

    def _forward(self, z: Any) -> tuple[Any, Any]:
        (shift,) = self._conditioner(z)
        return z + shift, per_example_sum(ops.zeros_like(z))

    def _inverse(self, x: Any) -> tuple[Any, Any]:
        (shift,) = self._conditioner(x)
        return x - shift, per_example_sum(ops.zeros_like(x))


@keras.saving.register_keras_serializable(package="mp_keras")
class AffineCoupling(_Coupling):
    """RealNVP's affine coupling: x_A = z_A * exp(s(z_B)) + t(z_B), x_B = z_B.

    Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017
    (notes, 7.5). s = scale * tanh(raw) keeps every factor in [e^-scale, e^scale];
    log|det df/dz| = sum_A s. `mask` is 1 on B (kept and conditioning).

    Args:
        mask: array of 0/1 broadcasting against one example: `alternating_mask(d)`,
            `checkerboard_mask(h, w)` or `channel_mask(c)`.
        hidden_units: tuple of ints. Hidden ReLU layers of the conditioner. Defaults
            to `(64, 64)`.
        scale: float. Bound of |s|. Defaults to `1.0`.
        conditioner: str. `"mlp"`, `"conv"` or `"auto"`. Defaults to `"auto"`.
        seed: int or None. Seed of the hidden layers' initial weights. Defaults to None.

    Example:
    >>> layer = AffineCoupling(checkerboard_mask(4, 4), hidden_units=(8,))
    >>> x, log_det = layer.forward(np.ones((2, 4, 4, 1), "float32"))
    >>> tuple(x.shape), ops.convert_to_numpy(log_det).tolist()  # starts as the identity
    ((2, 4, 4, 1), [0.0, 0.0])
    """

    outputs_per_dim = 2

    def __init__(
        self,
        mask: Any,
        hidden_units: Sequence[int] = (64, 64),
        scale: float = 1.0,
        conditioner: str = "auto",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(mask, hidden_units, conditioner, seed, **kwargs)
        if not float(scale) > 0:
            raise ValueError(f"AffineCoupling: scale must be positive; got {scale!r}.")
        self.scale = float(scale)

    def _shift_and_log_scale(self, v: Any) -> tuple[Any, Any]:
        raw, shift = self._conditioner(v)
        return shift, self.scale * ops.tanh(raw)  # zero on B: tanh(0) = 0

    def _forward(self, z: Any) -> tuple[Any, Any]:
        shift, log_scale = self._shift_and_log_scale(z)
        return z * ops.exp(log_scale) + shift, per_example_sum(log_scale)

    def _inverse(self, x: Any) -> tuple[Any, Any]:
        shift, log_scale = self._shift_and_log_scale(x)
        return (x - shift) * ops.exp(-log_scale), -per_example_sum(log_scale)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}
