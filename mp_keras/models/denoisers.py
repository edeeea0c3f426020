"""The noise-prediction networks eps_theta(x_t, t) of diffusion models (notes, section 9.3).

Networks only: they know nothing about the schedule or the sampler (`mp_keras.diffusion`),
which `mp_keras.models.DDPM` pairs them with. Both take a list of inputs

    [x_t, t]             x_t (batch, *shape) float, t (batch,) int or float step
    [x_t, t, condition]  when `condition_dim > 0`: condition (batch, condition_dim) float,

an embedding of the class or text the sample is conditioned on (the DDPM owns the
embedding table), and return eps_hat with the shape of x_t.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras

from mp_keras.layers.time_embedding import SinusoidalTimeEmbedding


def positive_ints(owner: str, name: str, values: Sequence[int]) -> tuple[int, ...]:
    """`values` as a tuple of ints; `ValueError` unless non-empty and all positive."""
    values = tuple(values)
    if not values or any(isinstance(v, bool) or int(v) != v or v < 1 for v in values):
        raise ValueError(
            f"{owner}: {name} must be a non-empty tuple of positive ints, got {values!r}."
        )
    return tuple(int(v) for v in values)


def _check_dims(owner: str, time_dim: int, condition_dim: int) -> None:
    if isinstance(time_dim, bool) or int(time_dim) != time_dim or time_dim < 2 or time_dim % 2:
        raise ValueError(f"{owner}: time_dim must be an even int >= 2, got {time_dim!r}.")
    if isinstance(condition_dim, bool) or int(condition_dim) != condition_dim or condition_dim < 0:
        raise ValueError(f"{owner}: condition_dim must be an int >= 0, got {condition_dim!r}.")


def _inputs(shape: tuple[int, ...], condition_dim: int) -> list[Any]:
    inputs = [
        keras.Input(shape, name="x_t"),
        keras.Input((), name="t"),  # float, so integer steps and real times both fit
    ]
    if condition_dim:
        inputs.append(keras.Input((condition_dim,), name="condition"))
    return inputs


def _embedding(inputs: list[Any], time_dim: int, width: int) -> Any:
    """sinusoidal(t) -> Dense -> SiLU -> Dense, plus Dense(condition): `(batch, width)`."""
    e = SinusoidalTimeEmbedding(time_dim, name="time_sinusoidal")(inputs[1])
    e = keras.layers.Dense(width, activation="silu", name="time_dense0")(e)
    e = keras.layers.Dense(width, name="time_dense1")(e)
    if len(inputs) == 3:
        c = keras.layers.Dense(width, name="condition_dense")(inputs[2])
        e = keras.layers.Add(name="embedding")([e, c])
    return e


class _Denoiser(keras.Model):
    """Shared config plumbing: the functional graph is rebuilt from the constructor's
    arguments (keras-hub's pattern), so `get_config` holds plain values only."""

    def _base_config(self) -> dict[str, Any]:
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        return cls(**config)


@keras.saving.register_keras_serializable(package="mp_keras")
class MLPDenoiser(_Denoiser):
    """eps_theta(x_t, t) for vector data (e.g. 2-D toy distributions): an MLP with the step
    embedding added to every hidden layer.

    Ho et al. 2020's design in its smallest form: the step t is embedded sinusoidally,
    then by Dense -> SiLU -> Dense to `hidden_units[0]` units (e); the condition, when
    given, is projected by a Dense layer and added to e. Each hidden layer computes
    h <- SiLU(W h + U_l e + b), so every layer knows the noise level (adding, rather
    than concatenating once at the input, keeps t visible deep in the network). A final
    Dense layer gives eps_hat.

    Inputs `[x_t (batch, data_dim), t (batch,)]`, or `[x_t, t, condition (batch,
    condition_dim)]` when `condition_dim > 0`; output `(batch, data_dim)`.

    Args:
        data_dim: int. Size d of one example. Defaults to `2`.
        hidden_units: tuple of ints. Widths of the hidden layers. Defaults to
            `(128, 128, 128)`.
        time_dim: int. Size of the sinusoidal step embedding (even). Defaults to `32`.
        condition_dim: int. Size of the condition vector; 0 for none. Defaults to `0`.

    Example:
    >>> import numpy as np
    >>> net = MLPDenoiser(data_dim=2, hidden_units=(16, 16), time_dim=8)
    >>> eps = net([np.zeros((3, 2), "float32"), np.array([1, 5, 9])])
    >>> tuple(eps.shape)
    (3, 2)
    """

    def __init__(
        self,
        data_dim: int = 2,
        hidden_units: Sequence[int] = (128, 128, 128),
        time_dim: int = 32,
        condition_dim: int = 0,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        if isinstance(data_dim, bool) or int(data_dim) != data_dim or data_dim < 1:
            raise ValueError(f"{owner}: data_dim must be a positive int, got {data_dim!r}.")
        hidden = positive_ints(owner, "hidden_units", hidden_units)
        _check_dims(owner, time_dim, condition_dim)

        # === Functional Model ===
        inputs = _inputs((int(data_dim),), int(condition_dim))
        e = _embedding(inputs, int(time_dim), hidden[0])  # (batch, hidden_units[0])
        h = inputs[0]  # (batch, data_dim)
        for i, units in enumerate(hidden):
            h = keras.layers.Dense(units, name=f"dense{i}")(h)
            h = keras.layers.Add(name=f"add_time{i}")(
                [h, keras.layers.Dense(units, use_bias=False, name=f"time_to{i}")(e)]
            )
            h = keras.layers.Activation("silu", name=f"silu{i}")(h)
        eps = keras.layers.Dense(int(data_dim), name="eps")(h)
        super().__init__(inputs=inputs, outputs=eps, **kwargs)

        # === Config ===
        self.data_dim = int(data_dim)
        self.hidden_units = hidden
        self.time_dim = int(time_dim)
        self.condition_dim = int(condition_dim)

    def get_config(self) -> dict[str, Any]:
        config = self._base_config()
        config.update(
            {
                "data_dim": self.data_dim,
                "hidden_units": list(self.hidden_units),
                "time_dim": self.time_dim,
                "condition_dim": self.condition_dim,
            }
        )
        return config


def _group_norm(x: Any, groups: int, name: str) -> Any:
    # The largest group count <= `groups` that divides the channels (tiny test widths).
    channels = int(x.shape[-1])
    return keras.layers.GroupNormalization(math.gcd(groups, channels), name=name)(x)


def _residual_block(x: Any, e: Any, width: int, groups: int, name: str) -> Any:
    """GroupNorm -> SiLU -> Conv3x3 -> GroupNorm -> scale and shift by e -> SiLU -> Conv3x3,
    plus the (1x1-projected) input.

    Ho et al. 2020's ResNet block adds Dense(e) to the features before the second
    normalization; here the step modulates the normalized features instead,
    h <- h * (1 + s(e)) + b(e) (Nichol & Dhariwal 2021's scale-shift norm): a per-channel
    offset added before a GroupNorm with one channel per group (narrow test widths)
    would be normalized away.
    """
    h = _group_norm(x, groups, f"{name}_norm0")
    h = keras.layers.Activation("silu", name=f"{name}_silu0")(h)
    h = keras.layers.Conv2D(width, 3, padding="same", name=f"{name}_conv0")(h)
    h = _group_norm(h, groups, f"{name}_norm1")
    film = keras.layers.Dense(2 * width, name=f"{name}_time")(e)  # (batch, 2 * width)
    film = keras.layers.Reshape((1, 1, 2 * width), name=f"{name}_time_map")(film)
    scale, shift = film[..., :width], film[..., width:]
    h = h * (1.0 + scale) + shift
    h = keras.layers.Activation("silu", name=f"{name}_silu1")(h)
    h = keras.layers.Conv2D(width, 3, padding="same", name=f"{name}_conv1")(h)
    if int(x.shape[-1]) != width:
        x = keras.layers.Conv2D(width, 1, name=f"{name}_skip")(x)
    return keras.layers.Add(name=f"{name}_out")([x, h])


@keras.saving.register_keras_serializable(package="mp_keras")
class UNetDenoiser(_Denoiser):
    """eps_theta(x_t, t) for images: a small U-Net of residual blocks that see the step.

    The chapter 3 U-Net (`mp_keras.models.UNet`: encoder levels, skip concatenations,
    decoder) adapted as Ho et al. 2020 do: every level is a residual block whose features
    get the step embedding (sinusoidal -> Dense -> SiLU -> Dense, then one Dense per block
    giving a per-channel scale and shift), GroupNormalization instead of batch normalization (batch
    statistics would mix the noise levels of a batch and differ between training and
    sampling), SiLU activations, strided-convolution downsampling and nearest-neighbour
    upsampling (no pooling indices). A condition vector, when given, is projected and
    added to the step embedding. The last convolution is zero-initialised, so training
    starts from eps_hat = 0 (the mean of eps).

    Layout, for `filters = (f_0, ..., f_{L-1})`: a 3x3 stem convolution to f_0; level l
    is a residual block of width f_l, whose output is kept as skip l, followed by a
    stride-2 3x3 convolution when the current height and width are even (28 -> 14 -> 7
    with two levels; an odd size such as 7 stays); a middle residual block of width
    f_{L-1}; then, from the deepest level up, an upsampling by 2 (where the encoder
    downsampled) with a 3x3 convolution, a concatenation with skip l and a residual block
    of width f_l; GroupNorm -> SiLU -> 3x3 convolution to the input's channels.

    Inputs `[x_t (batch, height, width, channels), t (batch,)]`, or `[x_t, t, condition
    (batch, condition_dim)]` when `condition_dim > 0`; output the shape of x_t.

    Args:
        input_shape: tuple of ints. `(height, width, channels)`. Defaults to `(8, 8, 1)`.
        filters: tuple of ints. Width of each level. Defaults to `(32, 64)`.
        time_dim: int. Size of the step embedding (even). Defaults to `64`.
        condition_dim: int. Size of the condition vector; 0 for none. Defaults to `0`.
        groups: int. Groups of each GroupNormalization (reduced to a divisor of the
            channels where needed). Defaults to `8`.

    Example:
    >>> import numpy as np
    >>> net = UNetDenoiser(input_shape=(8, 8, 1), filters=(4, 4), time_dim=8, groups=4)
    >>> eps = net([np.zeros((2, 8, 8, 1), "float32"), np.array([3, 7])])
    >>> tuple(eps.shape)
    (2, 8, 8, 1)
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (8, 8, 1),
        filters: Sequence[int] = (32, 64),
        time_dim: int = 64,
        condition_dim: int = 0,
        groups: int = 8,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        shape = positive_ints(owner, "input_shape", input_shape)
        if len(shape) != 3:
            raise ValueError(
                f"{owner}: input_shape must be (height, width, channels), got {shape}."
            )
        widths = positive_ints(owner, "filters", filters)
        _check_dims(owner, time_dim, condition_dim)
        if isinstance(groups, bool) or int(groups) != groups or groups < 1:
            raise ValueError(f"{owner}: groups must be a positive int, got {groups!r}.")

        # === Functional Model ===
        inputs = _inputs(shape, int(condition_dim))
        e = _embedding(inputs, int(time_dim), int(time_dim))  # (batch, time_dim)
        h = keras.layers.Conv2D(widths[0], 3, padding="same", name="stem")(inputs[0])
        skips, downsampled = [], []
        for level, width in enumerate(widths):
            h = _residual_block(h, e, width, int(groups), f"down{level}")
            skips.append(h)
            height, wide = int(h.shape[1]), int(h.shape[2])
            down = height % 2 == 0 and wide % 2 == 0 and height > 1 and wide > 1
            downsampled.append(down)
            if down:  # (batch, height / 2, width / 2, f_l)
                h = keras.layers.Conv2D(
                    width, 3, strides=2, padding="same", name=f"downsample{level}"
                )(h)
        h = _residual_block(h, e, widths[-1], int(groups), "middle")
        for level in reversed(range(len(widths))):
            if downsampled[level]:
                h = keras.layers.UpSampling2D(2, name=f"upsample{level}")(h)
                h = keras.layers.Conv2D(
                    widths[level], 3, padding="same", name=f"upsample{level}_conv"
                )(h)
            h = keras.layers.Concatenate(name=f"skip{level}")([skips[level], h])
            h = _residual_block(h, e, widths[level], int(groups), f"up{level}")
        h = _group_norm(h, int(groups), "out_norm")
        h = keras.layers.Activation("silu", name="out_silu")(h)
        eps = keras.layers.Conv2D(
            shape[-1], 3, padding="same", kernel_initializer="zeros", name="eps"
        )(h)
        super().__init__(inputs=inputs, outputs=eps, **kwargs)

        # === Config ===
        self.data_shape = shape
        self.filters = widths
        self.time_dim = int(time_dim)
        self.condition_dim = int(condition_dim)
        self.groups = int(groups)

    def get_config(self) -> dict[str, Any]:
        config = self._base_config()
        config.update(
            {
                "input_shape": list(self.data_shape),
                "filters": list(self.filters),
                "time_dim": self.time_dim,
                "condition_dim": self.condition_dim,
                "groups": self.groups,
            }
        )
        return config


__all__ = ["MLPDenoiser", "UNetDenoiser"]
