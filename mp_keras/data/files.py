"""Readers for datasets kept in local files: NumPy ``.npz`` archives and MNIST IDX files.

Both produce a :class:`~mp_keras.data.embedded.Dataset` with the usual conventions (float32
``x`` with a channel axis for images, int32 ``y``). Files without a test split of their own are
split deterministically: a permutation drawn with ``np.random.default_rng(0)`` whose last fifth
(``N // 5`` examples) is ``"test"`` and the rest ``"train"``; ``"all"`` is the whole file in its
stored order.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from pathlib import Path

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

# Accepted .npz keys for each role, in order of preference. The "x_train" spelling covers the
# archives Keras itself ships (e.g. mnist.npz with x_train, y_train, x_test, y_test).
NPZ_KEYS: dict[str, tuple[str, ...]] = {
    "x": ("x", "x_train", "images", "train_images"),
    "y": ("y", "y_train", "labels", "train_labels"),
    "x_test": ("x_test", "test_images"),
    "y_test": ("y_test", "test_labels"),
}

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions: (N, rows, cols)
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension: (N,)
_IDX_MAGIC_MEANING = {
    IDX_IMAGES_MAGIC: "uint8 images of shape (N, rows, cols)",
    IDX_LABELS_MAGIC: "uint8 labels of shape (N,)",
}
# IDX type codes (third byte of the magic number); all values are stored big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# --------------------------------------------------------------------------- shared


def npz_keys(path: str | os.PathLike[str]) -> frozenset[str]:
    """The array names of the ``.npz`` archive at `path`; empty if there is none.

    Example:
        >>> npz_keys("/no/such/file.npz")
        frozenset()
    """
    path = Path(path).expanduser()
    if not path.is_file() or not zipfile.is_zipfile(path):
        return frozenset()
    with np.load(path, allow_pickle=False) as archive:
        return frozenset(archive.files)


def holdout_indices(num_examples: int, split: str) -> np.ndarray:
    """Indices of a split for data that has no test split of its own.

    Args:
        num_examples: Number of examples in the file.
        split: ``"train"``, ``"test"`` or ``"all"``.

    Returns:
        Indices into the file: an 80/20 partition drawn with ``np.random.default_rng(0)`` for
        ``"train"``/``"test"`` (test gets ``num_examples // 5``), every index in order for
        ``"all"``.

    Example:
        >>> len(holdout_indices(10, "train")), len(holdout_indices(10, "test"))
        (8, 2)
    """
    check_split(split)
    if split == "all":
        return np.arange(num_examples)
    order = np.random.default_rng(0).permutation(num_examples)
    num_train = num_examples - num_examples // 5
    return order[:num_train] if split == "train" else order[num_train:]


def _as_labels(y: np.ndarray, num_examples: int, source: str) -> np.ndarray:
    """Validates class labels: integer-valued, non-negative, one per example."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != num_examples:
        raise ValueError(
            f"{source}: expected {num_examples} labels of shape ({num_examples},), "
            f"got shape {y.shape}."
        )
    integral = np.issubdtype(y.dtype, np.integer) or (
        np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    )
    if not integral or (y.size and y.min() < 0):
        raise ValueError(f"{source}: labels must be non-negative integer class indices.")
    return y.astype(np.int64)


def _assemble(
    name: str,
    x: np.ndarray,
    y: np.ndarray | None,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    split: str,
    num_examples: int | None,
    description: str,
) -> Dataset:
    """Scales the whole file at once (so every split shares one info) and selects a split."""
    num_train = len(x)
    x_all = x if x_test is None else np.concatenate([x, x_test])
    y_all = y if y_test is None else np.concatenate([y, y_test])
    x_all, value_range = to_unit_interval(add_channel_axis(x_all))
    if x_test is None:
        indices = holdout_indices(num_train, split)
    else:
        bounds = {"train": (0, num_train), "test": (num_train, len(x_all)), "all": (0, len(x_all))}
        indices = np.arange(*bounds[split])
    if num_examples is not None:
        indices = indices[:num_examples]
    return make_dataset(
        name,
        x_all[indices],
        None if y_all is None else y_all[indices],
        num_classes=None if y_all is None else int(y_all.max()) + 1,
        value_range=value_range,
        binary=is_binary(x_all),
        description=description,
    )


def _existing_file(path: str | os.PathLike[str], kind: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"No {kind} file at {str(path)!r}.")
    return path


# --------------------------------------------------------------------------- .npz


def _find_key(files: list[str], role: str) -> str | None:
    return next((key for key in NPZ_KEYS[role] if key in files), None)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Reads the arrays of the recognised keys; raises if there are no images."""
    expected = "expected a zip of .npy arrays, as np.savez writes"
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic == b"\x93NUMPY":
        raise ValueError(f"{str(path)!r} holds a single array (.npy), not a .npz archive.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{str(path)!r} is not a valid .npz archive ({expected}).")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{str(path)!r} is not a valid .npz archive ({err}).") from err
    with archive:
        keys = {role: _find_key(archive.files, role) for role in NPZ_KEYS}
        if keys["x"] is None:
            raise ValueError(
                f"{str(path)!r} has no image array: expected one of the keys "
                f"{list(NPZ_KEYS['x'])}, but it holds {sorted(archive.files)}. Optional keys: "
                f"labels {list(NPZ_KEYS['y'])}, test images {list(NPZ_KEYS['x_test'])}, "
                f"test labels {list(NPZ_KEYS['y_test'])}."
            )
        try:
            return {role: archive[key] for role, key in keys.items() if key is not None}
        except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as err:
            # A damaged member, or an object array (which would need pickle).
            raise ValueError(f"{str(path)!r} is not a valid .npz archive ({err}).") from err


def load_npz(
    path: str | os.PathLike[str],
    split: str = "train",
    *,
    num_examples: int | None = None,
    name: str | None = None,
) -> Dataset:
    """Loads a dataset from a local NumPy ``.npz`` archive.

    Recognised keys (the first one present of each list is used):

    * images: ``x``, ``x_train``, ``images``, ``train_images`` (required)
    * labels: ``y``, ``y_train``, ``labels``, ``train_labels`` (optional)
    * test images: ``x_test``, ``test_images`` (optional)
    * test labels: ``y_test``, ``test_labels`` (required when both labels and test images exist)

    So Keras' own ``mnist.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``) loads as is.
    Without test images, the file is split 80/20 as described in :func:`holdout_indices`.
    ``(N, H, W)`` images get a channel axis; integer pixels in [0, 255] are divided by 255
    (arrays holding only 0 and 1 are kept as they are); float arrays are used unchanged.
    Labels must be non-negative integers; ``num_classes`` is their maximum plus one.

    Args:
        path: Path of the archive.
        split: ``"train"``, ``"test"`` or ``"all"`` (train followed by test, or the whole file).
        num_examples: Keep at most this many examples of the split (the first ones).
        name: Name for the info; defaults to ``"npz:PATH"``.

    Returns:
        The requested split.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is not a ``.npz`` archive, lacks the image key (the message
            lists the keys found and expected), or its arrays are inconsistent.

    Example:
        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = os.path.join(tmp.name, "tiny.npz")
        >>> rng = np.random.default_rng(0)
        >>> np.savez(path, x=rng.integers(0, 256, (10, 4, 4), dtype=np.uint8),
        ...          y=np.arange(10) % 2)
        >>> ds = load_npz(path, "train")
        >>> ds.x.shape, ds.x.dtype, ds.info.num_classes
        ((8, 4, 4, 1), dtype('float32'), 2)
        >>> tmp.cleanup()
    """
    check_split(split)
    check_num_examples(num_examples)
    path = _existing_file(path, ".npz")
    arrays = _read_npz(path)
    source = str(path)

    x, x_test = arrays["x"], arrays.get("x_test")
    if x.ndim == 0:
        raise ValueError(f"{source}: the image array must have an example axis, got a scalar.")
    if x_test is not None and x_test.shape[1:] != x.shape[1:]:
        raise ValueError(
            f"{source}: train examples have shape {x.shape[1:]} but test examples "
            f"{x_test.shape[1:]}."
        )
    has_y, has_y_test = "y" in arrays, "y_test" in arrays
    if x_test is None and has_y_test:
        raise ValueError(
            f"{source}: has test labels but no test images {list(NPZ_KEYS['x_test'])}."
        )
    if x_test is not None and has_y != has_y_test:
        missing = "y_test" if has_y else "y"
        raise ValueError(
            f"{source}: labels are given for only one of train and test; add one of the keys "
            f"{list(NPZ_KEYS[missing])}, or drop the other labels."
        )
    y = _as_labels(arrays["y"], len(x), source) if has_y else None
    y_test = None
    if x_test is not None and has_y_test:
        y_test = _as_labels(arrays["y_test"], len(x_test), f"{source} (test)")

    description = f"Local .npz archive {source}."
    return _assemble(name or f"npz:{path}", x, y, x_test, y_test, split, num_examples, description)


# --------------------------------------------------------------------------- IDX


def _read_bytes(path: Path) -> bytes:
    """Reads a file, transparently gunzipping it (detected by the gzip signature)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as err:
        raise ValueError(
            f"{str(path)!r} looks gzipped but could not be decompressed: {err}"
        ) from err


def read_idx(path: str | os.PathLike[str], *, expected_magic: int | None = None) -> np.ndarray:
    """Reads an array from an IDX file (the format of the original MNIST files).

    The header is a 4-byte big-endian magic number ``0x0000TTDD`` (``TT`` = element type,
    ``0x08`` for unsigned bytes; ``DD`` = number of dimensions) followed by one big-endian
    uint32 per dimension; the values follow, big-endian. Files ending in ``.gz`` (or any gzip
    file) are decompressed first.

    Args:
        path: Path of the file, plain or gzipped.
        expected_magic: If given, the magic number the file must have, e.g.
            :data:`IDX_IMAGES_MAGIC` (``0x00000803``) or :data:`IDX_LABELS_MAGIC`
            (``0x00000801``).

    Returns:
        The array in native byte order, with the shape given by the header.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: On a wrong or unknown magic number, or a size that does not match the
            header.

    Example:
        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = os.path.join(tmp.name, "labels-idx1-ubyte")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
        >>> read_idx(path, expected_magic=IDX_LABELS_MAGIC).tolist()
        [7, 2, 1]
        >>> tmp.cleanup()
    """
    path = _existing_file(path, "IDX")
    raw = _read_bytes(path)
    source = str(path)
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if expected_magic is not None and magic != expected_magic:
        found = "no magic number (file too short)" if magic is None else f"0x{magic:08X}"
        raise ValueError(
            f"{source}: wrong IDX magic number {found}; expected 0x{expected_magic:08X} "
            f"({_IDX_MAGIC_MEANING.get(expected_magic, 'IDX data')}). "
            "Is it an IDX file, and are the image and label files swapped?"
        )
    if magic is None or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{source}: not an IDX file (unrecognised magic number {raw[:4]!r}).")

    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"{source}: IDX header is truncated.")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected_size = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected_size:
        raise ValueError(
            f"{source}: IDX header announces shape {shape} ({expected_size} bytes), "
            f"but the file has {len(raw)} bytes."
        )
    data = np.frombuffer(raw, dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def load_idx(
    images: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    split: str = "train",
    *,
    num_examples: int | None = None,
    name: str | None = None,
) -> Dataset:
    """Loads MNIST-style IDX files: an image file and, optionally, a label file.

    An IDX file holds one set (e.g. MNIST's ``train-images-idx3-ubyte.gz``), so ``"train"`` and
    ``"test"`` are the 80/20 split of :func:`holdout_indices`, while ``"all"`` returns the whole
    file: load MNIST's ``t10k-*`` files with ``split="all"`` to get its official test set.
    Pixels are divided by 255 and get a channel axis: ``(N, rows, cols, 1)``.

    Args:
        images: Image file, magic number ``0x00000803`` (plain or gzipped).
        labels: Label file, magic number ``0x00000801``, or ``None`` for unlabeled data.
        split: ``"train"``, ``"test"`` or ``"all"``.
        num_examples: Keep at most this many examples of the split (the first ones).
        name: Name for the info; defaults to ``"idx:IMAGES[,LABELS]"``.

    Returns:
        The requested split.

    Raises:
        FileNotFoundError: If a file does not exist.
        ValueError: On a wrong magic number, a malformed file, or a label count that differs
            from the image count.

    Example:
        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = os.path.join(tmp.name, "images-idx3-ubyte")
        >>> header = bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 2])
        >>> with open(path, "wb") as f:
        ...     _ = f.write(header + bytes(range(0, 200, 10)))
        >>> ds = load_idx(path, split="all")
        >>> ds.x.shape, ds.y is None
        ((5, 2, 2, 1), True)
        >>> tmp.cleanup()
    """
    check_split(split)
    check_num_examples(num_examples)
    x = read_idx(images, expected_magic=IDX_IMAGES_MAGIC)
    y = None
    if labels is not None:
        y = _as_labels(read_idx(labels, expected_magic=IDX_LABELS_MAGIC), len(x), str(labels))
    if name is None:
        name = f"idx:{images}" if labels is None else f"idx:{images},{labels}"
    description = f"MNIST IDX files {images}" + ("" if labels is None else f" and {labels}") + "."
    return _assemble(name, x, y, None, None, split, num_examples, description)
