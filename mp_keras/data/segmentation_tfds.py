"""A real segmentation dataset from TensorFlow Datasets: the Oxford-IIIT Pet trimaps.

Parkhi et al., "Cats and Dogs", CVPR 2012: 7,349 photos of 37 breeds (3,680 train / 3,669
test) with a trimap per photo. Like ``load("tfds:NAME")`` this needs the data prepared in the
TFDS data directory or a network to download it (about 800 MB) once; the offline checks and
the error are those of :mod:`mp_keras.data.tfds` (``MP_KERAS_ALLOW_DOWNLOAD=0`` forbids
downloads). ``tensorflow_datasets`` is imported only when the data is loaded.
"""

from __future__ import annotations

import os

import numpy as np

from mp_keras.data.embedded import Dataset, check_num_examples, check_split, make_dataset
from mp_keras.data.tfds import DatasetUnavailableError, downloads_allowed, prepare_builder

PET_NAME = "oxford_iiit_pet"
PET_CLASS_NAMES: tuple[str, ...] = ("background", "pet", "border")
# The trimap stores 1 = pet, 2 = background, 3 = border; background becomes class 0, as in
# the `shapes` masks.
_TRIMAP_TO_CLASS = (0, 1, 0, 2)


def load_oxford_iiit_pet(
    split: str = "train",
    image_size: int = 128,
    *,
    num_examples: int | None = None,
    data_dir: str | None = None,
    download: bool | None = None,
) -> Dataset:
    """Loads Oxford-IIIT Pet photos and trimap masks, resized to a square.

    Images are resized bilinearly to ``image_size`` x ``image_size`` and scaled to [0, 1];
    masks are resized with nearest neighbours and mapped to 0 background, 1 pet, 2 border
    (:data:`PET_CLASS_NAMES`).

    Args:
        split: ``"train"``, ``"test"`` or ``"all"`` (train then test).
        image_size: Height and width after resizing.
        num_examples: Keep at most this many examples (the first ones of the split).
        data_dir: TFDS data directory; defaults to ``$TFDS_DATA_DIR`` or
            ``~/tensorflow_datasets``.
        download: Whether the data may be downloaded; defaults to
            :func:`mp_keras.data.tfds.downloads_allowed`.

    Returns:
        ``x`` float32 ``(N, image_size, image_size, 3)``, ``y`` int32
        ``(N, image_size, image_size)``, 3 classes; named ``"tfds:oxford_iiit_pet"``.

    Raises:
        DatasetUnavailableError: If the data is not prepared and cannot be downloaded.
        ValueError: For an unknown split or a bad size.

    Example:
        >>> import tempfile
        >>> empty_dir = tempfile.TemporaryDirectory()
        >>> try:
        ...     load_oxford_iiit_pet(data_dir=empty_dir.name, download=False)
        ... except DatasetUnavailableError as err:
        ...     print("unavailable:", "load('shapes')" in str(err))
        unavailable: True
        >>> empty_dir.cleanup()
        >>> pets = load_oxford_iiit_pet("test", image_size=128)  # doctest: +SKIP
        >>> pets.x.shape, pets.y.shape  # doctest: +SKIP
        ((3669, 128, 128, 3), (3669, 128, 128))
    """
    check_split(split)
    check_num_examples(num_examples)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8, got {image_size!r}.")
    import tensorflow as tf
    import tensorflow_datasets as tfds  # Heavy, and only needed here.

    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    builder = tfds.builder(PET_NAME, data_dir=data_dir)
    shown_dir = data_dir or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")
    try:
        prepare_builder(
            builder, PET_NAME, shown_dir, downloads_allowed() if download is None else download
        )
    except DatasetUnavailableError as err:
        raise DatasetUnavailableError(
            f"{err}\nFor segmentation without a download, use load('shapes') (generated "
            "circles, squares and triangles with per-pixel masks)."
        ) from err

    source = {"train": "train", "test": "test", "all": "train+test"}[split]
    if num_examples is not None and split != "all":
        source = f"{source}[:{num_examples}]"
    trimap_to_class = tf.constant(_TRIMAP_TO_CLASS, tf.int32)

    def resize(example: dict) -> tuple:
        image = tf.image.resize(example["image"], (image_size, image_size)) / 255.0
        mask = tf.image.resize(
            example["segmentation_mask"], (image_size, image_size), method="nearest"
        )
        return image, tf.gather(trimap_to_class, tf.cast(mask[..., 0], tf.int32))

    examples = builder.as_dataset(split=source).map(resize, num_parallel_calls=tf.data.AUTOTUNE)
    if num_examples is not None:
        examples = examples.take(num_examples)
    images, masks = [], []
    for image, mask in examples.batch(256).as_numpy_iterator():
        images.append(image)
        masks.append(mask)
    return make_dataset(
        f"tfds:{PET_NAME}",
        np.clip(np.concatenate(images), 0.0, 1.0),
        np.concatenate(masks),
        num_classes=len(PET_CLASS_NAMES),
        value_range=(0.0, 1.0),
        binary=False,
        description=(
            f"Oxford-IIIT Pet photos resized to {image_size}x{image_size}x3 with trimap masks "
            "(0 background, 1 pet, 2 border)."
        ),
    )
