"""Training a model for a wall-clock budget, keeping its best epoch on held-out data."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any


def train_for_minutes(
    model: Any,
    optimizer: Any,
    train: Any,
    score: Callable[[], float],
    minutes: float,
    batch_size: int,
    name: str,
    patience: int = 2,
    decay: float = 0.3,
    max_decays: int = 4,
    min_gain: float = 0.01,
) -> tuple[float, int, float]:
    """Whole epochs of `model.fit(train)` until `minutes` of training have passed.

    After each epoch `score()` (lower is better, e.g. a validation NLL) is measured; the
    best epoch's weights are restored at the end. When the score has not improved for
    `patience` epochs by more than `min_gain`, training goes back to the best weights and
    the learning rate is multiplied by `decay`. A non-finite score stops training, and so
    do `max_decays` decays in a row without such a gain (the rate is then below 1% of
    where it started, so the rest of the budget would buy nothing). Returns (best score,
    epochs, training seconds, which exclude the scoring).
    """
    best, best_weights, epochs, seconds, stale, decays = math.inf, None, 0, 0.0, 0, 0
    while seconds < 60 * minutes:
        start = time.perf_counter()
        model.fit(train, epochs=1, batch_size=batch_size, verbose=0)
        seconds += time.perf_counter() - start
        epochs += 1
        value = score()
        if not math.isfinite(value):
            print(f"  {name} epoch {epochs}: non-finite score {value}; stopping", flush=True)
            break
        if value < best - min_gain:
            stale, decays = 0, 0
        else:
            stale += 1
        if value < best:  # the best weights are kept however small the gain
            best, best_weights = value, model.get_weights()
        print(f"  {name} epoch {epochs}: valid {value:.4f} ({seconds:.0f} s)", flush=True)
        if stale >= patience:  # plateau: a smaller step, from the best weights so far
            if decays >= max_decays:
                print(f"  {name}: no better after {decays} decays; stopping", flush=True)
                break
            model.set_weights(best_weights)
            optimizer.learning_rate.assign(float(optimizer.learning_rate) * decay)
            stale, decays = 0, decays + 1
    if best_weights is not None:
        model.set_weights(best_weights)
    return best, epochs, seconds
