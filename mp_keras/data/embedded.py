"""Datasets that ship with the code, and the containers every loader returns.

Nothing here downloads: ``digits`` comes from the copy bundled with scikit-learn, and the 2-D
toy sets (``ring``, ``grid``, ``moons``, ``checkerboard``) are generated on the fly. This
module also defines :class:`DatasetInfo`, :class:`Dataset` and the small helpers the file
and TFDS loaders share, so that every source produces arrays with the same conventions:

* ``x`` is float32 with shape ``(N, *info.shape)``; images carry a trailing channel axis.
* ``y`` is int32 with shape ``(N,)`` (class labels) or ``(N, ...)`` (per-example targets
  such as segmentation masks or target sequences), or ``None`` for unlabeled data.
* ``split`` is one of ``"train"``, ``"test"`` or ``"all"``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

SPLITS: tuple[str, ...] = ("train", "test", "all")

DIGITS_NUM_TRAIN = 1500
DIGITS_NUM_TEST = 297

RING_NUM_MODES = 8
RING_RADIUS = 2.0
RING_STD = 0.02

# The 5 x 5 grid of Gaussians of the mode-collapse literature (e.g. Srivastava et al. 2017).
GRID_SIZE = 5
GRID_SPACING = 2.0  # centres at -4, -2, 0, 2, 4 on each axis
GRID_STD = 0.05

MOONS_NOISE = 0.05
# Mean and standard deviation of the noiseless two-moons curve (outer arc (cos t, sin t) and
# inner arc (1 - cos t, 0.5 - sin t), t uniform on [0, pi]), worked out analytically. Fixed
# constants rather than per-sample statistics, so train and test share one transform.
MOONS_MEAN: tuple[float, float] = (0.5, 0.25)
MOONS_STD: tuple[float, float] = (float(np.sqrt(0.75)), float(np.sqrt(0.5625 - 1.0 / np.pi)))

CHECKERBOARD_SIZE = 4  # squares per side
CHECKERBOARD_HALF_WIDTH = 2.0  # the board covers [-2, 2]^2, squares of side 1

# Default sizes of the generated toy sets; ``num_examples`` overrides them.
TOY_SPLIT_SIZES: dict[str, int] = {"train": 4096, "test": 1024}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset.

    Attributes:
        name: The name it was loaded by, e.g. ``"digits"`` or ``"npz:/data/mnist.npz"``.
        shape: Per-example shape, e.g. ``(8, 8, 1)`` for images or ``(2,)`` for points.
        num_classes: Number of label classes, or ``None`` when the data is unlabeled.
        binary: True only if every value of ``x`` is exactly 0 or 1.
        value_range: ``(low, high)`` bounds of the values: ``(0.0, 1.0)`` for images; for the
            continuous toy sets a bound that contains all but a vanishing fraction of samples;
            for float arrays read from files, the observed minimum and maximum.
        description: One line saying what the data is.

    Example:
        >>> info = DatasetInfo("points", (2,), None, False, (-1.0, 1.0), "Random points.")
        >>> info.shape, info.num_classes
        ((2,), None)
    """

    name: str
    shape: tuple[int, ...]
    num_classes: int | None
    binary: bool
    value_range: tuple[float, float]
    description: str


# eq=False: the fields hold numpy arrays, for which a generated __eq__/__hash__ would fail
# ("truth value of an array is ambiguous" / "unhashable type"); identity semantics are kept.
@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Arrays of one split of a dataset plus its :class:`DatasetInfo`.

    Attributes:
        x: float32 array of shape ``(N, *info.shape)``.
        y: int32 labels of shape ``(N,)``, per-example integer targets of shape ``(N, ...)``
            (segmentation masks, target sequences), or ``None`` when the data is unlabeled.
        info: Description of the dataset.

    Example:
        >>> info = DatasetInfo("points", (2,), 2, False, (0.0, 1.0), "Two points.")
        >>> ds = Dataset(np.zeros((2, 2), np.float32), np.array([0, 1], np.int32), info)
        >>> len(ds), ds.x.shape
        (2, (2, 2))
    """

    x: np.ndarray
    y: np.ndarray | None
    info: DatasetInfo

    def __post_init__(self) -> None:
        # Catch loader bugs at the source rather than as shape errors deep inside a model.
        if self.x.dtype != np.float32:
            raise TypeError(f"Dataset.x must be float32, got {self.x.dtype}.")
        if tuple(self.x.shape[1:]) != tuple(self.info.shape):
            raise ValueError(
                f"Dataset.x has per-example shape {self.x.shape[1:]}, "
                f"but info.shape is {self.info.shape}."
            )
        if self.y is not None:
            if self.y.dtype != np.int32 or self.y.shape[:1] != self.x.shape[:1]:
                raise ValueError(
                    f"Dataset.y must be int32 with {self.x.shape[0]} rows, "
                    f"got {self.y.dtype} with shape {self.y.shape}."
                )

    def __len__(self) -> int:
        return int(self.x.shape[0])


# --------------------------------------------------------------------------- shared helpers


def check_split(split: str) -> str:
    """Validates a split name.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"``.

    Returns:
        The split, unchanged.

    Raises:
        ValueError: If ``split`` is not one of :data:`SPLITS`.

    Example:
        >>> check_split("test")
        'test'
    """
    if split not in SPLITS:
        valid = ", ".join(repr(s) for s in SPLITS)
        raise ValueError(f"Unknown split {split!r}; valid splits are {valid}.")
    return split


def check_num_examples(num_examples: int | None) -> int | None:
    """Validates ``num_examples``: ``None`` or a positive integer.

    Args:
        num_examples: Requested number of examples, or ``None`` for the default.

    Returns:
        ``num_examples``, unchanged.

    Raises:
        ValueError: If it is not ``None`` and not a positive integer.

    Example:
        >>> check_num_examples(10)
        10
    """
    if num_examples is not None and (
        isinstance(num_examples, bool)
        or not isinstance(num_examples, (int, np.integer))
        or num_examples < 1
    ):
        raise ValueError(f"num_examples must be a positive integer or None, got {num_examples!r}.")
    return num_examples


def is_binary(x: np.ndarray) -> bool:
    """Returns True if the (non-empty) array holds only the values 0 and 1.

    Args:
        x: Any numeric array.

    Returns:
        Whether every element is exactly 0 or 1.

    Example:
        >>> is_binary(np.array([0.0, 1.0, 1.0])), is_binary(np.array([0.0, 0.5]))
        (True, False)
    """
    return bool(x.size) and bool(np.all((x == 0) | (x == 1)))


def to_unit_interval(x: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Converts stored pixel or feature values to float32.

    Integer arrays whose values lie in ``[0, 255]`` are taken to be 8-bit pixels and divided by
    255, except when they hold only 0 and 1 (binarized images such as TFDS
    ``binarized_mnist``), which are kept as they are. Booleans become 0.0/1.0. Float arrays,
    and integers outside ``[0, 255]``, are cast to float32 unchanged.

    Args:
        x: Numeric array with at least one element.

    Returns:
        The float32 array and its ``value_range``: ``(0.0, 1.0)`` for scaled pixels and binary
        data, otherwise the observed ``(min, max)``.

    Raises:
        ValueError: If the array is empty or not numeric.

    Example:
        >>> scaled, value_range = to_unit_interval(np.array([0, 255], np.uint8))
        >>> scaled.tolist(), value_range
        ([0.0, 1.0], (0.0, 1.0))
    """
    if x.size == 0:
        raise ValueError("The array holds no values.")
    if x.dtype == np.bool_:
        return x.astype(np.float32), (0.0, 1.0)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"Expected a real numeric array, got dtype {x.dtype}.")
    if np.issubdtype(x.dtype, np.integer):
        low, high = int(x.min()), int(x.max())
        if low >= 0 and high <= 1:
            return x.astype(np.float32), (0.0, 1.0)
        if low >= 0 and high <= 255:
            return x.astype(np.float32) / np.float32(255.0), (0.0, 1.0)
    x = x.astype(np.float32)
    return x, (float(x.min()), float(x.max()))


def add_channel_axis(x: np.ndarray) -> np.ndarray:
    """Gives stored arrays the per-example layout the models expect.

    ``(N, H, W)`` grayscale images get a trailing channel axis, ``(N,)`` scalars become
    ``(N, 1)``; everything else is returned unchanged.

    Args:
        x: Array whose first axis indexes examples.

    Returns:
        The array, with a trailing axis added where needed.

    Example:
        >>> add_channel_axis(np.zeros((5, 28, 28))).shape
        (5, 28, 28, 1)
    """
    if x.ndim in (1, 3):
        return x[..., np.newaxis]
    return x


def make_dataset(
    name: str,
    x: np.ndarray,
    y: np.ndarray | None,
    *,
    num_classes: int | None,
    value_range: tuple[float, float],
    binary: bool,
    description: str,
) -> Dataset:
    """Builds a :class:`Dataset` with the dtypes and the info that match the arrays.

    Args:
        name: Dataset name for the info.
        x: Examples; cast to float32.
        y: Labels (cast to int32) or ``None``.
        num_classes: Number of classes, ``None`` for unlabeled data.
        value_range: Bounds of the values of the whole dataset (not only this split).
        binary: Whether the whole dataset is exactly {0, 1}.
        description: One-line description.

    Returns:
        The dataset.

    Example:
        >>> ds = make_dataset("pts", np.zeros((3, 2)), None, num_classes=None,
        ...                   value_range=(0.0, 0.0), binary=False, description="Zeros.")
        >>> ds.x.dtype, ds.info.shape
        (dtype('float32'), (2,))
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if y is not None:
        y = np.ascontiguousarray(y, dtype=np.int32)
    info = DatasetInfo(
        name=name,
        shape=tuple(int(d) for d in x.shape[1:]),
        num_classes=None if num_classes is None else int(num_classes),
        binary=bool(binary),
        value_range=(float(value_range[0]), float(value_range[1])),
        description=description,
    )
    return Dataset(x=x, y=y, info=info)


def split_seed(seed: int, split: str) -> int:
    """Derives the random seed of one split of a generated dataset.

    Train and test get independent streams (via :class:`numpy.random.SeedSequence`), so they
    never repeat each other's samples, not even across neighbouring ``seed`` values.

    Args:
        seed: The user's seed (non-negative).
        split: ``"train"`` or ``"test"``.

    Returns:
        A 32-bit seed, usable with ``np.random.default_rng`` and scikit-learn.

    Example:
        >>> split_seed(0, "train") != split_seed(0, "test")
        True
    """
    stream = ("train", "test").index(split)
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


# --------------------------------------------------------------------------- digits


@functools.lru_cache(maxsize=1)
def _shuffled_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits scaled to [0, 1], in the fixed train-then-test order (read-only)."""
    from sklearn.datasets import load_digits  # scikit-learn is slow to import; only here.

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[..., np.newaxis]
    labels = bunch.target.astype(np.int32)
    # The split must not move with the user's seed: one permutation, fixed forever.
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], labels[order]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _shuffled_digits()
    part = {
        "train": slice(0, DIGITS_NUM_TRAIN),
        "test": slice(DIGITS_NUM_TRAIN, DIGITS_NUM_TRAIN + DIGITS_NUM_TEST),
        "all": slice(None),
    }[split]
    # Copies, so callers may modify their arrays without touching the cache.
    return images[part].copy(), labels[part].copy()


def _load_digits(
    name: str, split: str, seed: int, num_examples: int | None, *, binarize: bool
) -> Dataset:
    del seed  # The split is fixed; nothing here is random.
    x, y = _digits_split(split)
    if binarize:
        x = (x > 0.5).astype(np.float32)
    if num_examples is not None:
        x, y = x[:num_examples], y[:num_examples]
    return make_dataset(
        name,
        x,
        y,
        num_classes=10,
        value_range=(0.0, 1.0),
        binary=binarize,
        description=EMBEDDED_DATASETS[name],
    )


# --------------------------------------------------------------------------- 2-D toy sets


def ring_centres(num_modes: int = RING_NUM_MODES, radius: float = RING_RADIUS) -> np.ndarray:
    """Returns the centres of the ``ring`` mixture: equally spaced points on a circle.

    Mode ``k`` sits at angle ``2 * pi * k / num_modes``; the label of a ``ring`` sample is the
    index of its mode.

    Args:
        num_modes: Number of Gaussian modes.
        radius: Radius of the circle.

    Returns:
        float32 array of shape ``(num_modes, 2)``.

    Example:
        >>> centres = ring_centres()
        >>> centres.shape, np.allclose(np.linalg.norm(centres, axis=1), 2.0)
        ((8, 2), True)
    """
    angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)


def _sample_ring(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    modes = rng.integers(0, RING_NUM_MODES, size=n)
    points = ring_centres()[modes] + rng.normal(0.0, RING_STD, size=(n, 2))
    return points, modes


def grid_centres(size: int = GRID_SIZE, spacing: float = GRID_SPACING) -> np.ndarray:
    """Returns the centres of the ``grid`` mixture: a ``size x size`` square lattice.

    The lattice is centred on the origin; mode ``k = row * size + column`` sits at
    ``(spacing * (column - (size - 1) / 2), spacing * (row - (size - 1) / 2))``.

    Example:
        >>> centres = grid_centres()
        >>> centres.shape, float(centres.min()), float(centres.max())
        ((25, 2), -4.0, 4.0)
    """
    axis = spacing * (np.arange(size) - (size - 1) / 2.0)
    rows, columns = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([columns.ravel(), rows.ravel()], axis=1).astype(np.float32)


def _sample_grid(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    modes = rng.integers(0, GRID_SIZE**2, size=n)
    return grid_centres()[modes] + rng.normal(0.0, GRID_STD, size=(n, 2)), modes


def _sample_moons(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    points, labels = make_moons(n_samples=n, noise=MOONS_NOISE, random_state=seed)
    return (points - np.asarray(MOONS_MEAN)) / np.asarray(MOONS_STD), labels


def checkerboard_squares(
    size: int = CHECKERBOARD_SIZE, half_width: float = CHECKERBOARD_HALF_WIDTH
) -> np.ndarray:
    """Returns the lower-left corners of the black squares of the ``checkerboard`` board.

    The board covers ``[-half_width, half_width]^2`` with ``size x size`` squares; the
    square in column ``i`` and row ``j`` (counted from the lower-left corner) is black when
    ``i + j`` is even, so the lower-left square is black. Squares are listed row by row
    from the bottom; the label of a ``checkerboard`` sample is the index of its square.

    Args:
        size: Number of squares per side (even, so that half of them are black).
        half_width: Half the side of the board.

    Returns:
        float32 array of shape ``(size * size // 2, 2)``.

    Example:
        >>> corners = checkerboard_squares()
        >>> corners.shape, corners[:3].tolist()
        ((8, 2), [[-2.0, -2.0], [0.0, -2.0], [-1.0, -1.0]])
    """
    side = 2.0 * half_width / size
    cells = [(i, j) for j in range(size) for i in range(size) if (i + j) % 2 == 0]
    corners = [(-half_width + i * side, -half_width + j * side) for i, j in cells]
    return np.asarray(corners, dtype=np.float32)


def _sample_checkerboard(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    corners = checkerboard_squares()
    squares = rng.integers(0, len(corners), size=n)
    side = 2.0 * CHECKERBOARD_HALF_WIDTH / CHECKERBOARD_SIZE
    # Uniform in [0, side) from the corner: the density is flat on every black square.
    return corners[squares] + side * rng.random((n, 2)), squares


def generate_splits(
    sampler: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
    split: str,
    seed: int,
    num_examples: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draws a split of a generated dataset; ``num_examples`` sets how many points it has."""
    if split != "all":
        count = TOY_SPLIT_SIZES[split] if num_examples is None else num_examples
        return sampler(count, split_seed(seed, split))
    # "all" is a train part followed by a test part in the default 4:1 ratio; at the default
    # size it equals the "train" split followed by the "test" split.
    total = sum(TOY_SPLIT_SIZES.values()) if num_examples is None else num_examples
    num_test = total // 5
    parts = [
        sampler(total - num_test, split_seed(seed, "train")),
        sampler(num_test, split_seed(seed, "test")),
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _load_ring(name: str, split: str, seed: int, num_examples: int | None) -> Dataset:
    x, y = generate_splits(_sample_ring, split, seed, num_examples)
    bound = RING_RADIUS + 6 * RING_STD  # 6 sigma: no sample in practice falls outside.
    return make_dataset(
        name,
        x,
        y,
        num_classes=RING_NUM_MODES,
        value_range=(-bound, bound),
        binary=False,
        description=EMBEDDED_DATASETS[name],
    )


def _load_grid(name: str, split: str, seed: int, num_examples: int | None) -> Dataset:
    x, y = generate_splits(_sample_grid, split, seed, num_examples)
    bound = GRID_SPACING * (GRID_SIZE - 1) / 2 + 6 * GRID_STD
    return make_dataset(
        name,
        x,
        y,
        num_classes=GRID_SIZE**2,
        value_range=(-bound, bound),
        binary=False,
        description=EMBEDDED_DATASETS[name],
    )


def _load_checkerboard(name: str, split: str, seed: int, num_examples: int | None) -> Dataset:
    x, y = generate_splits(_sample_checkerboard, split, seed, num_examples)
    bound = CHECKERBOARD_HALF_WIDTH  # uniform on the board: nothing falls outside
    return make_dataset(
        name,
        x,
        y,
        num_classes=len(checkerboard_squares()),
        value_range=(-bound, bound),
        binary=False,
        description=EMBEDDED_DATASETS[name],
    )


def _load_moons(name: str, split: str, seed: int, num_examples: int | None) -> Dataset:
    x, y = generate_splits(_sample_moons, split, seed, num_examples)
    # Standardised arcs span about +-1.73 (first coordinate) and +-1.52 (second); 6 sigma of
    # noise adds at most 0.61, so +-2.2 holds all samples in practice.
    return make_dataset(
        name,
        x,
        y,
        num_classes=2,
        value_range=(-2.2, 2.2),
        binary=False,
        description=EMBEDDED_DATASETS[name],
    )


# --------------------------------------------------------------------------- registry

EMBEDDED_DATASETS: dict[str, str] = {
    "digits": (
        "scikit-learn's 1,797 8x8 handwritten digits in [0, 1], shape (8, 8, 1), 10 classes; "
        "fixed split of 1,500 train / 297 test."
    ),
    "digits_binarized": (
        "The digits thresholded at 0.5 (pixels > 0.5 become 1), values exactly {0, 1}; "
        "same split as digits."
    ),
    "ring": (
        f"{RING_NUM_MODES} Gaussians (std {RING_STD}) evenly spaced on a circle of radius "
        f"{RING_RADIUS}, shape (2,), label = mode; 4,096 train / 1,024 test points."
    ),
    "grid": (
        f"{GRID_SIZE}x{GRID_SIZE} Gaussians (std {GRID_STD}) on a square lattice of spacing "
        f"{GRID_SPACING} centred on 0, shape (2,), label = mode; 4,096 train / 1,024 test points."
    ),
    "moons": (
        f"scikit-learn two moons (noise {MOONS_NOISE}) standardised to about zero mean and unit "
        "variance, shape (2,), 2 classes; 4,096 train / 1,024 test points."
    ),
    "checkerboard": (
        "Points uniform on the 8 black squares of a 4x4 checkerboard on [-2, 2]^2 (sharp "
        "edges; true NLL log 8 = 2.08 nats), shape (2,), label = square; 4,096 train / "
        "1,024 test points."
    ),
}

_LOADERS: dict[str, Callable[[str, str, int, int | None], Dataset]] = {
    "digits": functools.partial(_load_digits, binarize=False),
    "digits_binarized": functools.partial(_load_digits, binarize=True),
    "ring": _load_ring,
    "grid": _load_grid,
    "moons": _load_moons,
    "checkerboard": _load_checkerboard,
}


def load_embedded(
    name: str, split: str = "train", *, seed: int = 0, num_examples: int | None = None
) -> Dataset:
    """Loads one of the datasets that need no download.

    * ``digits``: scikit-learn's bundled ``load_digits`` (1,797 images), pixels divided by 16
      into [0, 1], shape ``(8, 8, 1)``, labels 0-9. The split is a permutation drawn once with
      ``np.random.default_rng(0)``: its first 1,500 images are ``"train"``, the last 297
      ``"test"``; ``"all"`` is train followed by test. ``seed`` has no effect and
      ``num_examples`` keeps the first examples of the split.
    * ``digits_binarized``: the same images with pixels ``> 0.5`` set to 1 and the rest to 0.
    * ``ring``: a mixture of 8 Gaussians with std 0.02 centred on :func:`ring_centres` (radius
      2), labels = mode index.
    * ``grid``: a mixture of 25 Gaussians with std 0.05 centred on :func:`grid_centres` (a 5x5
      lattice of spacing 2 from -4 to 4), labels = mode index.
    * ``moons``: scikit-learn ``make_moons(noise=0.05)`` standardised by the fixed transform
      ``(x - MOONS_MEAN) / MOONS_STD`` with ``MOONS_MEAN = (0.5, 0.25)`` and
      ``MOONS_STD = (0.866, 0.494)``, the exact mean and std of the noiseless moons.
    * ``checkerboard``: points uniform on the 8 black squares (side 1) of a 4x4 board on
      ``[-2, 2]^2``, the lower-left square black (:func:`checkerboard_squares`); label =
      square index. The density is 1/8 on the black squares, so the best NLL is
      ``log 8`` = 2.079 nats per point.

    ``ring``, ``grid``, ``moons`` and ``checkerboard`` are generated from ``seed``, with independent
    random streams for train and test (see :func:`split_seed`). They default to 4,096 train
    and 1,024 test points; ``num_examples`` sets the number of points instead. ``"all"`` is
    a train part followed by a test part in a 4:1 ratio (by default exactly the train split
    followed by the test split).

    Args:
        name: One of ``digits``, ``digits_binarized``, ``ring``, ``grid``, ``moons``,
            ``checkerboard``.
        split: ``"train"``, ``"test"`` or ``"all"``.
        seed: Seed of the generated datasets.
        num_examples: Size override (generated sets) or cap (digits).

    Returns:
        The requested split.

    Raises:
        ValueError: For an unknown name or split, or an invalid ``num_examples``.

    Example:
        >>> ds = load_embedded("ring", "test", num_examples=16)
        >>> ds.x.shape, ds.y.shape, ds.info.num_classes
        ((16, 2), (16,), 8)
    """
    if name not in _LOADERS:
        raise ValueError(f"Unknown embedded dataset {name!r}; available: {', '.join(_LOADERS)}.")
    check_split(split)
    check_num_examples(num_examples)
    return _LOADERS[name](name, split, seed, num_examples)
