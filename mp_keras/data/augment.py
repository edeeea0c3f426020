"""Joint augmentation of images and segmentation masks in a ``tf.data`` pipeline.

A geometric augmentation of a segmentation example must move the mask exactly as it moves
the image, or the labels stop describing the pixels. KerasCV's preprocessing layers do this
when called on ``{"images": ..., "segmentation_masks": ...}``: one random transform per
example, applied to both, with nearest-neighbour resampling (translation) or a one-hot
rotation followed by an arg-max for the mask, so it keeps integer class values.

The layers are TensorFlow code, run inside the ``tf.data`` pipeline, so the pipeline feeds
``model.fit`` on every Keras backend (checked under TensorFlow, JAX and PyTorch with
KerasCV 0.9 and Keras 3.15). MixUp and CutMix are not used: they mix labels, which a mask
cannot express (and KerasCV's MixUp fails on the TensorFlow backend with Keras 3.15).
TensorFlow and KerasCV are imported when a pipeline is built, not when this module is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mp_keras.data.embedded import Dataset
from mp_keras.data.pipeline import pipeline

if TYPE_CHECKING:
    import tensorflow as tf

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def segmentation_augmenter(
    num_classes: int,
    *,
    flip: str | None = "horizontal_and_vertical",
    rotation: float = 0.0,
    translation: float = 0.1,
    seed: int = 0,
) -> Callable[[Any, Any], tuple[Any, Any]]:
    """Builds a function that applies one random geometric transform to images and masks.

    Args:
        num_classes: Number of mask classes (the rotation one-hot encodes the mask).
        flip: ``"horizontal"``, ``"vertical"``, ``"horizontal_and_vertical"`` or ``None``.
        rotation: Largest rotation as a fraction of a full turn (0.25 is up to +-90
            degrees); 0 switches it off. Uncovered corners become 0 and background.
        translation: Largest shift as a fraction of the height and width; 0 switches it
            off. Shifts move by whole pixels, so the image stays on the mask's grid.
        seed: Seed of the random transforms.

    Returns:
        ``augment(images, masks) -> (images, masks)`` on batched tensors: images
        ``(batch, height, width, channels)`` float, masks ``(batch, height, width)`` int
        (tensors or NumPy); masks come back int32. Use it in ``tf.data.Dataset.map``.

    Example:
        >>> import tensorflow as tf
        >>> augment = segmentation_augmenter(2, flip="horizontal", translation=0.0)
        >>> images = tf.constant(np.arange(4, dtype="float32").reshape(1, 1, 4, 1))
        >>> masks = tf.constant([[[0, 0, 1, 1]]])
        >>> image, mask = augment(images, masks)
        >>> bright = image.numpy()[0, 0, :, 0] >= 2  # where the mask's 1s were, flipped or not
        >>> mask.dtype.name, bright.tolist() == (mask.numpy()[0, 0] == 1).tolist()
        ('int32', True)
    """
    import keras_cv  # Heavy (TensorFlow-based); only pipelines need it.
    import tensorflow as tf

    if flip is not None and flip not in FLIP_MODES:
        raise ValueError(f"flip must be one of {FLIP_MODES} or None, got {flip!r}.")
    if not 0.0 <= rotation <= 0.5 or not 0.0 <= translation < 1.0:
        raise ValueError(
            f"rotation must be in [0, 0.5] and translation in [0, 1); got {rotation!r} and "
            f"{translation!r}."
        )
    layers = []
    if flip is not None:
        layers.append(keras_cv.layers.RandomFlip(flip, seed=seed))
    if translation:
        layers.append(
            keras_cv.layers.RandomTranslation(
                translation,
                translation,
                fill_mode="constant",
                interpolation="nearest",  # whole-pixel shifts, as the mask gets
                seed=seed + 1,
            )
        )
    if rotation:
        layers.append(
            keras_cv.layers.RandomRotation(
                rotation, fill_mode="constant", segmentation_classes=num_classes, seed=seed + 2
            )
        )

    def augment(images: Any, masks: Any) -> tuple[Any, Any]:
        images = tf.convert_to_tensor(images)
        # KerasCV wants masks with a channel axis: (batch, height, width, 1).
        example = {"images": images, "segmentation_masks": tf.expand_dims(masks, -1)}
        for layer in layers:
            example = layer(example)
        masks = tf.cast(tf.round(example["segmentation_masks"][..., 0]), tf.int32)
        return example["images"], masks

    # Always a TensorFlow graph: called eagerly on the JAX or PyTorch backend, KerasCV
    # would hand back that backend's arrays, which the TensorFlow ops above cannot take.
    return tf.function(augment)


def augmented_pipeline(
    x: np.ndarray | Dataset,
    y: np.ndarray | None = None,
    *,
    num_classes: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    flip: str | None = "horizontal_and_vertical",
    rotation: float = 0.0,
    translation: float = 0.1,
    shuffle: bool = True,
    repeat: bool = False,
) -> tf.data.Dataset:
    """A shuffled, batched ``tf.data.Dataset`` of jointly augmented images and masks.

    :func:`mp_keras.data.pipeline` followed by :func:`segmentation_augmenter` on each batch;
    every pass over the data draws new transforms. Pass ``shuffle=False`` to ``model.fit``.

    Args:
        x: Images ``(N, height, width, channels)``, or a :class:`Dataset` with masks.
        y: Masks ``(N, height, width)``; ``None`` when ``x`` is a :class:`Dataset`.
        num_classes: Number of mask classes; defaults to the Dataset's, else
            ``y.max() + 1``.
        batch_size: Examples per batch.
        seed: Seed of the shuffle and of the transforms.
        flip: See :func:`segmentation_augmenter`.
        rotation: See :func:`segmentation_augmenter`.
        translation: See :func:`segmentation_augmenter`.
        shuffle: Whether to shuffle.
        repeat: Repeat forever (pass ``steps_per_epoch`` to ``fit``).

    Returns:
        A dataset of ``(images, masks)`` batches.

    Raises:
        ValueError: If there are no masks, or they do not match the images' height and width.

    Example:
        >>> from mp_keras.data.shapes import generate_shapes
        >>> x, y = generate_shapes(10, seed=0)
        >>> batches = augmented_pipeline(x, y, num_classes=4, batch_size=4)
        >>> [(tuple(images.shape), tuple(masks.shape)) for images, masks in batches][0]
        ((4, 32, 32, 1), (4, 32, 32))
    """
    import tensorflow as tf

    if isinstance(x, Dataset):
        if y is not None:
            raise ValueError("Pass either a Dataset or arrays x and y, not a Dataset and y.")
        num_classes = num_classes or x.info.num_classes
        x, y = x.x, x.y
    if y is None:
        raise ValueError("Segmentation augmentation needs masks y (N, height, width).")
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4 or y.shape != x.shape[:3]:
        raise ValueError(
            f"Expected images (N, height, width, channels) and masks (N, height, width); got "
            f"{x.shape} and {y.shape}."
        )
    num_classes = num_classes or int(y.max()) + 1
    augment = segmentation_augmenter(
        num_classes, flip=flip, rotation=rotation, translation=translation, seed=seed
    )
    batches = pipeline(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed, repeat=repeat)
    return batches.map(augment, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
