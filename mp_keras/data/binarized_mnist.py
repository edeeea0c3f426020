"""Binarized MNIST with the fixed binarization and split of the density-estimation papers.

Larochelle & Murray 2011 binarized each MNIST digit once (pixels drawn as Bernoulli of
their grey level) and split the training set into 50,000 train and 10,000 validation
images; the 10,000 test images are the NLL benchmark of FVSBN, NADE, MADE, PixelCNN and
the VAE papers. Sources, in order:

* ``npz:PATH`` (or the environment variable ``MP_KERAS_BINARIZED_MNIST=PATH`` for the
  name ``binarized_mnist``): a local archive with the keys ``train``, ``valid`` and
  ``test``, each either ``uint8 (N, 98)`` (``np.packbits`` of the 784 pixels, row-major)
  or ``(N, 784)`` / ``(N, 28, 28)`` of 0/1;
* otherwise TensorFlow Datasets' ``binarized_mnist`` (prepared in the TFDS data
  directory, or downloaded once when the network allows).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mp_keras.data.embedded import Dataset, check_num_examples, make_dataset
from mp_keras.data.files import npz_keys

ENV_PATH = "MP_KERAS_BINARIZED_MNIST"
PAPER_SPLITS = ("train", "valid", "test", "all")
_KEYS = ("train", "valid", "test")
_SIDE = 28


def is_split_archive(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is an .npz with the keys `train`, `valid` and `test` (this layout).

    Example:
    >>> is_split_archive("/no/such/file.npz")
    False
    """
    return set(_KEYS) <= npz_keys(path)


def _images(array: np.ndarray, source: str, key: str) -> np.ndarray:
    pixels = _SIDE * _SIDE
    if array.ndim == 2 and array.shape[1] == pixels // 8 and array.dtype == np.uint8:
        array = np.unpackbits(array, axis=1)[:, :pixels]
    if array.shape[1:] not in ((pixels,), (_SIDE, _SIDE), (_SIDE, _SIDE, 1)):
        raise ValueError(
            f"{source}: {key!r} must hold 28x28 binary images as uint8 (N, 98) packed bits, "
            f"(N, 784) or (N, 28, 28); got shape {array.shape} and dtype {array.dtype}."
        )
    images = array.reshape(-1, _SIDE, _SIDE, 1)
    if not np.all((images == 0) | (images == 1)):
        raise ValueError(f"{source}: {key!r} must hold values 0 and 1 only.")
    return images.astype("float32")


def load_binarized_mnist(
    path: str | os.PathLike[str] | None = None,
    split: str = "train",
    *,
    num_examples: int | None = None,
) -> Dataset:
    """Loads a split of binarized MNIST (28x28x1 images of 0/1, no labels).

    Args:
        path: A local archive (see the module docstring); `None` reads the path from
            `MP_KERAS_BINARIZED_MNIST`, or TFDS' `binarized_mnist` when it is unset.
        split: `"train"` (50,000), `"valid"` (10,000), `"test"` (10,000) or `"all"`.
        num_examples: Keep at most this many examples (the first ones of the split).

    Returns:
        The split, named `"binarized_mnist"`.

    Raises:
        ValueError: For an unknown split or a malformed archive.
        FileNotFoundError: If `path` does not exist.
        DatasetUnavailableError: If no path is given and TFDS cannot provide the data.

    Example:
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> bits = np.packbits(np.eye(784, dtype=np.uint8)[:3], axis=1)
    >>> np.savez(f"{tmp.name}/b.npz", train=bits, valid=bits[:1], test=bits[:2])
    >>> load_binarized_mnist(f"{tmp.name}/b.npz", "test").x.shape
    (2, 28, 28, 1)
    >>> tmp.cleanup()
    """
    if split not in PAPER_SPLITS:
        raise ValueError(f"Unknown split {split!r}; binarized_mnist has {PAPER_SPLITS}.")
    check_num_examples(num_examples)
    path = path if path is not None else os.environ.get(ENV_PATH) or None
    if path is None:
        from mp_keras.data.tfds import load_tfds

        if split == "valid":
            raise ValueError(
                "TFDS' binarized_mnist names its validation split 'validation' and mp_keras "
                f"reads only train and test from it; set {ENV_PATH} to a local archive for "
                "the validation split."
            )
        return load_tfds("binarized_mnist", split, num_examples=num_examples)
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"No binarized MNIST archive at {str(path)!r}.")
    if not is_split_archive(path):
        raise ValueError(f"{str(path)!r} is not an .npz with the keys {list(_KEYS)}.")
    keys = _KEYS if split == "all" else (split,)
    with np.load(path, allow_pickle=False) as archive:
        # Cap before unpacking: the full archive is 70,000 images.
        parts = [_images(archive[key][:num_examples], str(path), key) for key in keys]
    x = np.concatenate(parts)[:num_examples]
    return make_dataset(
        "binarized_mnist",
        x,
        None,
        num_classes=None,
        value_range=(0.0, 1.0),
        binary=True,
        description="Binarized MNIST (Larochelle & Murray 2011 split), 28x28 binary digits.",
    )
