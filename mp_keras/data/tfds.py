"""Loader for image datasets from TensorFlow Datasets (``load("tfds:NAME")``).

TFDS downloads and prepares a dataset the first time it is used, which needs network access.
To keep offline machines from waiting minutes on download retries, this loader first looks
for data already prepared in the TFDS data directory (``TFDS_DATA_DIR`` or
``~/tensorflow_datasets``) and downloads only when allowed and the network answers. Set the
environment variable ``MP_KERAS_ALLOW_DOWNLOAD=0`` to forbid downloads altogether (the tests
do). Any failure becomes a :class:`DatasetUnavailableError` that says how to get the data and
which offline datasets to use instead.

``tensorflow_datasets`` is imported inside :func:`load_tfds` only, so importing
``mp_keras.data`` stays light.
"""

from __future__ import annotations

import os
import socket
import urllib.request
from typing import Any

import numpy as np

from mp_keras.data.embedded import (
    Dataset,
    add_channel_axis,
    check_num_examples,
    check_split,
    is_binary,
    make_dataset,
    to_unit_interval,
)

ALLOW_DOWNLOAD_ENV = "MP_KERAS_ALLOW_DOWNLOAD"
# Most TFDS downloads (MNIST, Fashion-MNIST, ...) are served from Google Cloud Storage; if it
# cannot even be connected to, a download would only fail after minutes of retries.
_PROBE_HOST = ("storage.googleapis.com", 443)
_PROBE_TIMEOUT_S = 5.0


class DatasetUnavailableError(RuntimeError):
    """Raised when a TFDS dataset is not prepared locally and cannot be downloaded."""


def downloads_allowed() -> bool:
    """Whether TFDS may download data: True unless ``MP_KERAS_ALLOW_DOWNLOAD`` is 0/false/no.

    Returns:
        The setting read from the environment at call time.

    Example:
        >>> isinstance(downloads_allowed(), bool)
        True
    """
    value = os.environ.get(ALLOW_DOWNLOAD_ENV, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def _unavailable(name: str, data_dir: str, reason: str) -> DatasetUnavailableError:
    return DatasetUnavailableError(
        f"TFDS dataset {name!r} is not available: {reason}\n"
        f"The data could not be downloaded. TFDS needs network access once to download and "
        f"prepare it (run load('tfds:{name}') on a machine that has network, with "
        f"{ALLOW_DOWNLOAD_ENV} unset or 1), or place the prepared files in the TFDS data "
        f"directory, here {data_dir!r} (set TFDS_DATA_DIR to change it; the default is "
        "~/tensorflow_datasets).\n"
        "Offline alternatives: load('digits') or load('digits_binarized') (bundled with "
        "scikit-learn), load('npz:PATH') for a local .npz archive such as Keras' mnist.npz, "
        "or load('idx:IMAGES[,LABELS]') for the original MNIST IDX files."
    )


def _check_network() -> None:
    """Fails within seconds when the download host cannot be reached at all."""
    if urllib.request.getproxies():
        return  # Traffic goes through a proxy; a direct connection says nothing.
    try:
        socket.create_connection(_PROBE_HOST, timeout=_PROBE_TIMEOUT_S).close()
    except OSError as err:
        raise ConnectionError(f"cannot reach {_PROBE_HOST[0]} ({err})") from err


def prepare_builder(builder: Any, name: str, data_dir: str, download: bool) -> None:
    """Makes sure the dataset is prepared on disk, downloading it if allowed."""
    if builder.is_prepared():
        return
    if not download:
        raise _unavailable(
            name,
            data_dir,
            "it is not prepared in the data directory and downloading is switched off "
            f"(download=False, or {ALLOW_DOWNLOAD_ENV}=0).",
        )
    try:
        _check_network()
        builder.download_and_prepare()
    except Exception as err:  # Network, HTTP, disk and missing-dependency errors alike.
        reason = f"downloading or preparing it failed with {type(err).__name__}: {err}"
        raise _unavailable(name, data_dir, reason) from err


def _tfds_split(split: str, split_sizes: dict[str, int], num_examples: int | None) -> str:
    """Translates our split (and size cap) into a TFDS split string.

    "test" is the dataset's own test split. A dataset without one is split like the local
    files: the first 80% of its "train" split for training and the last 20% for testing.
    """
    if split == "all":
        return "all"  # Capped after loading: TFDS cannot slice the union of splits.
    if "test" in split_sizes:
        start, stop = 0, split_sizes[split]
        source = split
    elif "train" in split_sizes:
        size = split_sizes["train"]
        num_train = size - size // 5
        start, stop = (0, num_train) if split == "train" else (num_train, size)
        source = "train"
    else:
        raise ValueError(
            f"The dataset has neither a 'test' nor a 'train' split (it has "
            f"{sorted(split_sizes)}); use split='all'."
        )
    if num_examples is not None:
        stop = min(stop, start + num_examples)
    return f"{source}[{start}:{stop}]"


def _split_arrays(
    loaded: Any, supervised: bool, name: str
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """Returns images, labels and the label feature's key from what ``as_dataset`` gave."""
    if supervised:
        images, labels = loaded
        return np.asarray(images), np.asarray(labels), None
    if "image" not in loaded:
        raise ValueError(
            f"TFDS dataset {name!r} has no 'image' feature (it has {sorted(loaded)}); "
            "only image datasets are supported."
        )
    labels = loaded.get("label")
    return np.asarray(loaded["image"]), None if labels is None else np.asarray(labels), "label"


def _first_line(text: str, limit: int = 120) -> str:
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def load_tfds(
    name: str,
    split: str = "train",
    *,
    num_examples: int | None = None,
    data_dir: str | None = None,
    download: bool | None = None,
) -> Dataset:
    """Loads an image dataset from TensorFlow Datasets into numpy arrays.

    Equivalent to ``tfds.load(name, split=..., as_supervised=...)`` followed by conversion:
    images are float32 in [0, 1] with a channel axis (uint8 pixels divided by 255; images that
    are already 0/1, as in ``binarized_mnist``, are kept), labels int32 when the dataset has
    them. ``"test"`` is the dataset's test split; datasets without one are split 80/20 from
    "train". ``"all"`` is every split together. ``num_examples`` keeps the first examples.

    The data must already be prepared in ``data_dir``, or be downloadable: see the module
    docstring. Whatever goes wrong on the way raises :class:`DatasetUnavailableError`.

    Args:
        name: TFDS name, e.g. ``"mnist"``, ``"fashion_mnist"``, ``"binarized_mnist"``.
        split: ``"train"``, ``"test"`` or ``"all"``.
        num_examples: Keep at most this many examples (the first ones of the split).
        data_dir: TFDS data directory; defaults to ``$TFDS_DATA_DIR`` or
            ``~/tensorflow_datasets``.
        download: Whether a missing dataset may be downloaded; defaults to
            :func:`downloads_allowed`.

    Returns:
        The requested split, named ``"tfds:NAME"``.

    Raises:
        DatasetUnavailableError: If the data is not prepared and cannot be downloaded.
        ValueError: For an unknown split, an unknown TFDS name, or a non-image dataset.

    Example:
        >>> import tempfile
        >>> empty_dir = tempfile.TemporaryDirectory()
        >>> try:
        ...     load_tfds("mnist", data_dir=empty_dir.name, download=False)
        ... except DatasetUnavailableError as err:
        ...     print("unavailable:", "npz:PATH" in str(err))
        unavailable: True
        >>> empty_dir.cleanup()
        >>> ds = load_tfds("mnist", "test")  # doctest: +SKIP
        >>> ds.x.shape, ds.y.shape  # doctest: +SKIP
        ((10000, 28, 28, 1), (10000,))
    """
    check_split(split)
    check_num_examples(num_examples)
    import tensorflow_datasets as tfds  # Heavy, and only needed here.

    # Read the variable now: tfds reads it once, when it is first imported.
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    builder = tfds.builder(name, data_dir=data_dir)
    shown_dir = data_dir or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")
    prepare_builder(builder, name, shown_dir, downloads_allowed() if download is None else download)

    info = builder.info
    split_sizes = {key: int(info.splits[key].num_examples) for key in info.splits.keys()}
    keys = info.supervised_keys
    # A pair of plain feature names; anything fancier is read as a feature dict instead.
    supervised = isinstance(keys, tuple) and len(keys) == 2
    supervised = supervised and all(isinstance(k, str) for k in keys)
    loaded = builder.as_dataset(
        split=_tfds_split(split, split_sizes, num_examples), batch_size=-1, as_supervised=supervised
    )
    images, labels, label_key = _split_arrays(loaded, supervised, name)
    if num_examples is not None:  # Only "all" can still be longer than asked for.
        images = images[:num_examples]
        labels = None if labels is None else labels[:num_examples]

    x, value_range = to_unit_interval(add_channel_axis(images))
    num_classes = None
    if labels is not None:
        label_feature = info.features[keys[1] if supervised else label_key]
        num_classes = getattr(label_feature, "num_classes", None)
        if num_classes is None and labels.size:
            num_classes = int(labels.max()) + 1
    description = _first_line(getattr(info, "description", "") or "") or f"TFDS {name}."
    return make_dataset(
        f"tfds:{name}",
        x,
        labels,
        num_classes=num_classes,
        value_range=value_range,
        binary=is_binary(x),
        description=description,
    )
