"""The figure of an image-text model (CLIP): test images titled with the caption it
retrieves for each among the distinct captions of the test split."""

from __future__ import annotations

import os
import textwrap
from typing import Any

import keras
import numpy as np


def save_caption_figure(
    model: Any, path: str | os.PathLike, x: np.ndarray, y: np.ndarray, num: int = 16
) -> None:
    """Writes `num` images of `x` in rows of 8, each titled with its retrieved caption
    (a check mark when it is the image's own caption)."""
    from mp_keras.data.captions import detokenize
    from mp_keras.plots import save_image_grid

    tokens = np.asarray(y)
    unique = np.unique(tokens, axis=0)
    images = np.asarray(x[:num])
    scores = model.similarity(images, unique)
    best = unique[np.argmax(keras.ops.convert_to_numpy(scores), axis=1)]
    hits = [bool(np.array_equal(b, t)) for b, t in zip(best, tokens[:num])]
    titles = [
        textwrap.fill(caption, 14) + (" ✓" if hit else "")
        for caption, hit in zip(detokenize(best), hits)
    ]
    rows = {f"{i // 8 + 1}": images[i : i + 8] for i in range(0, len(images), 8)}
    row_titles = {f"{i // 8 + 1}": titles[i : i + 8] for i in range(0, len(images), 8)}
    save_image_grid(rows, path, titles=row_titles)
