"""Generated segmentation data for chapter 3: ``shapes``, circles, squares and triangles.

Each 32x32 grayscale image holds one to three non-overlapping shapes (circles, axis-aligned
squares, equilateral triangles at any rotation) over a noisy background; the mask gives each
pixel's class: 0 background, 1 circle, 2 square, 3 triangle. Brightness says nothing about
the class (every shape and the background draw their own grey level), so a model has to
recognise the outline. Everything is drawn from a seed; train and test use independent
streams (:func:`mp_keras.data.embedded.split_seed`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from mp_keras.data.embedded import Dataset, check_num_examples, make_dataset, split_seed

IMAGE_SIZE = 32
CLASS_NAMES: tuple[str, ...] = ("background", "circle", "square", "triangle")
SHAPES_SPLIT_SIZES: dict[str, int] = {"train": 2000, "test": 400}
MAX_SHAPES = 3
NOISE_STD = 0.1
# Sizes in pixels: circle radius, square half-side, triangle circumradius.
_SIZE_RANGES = {1: (3.5, 7.0), 2: (3.0, 6.0), 3: (5.0, 9.0)}
_PLACEMENT_TRIES = 30

SHAPES_DESCRIPTION = (
    f"Generated {IMAGE_SIZE}x{IMAGE_SIZE}x1 images of 1-{MAX_SHAPES} non-overlapping circles, "
    "squares and triangles on a noisy background; y: per-pixel masks (0 background, 1 circle, "
    "2 square, 3 triangle); 2,000 train / 400 test."
)


def _shape_mask(
    label: int, centre: np.ndarray, size: float, angle: float, grid: np.ndarray
) -> np.ndarray:
    """Boolean mask of one shape on the pixel grid `(2, H, W)` of (row, col) coordinates."""
    offset = grid - centre[:, None, None]
    if label == 1:
        return (offset**2).sum(0) <= size**2
    if label == 2:
        return np.abs(offset).max(0) <= size
    # Equilateral triangle: inside when on the inner side of all three edges.
    corners = angle + 2 * np.pi * np.arange(3) / 3
    vertices = size * np.stack([np.sin(corners), np.cos(corners)], axis=1)  # (3, 2)
    inside = np.ones(grid.shape[1:], bool)
    for k in range(3):
        a, b = vertices[k], vertices[(k + 1) % 3]
        cross = (b[0] - a[0]) * (offset[1] - a[1]) - (b[1] - a[1]) * (offset[0] - a[0])
        inside &= cross <= 0
    return inside


def _dilate(mask: np.ndarray) -> np.ndarray:
    """The mask grown by one pixel in all eight directions."""
    padded = np.pad(mask, 1)
    height, width = mask.shape
    grown = np.zeros_like(mask)
    for dr in range(3):
        for dc in range(3):
            grown |= padded[dr : dr + height, dc : dc + width]
    return grown


def _draw_image(
    rng: np.random.Generator, grid: np.ndarray, image_size: int
) -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((image_size, image_size), np.int32)
    background = rng.uniform(0.0, 0.35)
    image = np.full((image_size, image_size), background)
    # The shapes keep one pixel of background between them, so every outline is visible.
    occupied = np.zeros_like(mask, bool)
    for _ in range(rng.integers(1, MAX_SHAPES + 1)):
        label = int(rng.integers(1, 4))
        size = rng.uniform(*_SIZE_RANGES[label])
        angle = rng.uniform(0.0, 2 * np.pi)
        reach = size + 1.0  # the whole shape inside the image
        for _ in range(_PLACEMENT_TRIES):
            centre = rng.uniform(reach - 1.0, image_size - reach, size=2)
            shape = _shape_mask(label, centre, size, angle, grid)
            if shape.any() and not (_dilate(shape) & occupied).any():
                break
        else:
            continue  # no room left for this one
        occupied |= shape
        mask[shape] = label
        image[shape] = background + rng.uniform(0.2, 0.6)
    image = image + rng.normal(0.0, NOISE_STD, size=image.shape)
    return np.clip(image, 0.0, 1.0), mask


@functools.lru_cache(maxsize=8)
def _generate_cached(
    num_examples: int, seed: int, image_size: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    grid = np.stack(np.mgrid[0:image_size, 0:image_size]).astype(np.float64)
    images = np.empty((num_examples, image_size, image_size, 1), np.float32)
    masks = np.empty((num_examples, image_size, image_size), np.int32)
    for n in range(num_examples):
        image, mask = _draw_image(rng, grid, image_size)
        images[n, ..., 0], masks[n] = image, mask
    images.setflags(write=False)
    masks.setflags(write=False)
    return images, masks


def generate_shapes(
    num_examples: int, seed: int = 0, image_size: int = IMAGE_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Draws images of circles, squares and triangles and their segmentation masks.

    Args:
        num_examples: Number of images.
        seed: Seed of ``np.random.default_rng``; equal seeds give equal arrays.
        image_size: Height and width in pixels (at least 24, so three shapes fit).

    Returns:
        ``x`` float32 ``(num_examples, image_size, image_size, 1)`` in [0, 1] and ``y``
        int32 ``(num_examples, image_size, image_size)`` with classes 0-3 (see
        :data:`CLASS_NAMES`).

    Example:
        >>> x, y = generate_shapes(4, seed=0)
        >>> x.shape, y.shape, sorted(set(np.unique(y).tolist()) - {0}) != []
        ((4, 32, 32, 1), (4, 32, 32), True)
    """
    check_num_examples(num_examples)
    if image_size < 24:
        raise ValueError(f"image_size must be at least 24, got {image_size}.")
    images, masks = _generate_cached(int(num_examples), int(seed), int(image_size))
    return images.copy(), masks.copy()


def _load_shapes(name: str, split: str, seed: int, num_examples: int | None) -> Dataset:
    check_num_examples(num_examples)
    if split == "all":
        # Train then test in the default 5:1 ratio; at the default size it is exactly the
        # "train" split followed by the "test" split.
        total = sum(SHAPES_SPLIT_SIZES.values()) if num_examples is None else num_examples
        num_test = total // 6
        parts = [
            generate_shapes(total - num_test, split_seed(seed, "train")),
            generate_shapes(num_test, split_seed(seed, "test")) if num_test else None,
        ]
        x = np.concatenate([p[0] for p in parts if p is not None])
        y = np.concatenate([p[1] for p in parts if p is not None])
    else:
        count = SHAPES_SPLIT_SIZES[split] if num_examples is None else num_examples
        x, y = generate_shapes(count, split_seed(seed, split))
    return make_dataset(
        name,
        x,
        y,
        num_classes=len(CLASS_NAMES),
        value_range=(0.0, 1.0),
        binary=False,
        description=SHAPES_DESCRIPTION,
    )


# name -> (loader(name, split, seed, num_examples) -> Dataset, one-line description)
DATASETS: dict[str, tuple[Callable[[str, str, int, int | None], Dataset], str]] = {
    "shapes": (_load_shapes, SHAPES_DESCRIPTION),
}
