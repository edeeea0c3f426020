"""Data to the space of the process and back: images in [lo, hi] live in [-1, 1].

A diffusion model and the classifier that guides it must agree on this map, so both
call these two functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras import ops


def to_process_space(x: Any, data_range: Sequence[float] | None, dtype: str = "float32") -> Any:
    """[lo, hi] -> [-1, 1] (identity when `data_range` is None).

    Example:
    >>> from keras import ops
    >>> ops.convert_to_numpy(to_process_space([0.0, 0.5, 1.0], (0.0, 1.0))).tolist()
    [-1.0, 0.0, 1.0]
    """
    x = ops.convert_to_tensor(x, dtype=dtype)
    if data_range is None:
        return x
    lo, hi = data_range
    return 2.0 * (x - lo) / (hi - lo) - 1.0


def to_data_space(z: Any, data_range: Sequence[float] | None) -> Any:
    """The inverse of `to_process_space`, clipped to [lo, hi]."""
    if data_range is None:
        return z
    lo, hi = data_range
    return ops.clip(lo + (z + 1.0) * 0.5 * (hi - lo), lo, hi)
