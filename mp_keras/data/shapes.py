"""Generated datasets: (filled in by its chapter)."""

from __future__ import annotations

from collections.abc import Callable

from mp_keras.data.embedded import Dataset

# name -> (loader(name, split, seed, num_examples) -> Dataset, one-line description)
DATASETS: dict[str, tuple[Callable[[str, str, int, int | None], Dataset], str]] = {}
