"""Handwritten digits as pen trajectories: the sequence data of the VRNN (notes, 6.6).

Each example is a digit drawn as one pen-down path of ``STROKE_LENGTH`` points ``(x, y)``,
shape ``(STROKE_LENGTH, 2)``, with x to the right and y upwards, both in ``[-1, 1]`` (the
corners of the image), labelled with its digit. The paths are extracted offline and
deterministically from images, by :func:`strokes_from_images`:

1. the image is upsampled (bilinear) to ``UPSAMPLE x`` its size and thresholded at
   ``INK_THRESHOLD`` of its maximum, so that an 8 x 8 digit becomes a 24 x 24 ink mask;
2. the mask is thinned to a one-pixel skeleton (Zhang & Suen 1984), spurs shorter than
   ``SPUR_LENGTH`` pixels are pruned, and specks smaller than ``MIN_COMPONENT`` pixels
   dropped;
3. the skeleton (8-connected pixels) is walked depth first from its top-left end point. The
   pen retraces a branch to come back from it, so it never lifts (and no stray ink is drawn);
   the longest branch is walked last, and not retraced. A loop (0, 6, 8, 9) is closed by a
   visit to its far end. Separate pieces of a broken stroke are joined by a straight line;
4. the path is resampled to ``STROKE_LENGTH`` points equally spaced along its length.

``digit_strokes`` is the embedded 8 x 8 digits (:mod:`mp_keras.data.embedded`, scikit-learn's
copy, split 1,500 train / 297 test) converted this way, so it needs no file and no network;
:func:`strokes_from_images` converts any other images the same way (e.g. the MNIST test set).
:func:`render_strokes` draws paths back into images, and :func:`save_strokes_figure` writes
rows of them as a PNG (samples per class).

Example:
    >>> ds = load_strokes("test", num_examples=4)
    >>> ds.x.shape, ds.y.tolist(), float(abs(ds.x).max()) <= 1.0
    ((4, 32, 2), [0, 4, 4, 8], True)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

import numpy as np

from mp_keras.data.embedded import (
    Dataset,
    check_num_examples,
    check_split,
    load_embedded,
    make_dataset,
)

STROKE_LENGTH = 32
UPSAMPLE = 3
INK_THRESHOLD = 0.4
SPUR_LENGTH = 3
MIN_COMPONENT = 4
_LOOP_DEPTH = 6  # a skeleton edge joining pixels this far apart on the walk closes a loop

# The 8 neighbours, clockwise from north (Zhang & Suen's P2 .. P9).
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


# --------------------------------------------------------------------------- extraction


def _interpolation(size: int, factor: int) -> np.ndarray:
    """The `(size * factor, size)` matrix of bilinear upsampling (pixel centres aligned)."""
    at = np.clip((np.arange(size * factor) + 0.5) / factor - 0.5, 0, size - 1)
    return np.maximum(0.0, 1.0 - np.abs(at[:, None] - np.arange(size)[None, :]))  # hat weights


def _neighbours(mask: np.ndarray) -> np.ndarray:
    """The 8 neighbour planes of 0/1 masks `(..., H, W)`, `(8, ..., H, W)` in that order."""
    pad = [(0, 0)] * (mask.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(mask, pad)
    height, width = mask.shape[-2:]
    return np.stack(
        [padded[..., 1 + dr : 1 + dr + height, 1 + dc : 1 + dc + width] for dr, dc in _NEIGHBOURS]
    )


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang & Suen (1984) thinning: one-pixel-wide skeletons of boolean masks `(..., H, W)`.

    Example:
        >>> bar = np.zeros((5, 9), bool); bar[1:4, 1:8] = True  # a 3-pixel-thick bar
        >>> thin(bar).astype(int)[2].tolist()  # one pixel thick (and a little shorter)
        [0, 0, 1, 1, 1, 1, 0, 0, 0]
    """
    skeleton = np.asarray(mask, bool).copy()
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            p = _neighbours(skeleton.astype(np.uint8))
            count = p.sum(0)
            transitions = ((p == 0) & (np.roll(p, -1, axis=0) == 1)).sum(0)
            if step == 0:  # south-east boundary and north-west corner points
                keep = (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
            else:
                keep = (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
            remove = skeleton & (count >= 2) & (count <= 6) & (transitions == 1) & keep
            if remove.any():
                skeleton &= ~remove
                changed = True
    return skeleton


def _graph(skeleton: np.ndarray) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Adjacency lists of the 8-connected skeleton pixels."""
    pixels = {tuple(int(v) for v in p) for p in np.argwhere(skeleton)}
    return {
        (r, c): [(r + dr, c + dc) for dr, dc in _NEIGHBOURS if (r + dr, c + dc) in pixels]
        for r, c in sorted(pixels)
    }


def _components(graph: dict) -> list[list[tuple[int, int]]]:
    seen: set = set()
    parts = []
    for start in graph:
        if start in seen:
            continue
        part, stack = [], [start]
        seen.add(start)
        while stack:
            node = stack.pop()
            part.append(node)
            for other in graph[node]:
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        parts.append(sorted(part))
    return parts


def _prune_spurs(graph: dict, length: int) -> dict:
    """Removes end branches of fewer than `length` pixels that hang off a junction."""
    graph = {node: list(edges) for node, edges in graph.items()}
    for end in [node for node, edges in graph.items() if len(edges) == 1]:
        branch, previous, node = [end], None, end
        while len(branch) <= length:
            ahead = [n for n in graph.get(node, []) if n != previous]
            if len(ahead) != 1 or len(graph[ahead[0]]) > 2:
                break  # a junction (or the other end) is next
            previous, node = node, ahead[0]
            branch.append(node)
        ahead = [n for n in graph.get(node, []) if n != previous]
        if len(branch) < length and ahead and len(graph[ahead[0]]) > 2:
            for pixel in branch:  # the branch ends at a junction: a spur
                for other in graph.pop(pixel, []):
                    if other in graph:
                        graph[other].remove(pixel)
    return graph


def _walk(graph: dict, start: tuple[int, int]) -> list[tuple[int, int]]:
    """Depth-first pen path over one component, retracing every branch but the last."""
    parent, order, depth = {start: None}, [start], {start: 0}
    stack = [start]
    while stack:  # the depth-first tree, children in a fixed (clockwise) order
        node = stack.pop()
        for other in reversed(graph[node]):
            if other not in parent:
                parent[other], depth[other] = node, depth[node] + 1
                order.append(other)
                stack.append(other)
    size = dict.fromkeys(parent, 1)
    for node in reversed(order):
        if parent[node] is not None:
            size[parent[node]] += size[node]
    children: dict = {node: [] for node in parent}
    for node in order[1:]:
        children[parent[node]].append(node)

    path: list[tuple[int, int]] = []

    def visit(node: tuple[int, int]) -> None:
        path.append(node)
        for other in graph[node]:  # close a loop: go to its far end and back
            if parent[other] != node and parent[node] != other:
                if depth[node] - depth[other] >= _LOOP_DEPTH:
                    path.extend([other, node])
        for child in sorted(children[node], key=lambda c: size[c]):  # longest last
            visit(child)
            path.append(node)

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * len(parent) + 100))
    try:
        visit(start)
    finally:
        sys.setrecursionlimit(limit)
    # The pen stops at the end of the last branch: drop the retrace back to the start.
    last_new = max(path.index(node) for node in parent)
    return path[: last_new + 1]


def _start_pixel(component: list[tuple[int, int]], graph: dict) -> tuple[int, int]:
    """The top-most (then left-most) end point, or the top-left pixel of a closed loop."""
    ends = [node for node in component if len(graph[node]) == 1]
    return min(ends or component)


def _pen_path(skeleton: np.ndarray) -> np.ndarray:
    """Pixel coordinates `(n, 2)` (row, col) of the pen path over one skeleton."""
    graph = _prune_spurs(_graph(skeleton), SPUR_LENGTH)
    parts = [p for p in _components(graph) if len(p) >= MIN_COMPONENT]
    if not parts:  # only specks: keep the largest one
        parts = sorted(_components(graph), key=len)[-1:]
    parts.sort(key=lambda part: _start_pixel(part, graph))
    path: list[tuple[int, int]] = []
    for part in parts:  # broken strokes are joined by the straight line between them
        path.extend(_walk(graph, _start_pixel(part, graph)))
    return np.asarray(path, np.float64)


def _resample(points: np.ndarray, length: int) -> np.ndarray:
    """`length` points equally spaced along the polyline `points`."""
    steps = np.sqrt((np.diff(points, axis=0) ** 2).sum(1))
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    if arc[-1] == 0:  # a single pixel
        return np.repeat(points[:1], length, axis=0)
    at = np.linspace(0.0, arc[-1], length)
    return np.stack([np.interp(at, arc, points[:, k]) for k in range(points.shape[1])], 1)


def strokes_from_images(
    images: np.ndarray, length: int = STROKE_LENGTH, upsample: int | None = None
) -> np.ndarray:
    """Pen trajectories of grayscale digit images (see the module docstring).

    Args:
        images: array `(n, height, width)` or `(n, height, width, 1)`, dark background.
        length: int. Points per trajectory. Defaults to `STROKE_LENGTH`.
        upsample: int or None. Upsampling factor before thinning; `None` upsamples images
            smaller than 16 pixels by `UPSAMPLE` and keeps larger ones. Defaults to `None`.

    Returns:
        float32 array `(n, length, 2)` of `(x, y)` in `[-1, 1]`, y upwards.

    Example:
        >>> image = np.zeros((8, 8)); image[1:7, 4] = 1.0  # a vertical bar: a "1"
        >>> path = strokes_from_images(image[None], length=5)[0]
        >>> np.round(path.astype(float), 2).tolist()  # drawn top to bottom
        [[0.13, 0.65], [0.13, 0.35], [0.13, 0.04], [0.13, -0.26], [0.13, -0.57]]
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(
            f"strokes_from_images expects images of shape (n, height, width) or "
            f"(n, height, width, 1); got shape {images.shape}."
        )
    if isinstance(length, bool) or int(length) != length or length < 2:
        raise ValueError(f"length must be an int >= 2, got {length!r}.")
    size = max(images.shape[1:])
    factor = (UPSAMPLE if size < 16 else 1) if upsample is None else int(upsample)
    height, width = images.shape[1] * factor, images.shape[2] * factor
    big = np.einsum(  # (n, height, width): bilinear upsampling of every image at once
        "rh,nhw,cw->nrc",
        _interpolation(images.shape[1], factor),
        images.astype(np.float64),
        _interpolation(images.shape[2], factor),
    )
    peak = big.reshape(len(big), -1).max(axis=1) if len(big) else np.zeros(0)
    if (peak <= 0).any():
        raise ValueError(
            f"Cannot extract a stroke from an empty (all-zero) image: image "
            f"{int(np.argmax(peak <= 0))} has no ink."
        )
    skeletons = thin(big > INK_THRESHOLD * peak[:, None, None])
    scale = np.array([height - 1, width - 1], np.float64)
    out = np.empty((len(images), int(length), 2), np.float32)
    for i, skeleton in enumerate(skeletons):
        rows_cols = _resample(_pen_path(skeleton), int(length))
        unit = 2.0 * rows_cols / scale - 1.0  # (row, col) in [-1, 1]
        out[i] = np.stack([unit[:, 1], -unit[:, 0]], axis=1)  # (x, y), y up
    return out


# --------------------------------------------------------------------------- dataset


@functools.lru_cache(maxsize=4)
def _digit_strokes(split: str, length: int) -> tuple[np.ndarray, np.ndarray]:
    digits = load_embedded("digits", split)
    x, labels = strokes_from_images(digits.x, length), digits.y
    x.setflags(write=False)
    labels.setflags(write=False)
    return x, labels


def load_strokes(
    split: str = "train", *, length: int = STROKE_LENGTH, num_examples: int | None = None
) -> Dataset:
    """The embedded digits as pen trajectories: `x` `(n, length, 2)`, labels `y` `(n,)`.

    The split is the one of the embedded `digits` (1,500 train / 297 test, `"all"` is
    both); `num_examples` keeps the first examples. The extraction is deterministic, and
    cached per split and length.

    Example:
        >>> ds = load_strokes("test", length=16, num_examples=3)
        >>> ds.x.shape, ds.info.num_classes, ds.info.value_range
        ((3, 16, 2), 10, (-1.0, 1.0))
    """
    check_split(split)
    check_num_examples(num_examples)
    x, y = _digit_strokes(split, int(length))
    if num_examples is not None:
        x, y = x[:num_examples], y[:num_examples]
    return make_dataset(
        "digit_strokes",
        x.copy(),
        y.copy(),
        num_classes=10,
        value_range=(-1.0, 1.0),
        binary=False,
        description=DATASETS["digit_strokes"][1],
    )


def _load(name: str, split: str, seed: int, num_examples: int | None) -> Dataset:
    del name, seed  # one dataset, fixed split: nothing is random
    return load_strokes(split, num_examples=num_examples)


# name -> (loader(name, split, seed, num_examples) -> Dataset, one-line description)
DATASETS: dict[str, tuple[Callable[[str, str, int, int | None], Dataset], str]] = {
    "digit_strokes": (
        _load,
        f"The 8x8 digits as pen paths: {STROKE_LENGTH} points (x, y) in [-1, 1] per digit, "
        "shape (32, 2), 10 classes; same 1,500 / 297 split as digits.",
    ),
}


# --------------------------------------------------------------------------- pictures


def render_strokes(strokes: np.ndarray, size: int = 28, width: float = 1.2) -> np.ndarray:
    """Draws trajectories as anti-aliased lines: images `(n, size, size)` in [0, 1].

    Args:
        strokes: array `(n, length, 2)` of `(x, y)` in `[-1, 1]` (points outside are
            clipped to the border).
        size: int. Side of the square image in pixels. Defaults to `28`.
        width: float. Half-width of the pen in pixels. Defaults to `1.2`.

    Example:
        >>> line = np.array([[[-1.0, 0.0], [1.0, 0.0]]])  # a horizontal line
        >>> image = render_strokes(line, size=5)[0]
        >>> image[2].tolist(), float(image[0].max())
        ([1.0, 1.0, 1.0, 1.0, 1.0], 0.0)
    """
    strokes = np.asarray(strokes, np.float64)
    if strokes.ndim != 3 or strokes.shape[-1] != 2:
        raise ValueError(
            f"render_strokes expects strokes of shape (n, length, 2); got {strokes.shape}."
        )
    # Points in pixel coordinates (col, row) of a size x size grid of pixel centres.
    points = np.clip(strokes, -1.0, 1.0)
    pixels = np.stack([(points[..., 0] + 1) / 2, (1 - points[..., 1]) / 2], -1) * (size - 1)
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size)), -1).reshape(-1, 2)  # (c, r)
    nearest = np.full((len(pixels), size * size), np.inf)  # squared distance to the path
    for k in range(pixels.shape[1] - 1):  # one segment at a time: (n, pixels) arrays
        start, direction = pixels[:, k, None, :], pixels[:, k + 1, None, :] - pixels[:, k, None, :]
        offset = grid[None] - start  # (n, pixels, 2)
        along = (offset * direction).sum(-1) / np.maximum((direction**2).sum(-1), 1e-12)
        gap = offset - np.clip(along, 0.0, 1.0)[..., None] * direction
        nearest = np.minimum(nearest, (gap**2).sum(-1))
    if pixels.shape[1] == 1:  # a single point
        nearest = ((grid[None] - pixels[:, :1]) ** 2).sum(-1)
    ink = np.clip(width + 0.5 - np.sqrt(nearest), 0.0, 1.0)
    return ink.reshape(-1, size, size).astype(np.float32)


def save_strokes_figure(
    rows: dict[str, np.ndarray], path: str | os.PathLike, size: int = 28
) -> None:
    """Writes labelled rows of trajectories (e.g. samples per class) as one PNG.

    Args:
        rows: mapping from a row label to trajectories `(n, length, 2)`.
        path: where to write the PNG (written to a temporary name, then renamed).
        size: int. Pixels per rendered digit. Defaults to `28`.
    """
    from mp_keras.plots import save_image_grid

    save_image_grid({name: render_strokes(s, size) for name, s in rows.items()}, path)


def label_rows(
    strokes: np.ndarray, labels: Sequence[int], per_row: int = 8
) -> dict[str, np.ndarray]:
    """Groups trajectories by label: `{"0": first per_row of class 0, ...}`, sorted."""
    labels = np.asarray(labels)
    return {str(k): strokes[labels == k][:per_row] for k in sorted(set(labels.tolist()))}
