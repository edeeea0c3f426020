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
