"""Datasets for the course models, and ``tf.data`` pipelines to feed them.

One entry point, :func:`load`, serves every source, and each returns a :class:`Dataset`:
float32 examples ``x`` of shape ``(N, *info.shape)`` (images in [0, 1] with a channel axis),
int32 labels ``y`` or ``None``, and a :class:`DatasetInfo`. :func:`list_datasets` names them:

* embedded, never downloaded: ``digits``, ``digits_binarized``, ``ring``, ``grid``,
  ``moons``, ``checkerboard``;
* ``tfds:NAME``: TensorFlow Datasets, e.g. ``tfds:mnist`` (downloaded once, needs network);
* ``npz:PATH``: a local NumPy archive; ``idx:IMAGES[,LABELS]``: MNIST IDX files.

:func:`pipeline` turns arrays into a shuffled, batched ``tf.data.Dataset`` that Keras
``model.fit`` accepts on the TensorFlow, JAX and PyTorch backends.

Example:
    >>> from mp_keras import data
    >>> ds = data.load("digits", "test")
    >>> ds.x.shape, ds.info.num_classes
    ((297, 8, 8, 1), 10)
"""

from __future__ import annotations

from mp_keras.data import addition, audio, captions, sequences, shapes, strokes, toys
from mp_keras.data.binarized_mnist import is_split_archive, load_binarized_mnist
from mp_keras.data.embedded import (
    CHECKERBOARD_HALF_WIDTH,
    CHECKERBOARD_SIZE,
    EMBEDDED_DATASETS,
    MOONS_MEAN,
    MOONS_STD,
    RING_NUM_MODES,
    RING_RADIUS,
    RING_STD,
    SPLITS,
    Dataset,
    DatasetInfo,
    check_split,
    checkerboard_squares,
    grid_centres,
    load_embedded,
    ring_centres,
)
from mp_keras.data.files import load_idx, load_npz, read_idx
from mp_keras.data.pipeline import pipeline, steps_per_epoch
from mp_keras.data.tfds import DatasetUnavailableError, load_tfds

__all__ = [
    "CHECKERBOARD_HALF_WIDTH",
    "CHECKERBOARD_SIZE",
    "MOONS_MEAN",
    "MOONS_STD",
    "RING_NUM_MODES",
    "RING_RADIUS",
    "RING_STD",
    "SPLITS",
    "Dataset",
    "DatasetInfo",
    "DatasetUnavailableError",
    "checkerboard_squares",
    "grid_centres",
    "list_datasets",
    "load",
    "load_binarized_mnist",
    "load_embedded",
    "load_idx",
    "load_npz",
    "load_tfds",
    "pipeline",
    "read_idx",
    "ring_centres",
    "steps_per_epoch",
]

_PREFIXED_DATASETS: dict[str, str] = {
    "binarized_mnist": (
        "Binarized MNIST, 28x28 binary digits, the density-estimation benchmark (50k/10k/10k "
        "split): from the archive at $MP_KERAS_BINARIZED_MNIST, else TFDS (needs network once)."
    ),
    "tfds:NAME": (
        "A TensorFlow Datasets image dataset, e.g. tfds:mnist, tfds:fashion_mnist, "
        "tfds:binarized_mnist; downloaded once (needs network), then read from the TFDS data dir."
    ),
    "npz:PATH": (
        "A local .npz archive with images under x/x_train/images and optional labels "
        "y/y_train/labels and test arrays x_test/y_test; or keys train/valid/test "
        "(binarized MNIST's packed layout)."
    ),
    "idx:IMAGES[,LABELS]": (
        "MNIST IDX files (optionally gzipped): an image file and an optional label file, "
        "separated by a comma."
    ),
}


def list_datasets() -> dict[str, str]:
    """Names the datasets :func:`load` accepts.

    Returns:
        A mapping from name (or name pattern, for the ``tfds:``, ``npz:`` and ``idx:``
        prefixes) to a one-line description.

    Example:
        >>> names = list_datasets()
        >>> "digits" in names, "tfds:NAME" in names
        (True, True)
    """
    return {**EMBEDDED_DATASETS, **_generated_descriptions(), **_PREFIXED_DATASETS}


def _generated() -> dict:
    """Generated datasets of later chapters, each module registering its own names."""
    return {
        **toys.DATASETS,
        **shapes.DATASETS,
        **sequences.DATASETS,
        **audio.DATASETS,
        **strokes.DATASETS,
        **addition.DATASETS,
        **captions.DATASETS,
    }


def _generated_descriptions() -> dict[str, str]:
    return {name: description for name, (_, description) in _generated().items()}


def load(
    name: str, split: str = "train", *, seed: int = 0, num_examples: int | None = None
) -> Dataset:
    """Loads a split of a dataset by name.

    Args:
        name: An embedded dataset (``digits``, ``digits_binarized``, ``ring``, ``grid``,
            ``moons``, ``checkerboard``) or a prefixed source: ``tfds:NAME``, ``npz:PATH`` or
            ``idx:IMAGES[,LABELS]``. See :func:`list_datasets`, :func:`load_embedded`,
            :func:`load_tfds`, :func:`load_npz` and :func:`load_idx` for what each provides.
        split: ``"train"``, ``"test"`` or ``"all"``.
        seed: Seed of the generated datasets (``ring``, ``grid``, ``moons``, ``checkerboard``); the
            others have fixed splits and ignore it.
        num_examples: For generated datasets, the number of points to draw; for the others,
            a cap on the number of examples (the first ones of the split).

    Returns:
        The requested split.

    Raises:
        ValueError: For an unknown name or split (the message lists the valid ones), or a
            malformed file.
        FileNotFoundError: If a file named by ``npz:`` or ``idx:`` does not exist.
        DatasetUnavailableError: If a ``tfds:`` dataset is not prepared and cannot be
            downloaded; the message suggests offline alternatives.

    Example:
        >>> ds = load("ring", seed=1, num_examples=100)
        >>> ds.x.shape, ds.y.dtype, ds.info.num_classes
        ((100, 2), dtype('int32'), 8)
    """
    prefix, sep, rest = name.partition(":")
    if sep and rest:
        if prefix == "tfds":
            return load_tfds(rest, split, num_examples=num_examples)
        if prefix == "npz":
            if is_split_archive(rest):  # train/valid/test keys: binarized MNIST's layout
                return load_binarized_mnist(rest, split, num_examples=num_examples)
            if audio.is_waveform_archive(rest):  # a `waveforms` key: clips for WaveNet
                return audio.load_waveform_dataset(rest, split, num_examples=num_examples)
            return load_npz(rest, split, num_examples=num_examples, name=name)
        if prefix == "idx":
            images, _, labels = rest.partition(",")
            if not images:
                raise ValueError(f"{name!r} names no image file; use 'idx:IMAGES[,LABELS]'.")
            return load_idx(images, labels or None, split, num_examples=num_examples, name=name)
    if name == "binarized_mnist":
        return load_binarized_mnist(None, split, num_examples=num_examples)
    if name in EMBEDDED_DATASETS:
        return load_embedded(name, split, seed=seed, num_examples=num_examples)
    if name in _generated():
        loader, _ = _generated()[name]
        return loader(name, check_split(split), seed, num_examples)
    raise ValueError(
        f"Unknown dataset {name!r}. Available: {', '.join(list_datasets())} "
        "(replace NAME, PATH, IMAGES and LABELS with a TFDS name or file paths)."
    )
