"""Generated 2-D datasets of chapter 1: a linearly separable set and XOR.

* ``separable``: points uniform in the square [-1, 1]^2, labelled 1 on the positive side of a
  random line w^T x + b = 0 and 0 on the other; points closer to the line than the margin
  are redrawn, so the two classes are at least ``2 * SEPARABLE_MARGIN`` apart. The line
  depends on ``seed`` only, so the train and test splits share it
  (:func:`separable_hyperplane`). The perceptron convergence theorem applies.
* ``xor``: Gaussian clusters (std ``XOR_STD``) around the four corners of the unit square,
  labelled by the XOR of the corner's coordinates; the four clusters have the same size
  (up to one point), so no line classifies more than about 3/4 of the points.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from mp_keras.data.embedded import (
    Dataset,
    check_num_examples,
    generate_splits,
    make_dataset,
)

SEPARABLE_MARGIN = 0.1
XOR_STD = 0.1
XOR_CORNERS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], np.float32)
XOR_LABELS = np.array([0, 1, 1, 0], np.int32)


def separable_hyperplane(seed: int = 0) -> tuple[np.ndarray, float]:
    """The line that labels the ``separable`` dataset drawn with ``seed``.

    The normal ``w`` is a unit vector at a uniform random angle and the offset ``b`` is
    uniform in [-0.3, 0.3], so the line always crosses the square [-1, 1]^2 near its centre
    and both classes are large.

    Args:
        seed: The dataset's seed.

    Returns:
        ``(w, b)``: float64 normal of shape ``(2,)`` with ``||w|| = 1``, and the offset. Every
        point ``x`` of the dataset has ``|w^T x + b| >= SEPARABLE_MARGIN`` and label
        ``1{w^T x + b > 0}``.

    Example:
        >>> w, b = separable_hyperplane(0)
        >>> round(float(np.linalg.norm(w)), 6), abs(b) <= 0.3
        (1.0, True)
    """
    # A stream of its own (not the split streams), so both splits share the line.
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    angle = rng.uniform(0.0, 2.0 * np.pi)
    return np.array([np.cos(angle), np.sin(angle)]), float(rng.uniform(-0.3, 0.3))


def _sample_separable(n: int, seed: int, *, dataset_seed: int) -> tuple[np.ndarray, np.ndarray]:
    w, b = separable_hyperplane(dataset_seed)
    rng = np.random.default_rng(seed)
    points = np.empty((0, 2))
    # Rejection sampling: the band |w^T x + b| < margin covers well under a fifth of the
    # square, so two or three rounds are enough.
    while len(points) < n:
        candidates = rng.uniform(-1.0, 1.0, size=(2 * n, 2))
        keep = np.abs(candidates @ w + b) >= SEPARABLE_MARGIN
        points = np.concatenate([points, candidates[keep]])
    points = points[:n]
    return points, (points @ w + b > 0).astype(np.int32)


def _sample_xor(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Equal cluster sizes: with unequal ones a line could beat 3/4 by sacrificing the
    # smallest cluster.
    corners = rng.permutation(np.arange(n) % 4)
    points = XOR_CORNERS[corners] + rng.normal(0.0, XOR_STD, size=(n, 2))
    return points, XOR_LABELS[corners]


def _load_separable(name: str, split: str, seed: int, num_examples: int | None) -> Dataset:
    check_num_examples(num_examples)
    sampler = functools.partial(_sample_separable, dataset_seed=seed)
    x, y = generate_splits(sampler, split, seed, num_examples)
    return make_dataset(
        name,
        x,
        y,
        num_classes=2,
        value_range=(-1.0, 1.0),
        binary=False,
        description=DATASETS[name][1],
    )


def _load_xor(name: str, split: str, seed: int, num_examples: int | None) -> Dataset:
    check_num_examples(num_examples)
    x, y = generate_splits(_sample_xor, split, seed, num_examples)
    bound = 6 * XOR_STD  # 6 sigma: no sample in practice falls outside.
    return make_dataset(
        name,
        x,
        y,
        num_classes=2,
        value_range=(-bound, 1.0 + bound),
        binary=False,
        description=DATASETS[name][1],
    )


# name -> (loader(name, split, seed, num_examples) -> Dataset, one-line description)
DATASETS: dict[str, tuple[Callable[[str, str, int, int | None], Dataset], str]] = {
    "separable": (
        _load_separable,
        "2-D points uniform in [-1, 1]^2 labelled 0/1 by a random line (fixed by the seed), "
        f"none closer than {SEPARABLE_MARGIN} to it: linearly separable; "
        "4,096 train / 1,024 test points.",
    ),
    "xor": (
        _load_xor,
        f"XOR: 2-D Gaussian clusters (std {XOR_STD}) of equal size around the corners of the "
        "unit square, label = x1 XOR x2: not linearly separable; 4,096 train / 1,024 test points.",
    ),
}
