"""Input checks of `DDPM` (and its text and latent subclasses): the constructor's
arguments, and the tensors, steps and labels its sampling and export methods take."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from keras import ops

from mp_keras.diffusion import VARIANCES
from mp_keras.models._checks import (
    check_data_range,
    check_labels,
    check_no_targets,
    check_shape,
    check_values,
)

NETWORKS = ("auto", "mlp", "unet")


def check_arguments(
    owner: str,
    input_shape: Sequence[int],
    network: str,
    variance: str,
    num_classes: int | None,
    condition_dropout: float,
    data_range: Sequence[float] | None,
    num_levels: int | None,
    ema_momentum: float | None,
) -> tuple[tuple[int, ...], str, tuple[float, float] | None]:
    """Raises `ValueError` on a bad constructor argument of `owner`; returns the data
    shape, the network kind (`"mlp"` or `"unet"`, resolving `"auto"`) and the range."""
    data_shape = tuple(int(d) for d in input_shape)
    if not data_shape or min(data_shape) < 1:
        raise ValueError(f"{owner}: input_shape must be positive sizes, got {input_shape!r}.")
    if network not in NETWORKS:
        raise ValueError(f"{owner}: network must be one of {NETWORKS}, got {network!r}.")
    kind = ("mlp" if len(data_shape) == 1 else "unet") if network == "auto" else network
    if (kind == "mlp") != (len(data_shape) == 1) or len(data_shape) not in (1, 3):
        raise ValueError(
            f"{owner}: network {kind!r} takes examples of shape "
            f"{'(d,)' if kind == 'mlp' else '(height, width, channels)'}; got "
            f"input_shape {data_shape}."
        )
    if variance not in VARIANCES:
        raise ValueError(f"{owner}: variance must be one of {VARIANCES}, got {variance!r}.")
    if num_classes is not None and (isinstance(num_classes, bool) or int(num_classes) < 1):
        raise ValueError(
            f"{owner}: num_classes must be a positive int or None, got {num_classes!r}."
        )
    if not 0.0 <= condition_dropout < 1.0:
        raise ValueError(
            f"{owner}: condition_dropout must be in [0, 1), got {condition_dropout!r}."
        )
    if data_range is not None:
        data_range = (float(data_range[0]), float(data_range[1]))
        if not data_range[0] < data_range[1]:
            raise ValueError(
                f"{owner}: data_range must be (lo, hi) with lo < hi, got {data_range!r}."
            )
    if num_levels is not None and (isinstance(num_levels, bool) or int(num_levels) < 2):
        raise ValueError(f"{owner}: num_levels must be an int >= 2 or None, got {num_levels!r}.")
    if ema_momentum is not None and not 0.0 < ema_momentum < 1.0:
        raise ValueError(f"{owner}: ema_momentum must be in (0, 1) or None, got {ema_momentum!r}.")
    return data_shape, kind, data_range


def checked_tensor(owner: str, x: Any, shape: Sequence[int], what: str, dtype: str) -> Any:
    """`x` as a tensor of `dtype`, after checking its example shape (and, for NumPy
    input, that its values are finite)."""
    check_shape(owner, x, shape, what=what)
    if isinstance(x, np.ndarray):
        check_values(owner, x)
    return ops.convert_to_tensor(x, dtype=dtype)


def checked_timesteps(owner: str, schedule: Any, t: Any, batch: Any) -> Any:
    """Steps `t` as int32 `(batch,)`: an int broadcasts; given values must lie in 1..T of
    `schedule` and number one per example. Tensors pass unchecked (inside a trace)."""
    if isinstance(t, (int, np.integer, float, np.floating, list, tuple, np.ndarray)):
        t = np.asarray(t)
        schedule.check_timesteps(t)
        t = np.broadcast_to(t, (int(batch),)) if t.ndim == 0 else t
        if t.shape != (int(batch),):
            raise ValueError(
                f"{owner} expects t of shape ({int(batch)},), one step per example; got {t.shape}."
            )
        t = t.astype("int32")
    return ops.convert_to_tensor(t, dtype="int32")


class RangedData:
    """Mixin of the models on data of a fixed shape in a fixed range (`DDPM` and the
    `NoisyClassifier` that guides it): `validate_data` checks one array, `validate_inputs`
    a single array given to `fit` or `predict` (a list is a model's own `[x_t, t, ...]`).
    Uses the model's `data_shape` and `data_range`.
    """

    def validate_data(self, x: np.ndarray) -> None:
        owner = type(self).__name__
        check_shape(owner, x, self.data_shape)
        check_values(owner, x)
        check_data_range(owner, x, self.data_range)

    def validate_inputs(self, x: np.ndarray) -> None:
        if not isinstance(x, (list, tuple)):
            self.validate_data(x)


class DiffusionInputs(RangedData):
    """Mixin of `DDPM`: checks and conversions of what its methods are given.

    Uses the model's `data_shape`, `process_shape`, `schedule`, `num_classes`,
    `data_range`, `embed_condition` and `null_condition`.
    """

    def _process_tensor(self, x: Any, what: str) -> Any:
        return checked_tensor(type(self).__name__, x, self.process_shape, what, self.compute_dtype)

    def _timesteps(self, t: Any, batch: Any) -> Any:
        return checked_timesteps(type(self).__name__, self.schedule, t, batch)

    def _condition(self, labels: Any, batch: Any, guidance: Any) -> Any:
        owner = type(self).__name__
        if not self.is_conditional:
            if labels is not None:
                raise ValueError(f"{owner} is unconditional; it takes no labels.")
            if not _is_zero(guidance):
                raise ValueError(
                    f"{owner} is unconditional; guidance needs a class-conditional model."
                )
            return None
        if labels is None:
            if not _is_zero(guidance):
                raise ValueError(f"{owner}: guidance needs labels.")
            return self.null_condition(batch)
        if isinstance(labels, (int, np.integer, list, tuple, np.ndarray)):
            labels = np.asarray(labels)
            labels = np.broadcast_to(labels, (int(batch),)) if labels.ndim == 0 else labels
            check_labels(owner, labels, self.num_classes)
            if len(labels) != int(batch):
                raise ValueError(
                    f"{owner} expects {int(batch)} labels, one per example; got {len(labels)}."
                )
            labels = labels.reshape(-1).astype("int32")
        return self.embed_condition(labels)

    def _sampling_labels(self, num: int, labels: Any, guidance: float) -> np.ndarray | None:
        owner = type(self).__name__
        if not self.is_conditional:
            self._condition(labels, num, guidance)  # raises on labels or guidance
            return None
        if labels is None:
            raise ValueError(
                f"{owner} is class-conditional ({self.num_classes} classes): pass labels, an "
                f"int or {num} class indices."
            )
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = np.full((num,), labels)
        check_labels(owner, labels, self.num_classes)
        if labels.shape[0] != num:
            raise ValueError(
                f"{owner} expects {num} labels, one per sample; got {labels.shape[0]}."
            )
        return labels.reshape(-1).astype("int32")

    def validate_targets(self, y: np.ndarray | None) -> None:
        owner = type(self).__name__
        if not self.is_conditional:
            check_no_targets(owner, y)
        elif y is None:
            raise ValueError(
                f"{owner} is class-conditional ({self.num_classes} classes) and trains on "
                "(x, labels); got no labels."
            )
        else:
            check_labels(owner, y, self.num_classes)


def _is_zero(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == 0
