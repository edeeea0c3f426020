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
    epochs: int | None = None,
    initial_epoch: int = 0,
) -> tf.data.Dataset:
    """Builds a batched ``tf.data.Dataset`` from arrays.

    The examples are shuffled with a buffer as large as the data (a full, uniform shuffle)
    and reshuffled on every pass, then batched and prefetched. The order of the first pass
    depends only on ``seed`` (and on TensorFlow's global seed, if one was set, e.g. by
    ``keras.utils.set_random_seed``), so equal seeds give equal orders. Pass
    ``shuffle=False`` to ``model.fit`` with it: the shuffling happens here, and Keras warns
    that its own ``shuffle=True`` is ignored for a ``tf.data.Dataset``.

    With ``epochs``, the dataset holds the batches of epochs ``initial_epoch`` to
    ``epochs - 1`` one after the other, and epoch ``e`` is shuffled by a permutation that
    depends only on ``(seed, e)``: a run resumed at epoch ``e`` sees exactly the batches an
    uninterrupted run would. Batches never straddle two epochs; pass
    ``steps_per_epoch=steps_per_epoch(len(x), batch_size)`` and ``initial_epoch`` to
    ``fit``, so that Keras reads on through the one stream instead of restarting it.

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
        epochs: If given, the stream of epochs ``initial_epoch .. epochs - 1``, each shuffled
            from ``(seed, epoch)`` (with ``shuffle``), see above.
        initial_epoch: First epoch of the stream, with ``epochs``.

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
        >>> def order(ds):
        ...     return [int(v) for xb, yb in ds for v in yb]
        >>> full = order(pipeline(x, y, batch_size=4, seed=3, epochs=3))
        >>> order(pipeline(x, y, batch_size=4, seed=3, epochs=3, initial_epoch=2)) == full[20:]
        True
        >>> steps_per_epoch(10, 4), sorted(full[:10]) == list(range(10))
        (3, True)
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

    if epochs is not None:
        return _epoch_stream(x, y, batch_size, shuffle, seed, drop_remainder, epochs, initial_epoch)
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle:
        # A buffer of the whole array makes this a uniform shuffle, not a local one.
        ds = ds.shuffle(max(len(x), 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        # After the shuffle, so each pass gets a fresh order.
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(num_examples: int, batch_size: int, drop_remainder: bool = False) -> int:
    """Batches in one epoch of ``num_examples`` examples."""
    if drop_remainder:
        return num_examples // batch_size
    return -(-num_examples // batch_size)


def _epoch_stream(
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    shuffle: bool,
    seed: int,
    drop_remainder: bool,
    epochs: int,
    initial_epoch: int,
) -> tf.data.Dataset:
    """Epochs ``initial_epoch .. epochs - 1``, epoch ``e`` ordered by ``(seed, e)`` alone."""
    import tensorflow as tf

    if not 0 <= int(initial_epoch) <= int(epochs):
        raise ValueError(f"Need 0 <= initial_epoch <= epochs, got {initial_epoch} and {epochs}.")
    if steps_per_epoch(len(x), batch_size, drop_remainder) < 1:
        raise ValueError(f"{len(x)} examples make no batch of {batch_size}.")
    num = len(x)
    arrays = (tf.constant(x),) if y is None else (tf.constant(x), tf.constant(y))

    def epoch_indices(epoch: tf.Tensor) -> tf.data.Dataset:
        indices = tf.range(num, dtype=tf.int64)
        if shuffle:
            # Stateless: the order is a function of (seed, epoch), not of what ran before.
            key = tf.stack([tf.constant(int(seed), tf.int64), epoch])
            indices = tf.random.experimental.stateless_shuffle(indices, seed=key)
        return tf.data.Dataset.from_tensor_slices(indices).batch(batch_size, drop_remainder)

    def gather(indices: tf.Tensor) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
        batch = tuple(tf.gather(array, indices) for array in arrays)
        return batch[0] if y is None else batch

    ds = tf.data.Dataset.range(int(initial_epoch), int(epochs)).flat_map(epoch_indices)
    return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
