"""Argument checks of the layers' constructors: say what was expected, what arrived."""

from __future__ import annotations

from typing import Any

import numpy as np


def int_at_least(owner: str, name: str, value: Any, low: int = 1) -> int:
    """`value` as an int >= `low`, else `ValueError` (booleans and floats are refused).

    Example:
    >>> int_at_least("WaveNet", "num_blocks", 2)
    2
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        wanted = "a positive int" if low == 1 else f"an int >= {low}"
        raise ValueError(f"{owner}: {name} must be {wanted}, got {value!r}.")
    return int(value)
