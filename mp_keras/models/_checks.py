"""Input checks at the boundary of the models: say what was expected, what arrived."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def check_shape(owner: str, x: Any, expected: Sequence[int], what: str = "inputs") -> None:
    """Raises `ValueError` unless `x` has shape `(batch, *expected)`.

    Works on NumPy arrays, eager tensors and symbolic tensors (unknown sizes pass).
    """
    expected = tuple(expected)
    shape = tuple(getattr(x, "shape", np.shape(x)))
    want = "(batch, " + ", ".join(str(d) for d in expected) + ")"
    if len(shape) != len(expected) + 1:
        raise ValueError(
            f"{owner} expects {what} of rank {len(expected) + 1} with shape {want}; "
            f"got rank {len(shape)} with shape {shape}."
        )
    for got, want_dim in zip(shape[1:], expected):
        if got is not None and got != want_dim:
            raise ValueError(f"{owner} expects {what} of shape {want}; got shape {shape}.")


def check_values(owner: str, x: np.ndarray, *, binary: bool = False) -> None:
    """Raises `ValueError` on non-finite values, or on non-binary ones if `binary`."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
        raise ValueError(f"{owner} expects numeric inputs; got dtype {x.dtype}.")
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"{owner} expects finite inputs; got {bad} NaN or infinite values.")
    if binary and not np.all((x == 0) | (x == 1)):
        odd = np.unique(x[(x != 0) & (x != 1)])[:5]
        raise ValueError(
            f"{owner} has a Bernoulli decoder and expects binary inputs in {{0, 1}}; got "
            f"values such as {odd.tolist()}. Binarize the data (e.g. the dataset "
            "'digits_binarized') or use likelihood='gaussian'."
        )


def check_labels(
    owner: str, y: Any, num_classes: int, label_shape: Sequence[int] = (), what: str = "labels"
) -> None:
    """Raises `ValueError` unless `y` holds integer class indices in `[0, num_classes)`.

    `y` must have shape `(batch, *label_shape)`; a trailing axis of size 1 is accepted
    (Keras' sparse cross-entropy takes both). Float arrays must be integer-valued.
    """
    y = np.asarray(y)
    label_shape = tuple(label_shape)
    shape = y.shape[1:]
    if shape not in (label_shape, (*label_shape, 1)):
        want = "(batch, " + ", ".join(str(d) for d in label_shape) + ")"
        want = want.replace(", )", ")")
        raise ValueError(
            f"{owner} expects {what} of shape {want} (class indices); got shape {y.shape}."
        )
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"{owner} expects integer {what}; got dtype {y.dtype}.")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            odd = np.unique(y[~np.isfinite(y) | (y != np.round(y))])[:5]
            raise ValueError(
                f"{owner} expects integer class indices as {what}; got values such as "
                f"{odd.tolist()} (dtype {y.dtype})."
            )
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = np.unique(y[(y < 0) | (y >= num_classes)])[:5]
        raise ValueError(
            f"{owner} has {num_classes} classes and expects {what} in [0, {num_classes}); "
            f"got values such as {bad.astype(np.int64).tolist()}."
        )


def check_no_targets(owner: str, y: Any) -> None:
    """Raises `ValueError` if targets were given to a model that learns from x alone."""
    if y is not None:
        raise ValueError(
            f"{owner} learns from the inputs alone and would ignore targets; got targets of "
            f"shape {tuple(np.shape(y))}. Call fit(x) without y (or a dataset of x only)."
        )


def check_count(owner: str, name: str, value: Any) -> int:
    """`value` as an int >= 1, else `ValueError` (booleans and fractions are refused)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer, float, np.floating))
        or int(value) != value
        or value < 1
    ):
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}.")
    return int(value)


def check_data_range(owner: str, x: np.ndarray, data_range: Sequence[float] | None) -> None:
    """Raises `ValueError` unless every value of `x` lies in `data_range` (if given)."""
    if data_range is None or not np.size(x):
        return
    lo, hi = data_range
    x = np.asarray(x)
    if x.min() < lo - 1e-6 or x.max() > hi + 1e-6:
        raise ValueError(
            f"{owner} expects data in data_range [{lo}, {hi}]; got values from "
            f"{x.min()} to {x.max()}. Rescale it or set data_range."
        )
