"""Training a model for a wall-clock budget, keeping its best epoch on held-out data.

With a `checkpoint` path, the whole state of the run (current and best weights, the
optimizer's variables including its learning rate, epochs, seconds and plateau counters)
is written there atomically after every epoch, and `resume=True` continues from it: a
budget of hours can be spent over several sessions, and a killed run loses at most one
epoch.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

STATE_KEYS = ("best", "epochs", "seconds", "stale", "decays", "finished")


def save_checkpoint(
    path: Path, model: Any, optimizer: Any, best_weights: list | None, state: dict
) -> None:
    """Writes the run's state to `path` (one .npz, written to a temporary name first)."""
    from mp_keras import io as mp_io

    arrays = {f"weight_{i}": w for i, w in enumerate(model.get_weights())}
    arrays |= {f"best_{i}": w for i, w in enumerate(best_weights or [])}
    arrays |= {f"optimizer_{i}": np.asarray(v) for i, v in enumerate(optimizer.variables)}
    buffer = io.BytesIO()
    np.savez(buffer, state=np.array(json.dumps(state)), **arrays)
    mp_io.write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, model: Any, optimizer: Any) -> tuple[dict, list | None]:
    """Restores what `save_checkpoint` wrote; returns (state, best weights or None)."""
    with np.load(path) as archive:
        arrays = dict(archive)
    state = json.loads(str(arrays.pop("state")))
    count = len(model.get_weights())
    if sum(key.startswith("weight_") for key in arrays) != count or set(STATE_KEYS) - set(state):
        raise ValueError(f"{path} is not a checkpoint of this model; delete it or drop --resume.")
    weights = [arrays[f"weight_{i}"] for i in range(count)]
    try:
        model.set_weights(weights)
    except ValueError as error:
        raise ValueError(
            f"{path} holds weights of another configuration ({error}); delete it or drop --resume."
        ) from error
    optimizer.build(model.trainable_variables)
    for i, variable in enumerate(optimizer.variables):
        variable.assign(arrays[f"optimizer_{i}"])
    best = [arrays[f"best_{i}"] for i in range(len(weights))] if "best_0" in arrays else None
    return state, best


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
    checkpoint: Path | None = None,
    resume: bool = False,
) -> tuple[float, int, float]:
    """Whole epochs of `model.fit(train)` until `minutes` of training have passed.

    After each epoch `score()` (lower is better, e.g. a validation NLL) is measured; the
    best epoch's weights are restored at the end. When the score has not improved for
    `patience` epochs by more than `min_gain`, training goes back to the best weights and
    the learning rate is multiplied by `decay`. A non-finite score stops training, and so
    do `max_decays` decays in a row without such a gain (the rate is then below 1% of
    where it started, so the rest of the budget would buy nothing). Returns (best score,
    epochs, training seconds, which exclude the scoring); with `resume`, the epochs and
    seconds count from the start of the first session, and `minutes` is the total.
    """
    state = dict(best=math.inf, epochs=0, seconds=0.0, stale=0, decays=0, finished=False)
    best_weights = None
    if resume and checkpoint is not None and checkpoint.is_file():
        state, best_weights = load_checkpoint(checkpoint, model, optimizer)
        print(f"  {name}: resumed at epoch {state['epochs']} ({state['seconds']:.0f} s)")
    best, epochs, seconds = state["best"], state["epochs"], state["seconds"]
    stale, decays, finished = state["stale"], state["decays"], state["finished"]
    while seconds < 60 * minutes and not finished:
        start = time.perf_counter()
        model.fit(train, epochs=1, batch_size=batch_size, verbose=0)
        seconds += time.perf_counter() - start
        epochs += 1
        value = float(score())
        if not math.isfinite(value):
            print(f"  {name} epoch {epochs}: non-finite score {value}; stopping", flush=True)
            finished = True
        else:
            stale, decays = (0, 0) if value < best - min_gain else (stale + 1, decays)
            if value < best:  # the best weights are kept however small the gain
                best, best_weights = value, model.get_weights()
            print(f"  {name} epoch {epochs}: valid {value:.4f} ({seconds:.0f} s)", flush=True)
        if not finished and stale >= patience:  # plateau: a smaller step, from the best
            if decays >= max_decays:
                print(f"  {name}: no better after {decays} decays; stopping", flush=True)
                finished = True
            else:
                model.set_weights(best_weights)
                optimizer.learning_rate.assign(float(optimizer.learning_rate) * decay)
                stale, decays = 0, decays + 1
        if checkpoint is not None:
            state = dict(best=best, epochs=epochs, seconds=seconds, stale=stale, decays=decays)
            state["finished"] = finished
            save_checkpoint(checkpoint, model, optimizer, best_weights, state)
    if best_weights is not None:
        model.set_weights(best_weights)
    return best, epochs, seconds
