"""``tf.data`` input pipelines over in-memory arrays.

Keras 3 ``model.fit`` accepts a ``tf.data.Dataset`` on every backend (TensorFlow, JAX and
PyTorch), so one pipeline serves all three. TensorFlow is imported when a pipeline is built,
not when this module is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mp_keras.data.embedded import Dataset

if TYPE_CHECKING:
    import tensorflow as tf


def pipeline(
    x: np.ndarray | Dataset,
    y: np.ndarray | None = None,
    *,
    batch_size: int = 64,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Builds a batched ``tf.data.Dataset`` from arrays.

    The examples are shuffled with a buffer as large as the data (a full, uniform shuffle)
    and reshuffled on every pass, then batched and prefetched. The order of the first pass
    depends only on ``seed`` (and on TensorFlow's global seed, if one was set, e.g. by
    ``keras.utils.set_random_seed``), so equal seeds give equal orders. Pass
    ``shuffle=False`` to ``model.fit`` with it: the shuffling happens here, and Keras warns
    that its own ``shuffle=True`` is ignored for a ``tf.data.Dataset``.

    Args:
        x: Examples, first axis indexing them; or a :class:`Dataset`, whose ``x`` and ``y``
            are then used (``y`` must be ``None``).
        y: Optional targets, one per example.
        batch_size: Examples per batch.
        shuffle: Whether to shuffle; if False the stored order is kept.
        seed: Shuffle seed.
        drop_remainder: Drop the last batch when it is smaller than ``batch_size``.
        repeat: Repeat forever (pass ``steps_per_epoch`` to ``fit``); each pass is reshuffled
            and batches may straddle passes.

    Returns:
        A dataset yielding ``x`` batches, or ``(x, y)`` tuples when ``y`` is given.

    Raises:
        ValueError: If ``x`` and ``y`` differ in length, ``y`` is passed with a
            :class:`Dataset`, or ``batch_size`` is not positive.

    Example:
        >>> x = np.zeros((10, 2), np.float32)
        >>> y = np.arange(10, dtype=np.int32)
        >>> [tuple(xb.shape) for xb, yb in pipeline(x, y, batch_size=4)]
        [(4, 2), (4, 2), (2, 2)]
        >>> [tuple(xb.shape) for xb in pipeline(x, batch_size=4, drop_remainder=True)]
        [(4, 2), (4, 2)]
    """
    import tensorflow as tf  # Heavy; only pipelines need it.

    if isinstance(x, Dataset):
        if y is not None:
            raise ValueError("Pass either a Dataset or arrays x and y, not a Dataset and y.")
        x, y = x.x, x.y
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    x = np.asarray(x)
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} examples but y has {len(y)}.")

    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle:
        # A buffer of the whole array makes this a uniform shuffle, not a local one.
        ds = ds.shuffle(max(len(x), 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        # After the shuffle, so each pass gets a fresh order.
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)
