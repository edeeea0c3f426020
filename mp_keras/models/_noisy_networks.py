"""The networks of `NoisyClassifier`: class logits of a noisy x_t given its step t."""

from __future__ import annotations

from typing import Any

import keras

from mp_keras.layers.time_embedding import SinusoidalTimeEmbedding


def _time_embedding(t: Any, time_dim: int, width: int, name: str) -> Any:
    e = SinusoidalTimeEmbedding(time_dim, name="time_sinusoidal")(t)
    e = keras.layers.Dense(width, activation="silu", name="time_dense0")(e)
    return keras.layers.Dense(width, name=name)(e)  # (batch, width)


def mlp_network(
    shape: tuple[int, ...], classes: int, hidden: tuple[int, ...], time_dim: int
) -> keras.Model:
    """h <- SiLU(W h + U_l e + b) for each hidden layer, then Dense(classes)."""
    x_t, t = keras.Input(shape, name="x_t"), keras.Input((), name="t")
    e = _time_embedding(t, time_dim, hidden[0], "time_embedding")
    h = x_t  # (batch, d)
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(units, name=f"dense{i}")(h)
        h = keras.layers.Add()([h, keras.layers.Dense(units, name=f"time{i}")(e)])
        h = keras.layers.Activation("silu")(h)
    logits = keras.layers.Dense(classes, name="logits")(h)
    return keras.Model([x_t, t], logits, name="network")


def cnn_network(
    shape: tuple[int, ...], classes: int, filters: tuple[int, ...], time_dim: int
) -> keras.Model:
    """Per level: conv 3x3 + the step embedding per channel, SiLU, conv 3x3, SiLU, then
    2x2 average pooling (not after the last level); global average pooling, Dense."""
    x_t, t = keras.Input(shape, name="x_t"), keras.Input((), name="t")
    e = _time_embedding(t, time_dim, filters[0], "time_embedding")
    h = x_t  # (batch, height, width, channels)
    for i, width in enumerate(filters):
        h = keras.layers.Conv2D(width, 3, padding="same", name=f"conv{i}a")(h)
        bias = keras.layers.Reshape((1, 1, width))(keras.layers.Dense(width, name=f"time{i}")(e))
        h = keras.layers.Activation("silu")(keras.layers.Add()([h, bias]))
        h = keras.layers.Conv2D(width, 3, padding="same", activation="silu", name=f"conv{i}b")(h)
        if i < len(filters) - 1 and min(h.shape[1], h.shape[2]) >= 2:
            h = keras.layers.AveragePooling2D(2, name=f"pool{i}")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)  # (batch, filters[-1])
    logits = keras.layers.Dense(classes, name="logits")(h)
    return keras.Model([x_t, t], logits, name="network")
