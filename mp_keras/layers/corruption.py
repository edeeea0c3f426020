"""Input corruptions of denoising and inpainting autoencoders (notes, section 5.2).

Functions of `keras.ops` and `keras.random`, usable inside a training step: `seed` is an
int (the same draw every time) or a `keras.random.SeedGenerator` (a new draw per call).

Example:
>>> import keras
>>> import numpy as np
>>> x = np.full((2, 4, 4, 1), 0.5, "float32")
>>> mask = square_mask(2, 4, 4, size=2, seed=0)
>>> keras.ops.convert_to_numpy(mask).sum(axis=(1, 2, 3)).tolist()
[4.0, 4.0]
>>> y = keras.ops.convert_to_numpy(salt_and_pepper(x, rate=1.0, seed=0))
>>> bool(np.all((y == 0) | (y == 1)))
True
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def gaussian_noise(x: Any, std: float, seed: Any) -> Any:
    """x + std * eps with eps ~ N(0, I); values are not clipped."""
    x = ops.convert_to_tensor(x)
    return x + std * keras.random.normal(ops.shape(x), dtype=x.dtype, seed=seed)


def salt_and_pepper(x: Any, rate: float, seed: Any) -> Any:
    """Each value, independently with probability `rate`, set to 0 or 1 (equally likely)."""
    x = ops.convert_to_tensor(x)
    u = keras.random.uniform(ops.shape(x), dtype=x.dtype, seed=seed)
    # u < rate/2: pepper (0); rate/2 <= u < rate: salt (1); u >= rate: untouched.
    salt = ops.cast(u >= rate / 2, x.dtype)
    return ops.where(u < rate, salt, x)


def square_mask(
    batch: Any, height: int, width: int, size: int, seed: Any, dtype: str = "float32"
) -> Any:
    """1 inside one `size` x `size` square per image, 0 elsewhere: `(batch, height, width, 1)`.

    The square lies inside the image; each of its (height - size + 1) * (width - size + 1)
    positions is equally likely.
    """
    u = keras.random.uniform((batch, 2), dtype="float32", seed=seed)
    counts = ops.convert_to_tensor([height - size + 1, width - size + 1], dtype="float32")
    corner = ops.minimum(ops.floor(u * counts), counts - 1.0)  # (batch, 2): top, left
    rows = ops.arange(height, dtype="float32")[None, :] - corner[:, :1]  # (batch, height)
    cols = ops.arange(width, dtype="float32")[None, :] - corner[:, 1:]  # (batch, width)
    in_rows = ops.cast((rows >= 0) & (rows < size), dtype)
    in_cols = ops.cast((cols >= 0) & (cols < size), dtype)
    return (in_rows[:, :, None] * in_cols[:, None, :])[..., None]
