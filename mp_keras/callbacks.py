"""Callbacks that make training runs survive SIGKILL and non-finite losses.

`CrashSafeBackup` is Keras' `BackupAndRestore` made crash-safe and exact: every epoch's
checkpoint is written under a temporary name and renamed into place, the last two are
kept, an unreadable one is skipped, and the checkpoint holds what an exact resume needs
(weights, every optimizer's slots, the seed-generator states, the history and the
training time so far). `FailOnNonFinite` stops `fit` at the first non-finite value with
an error naming the epoch and batch, before anything is saved.

Example:
    >>> import tempfile, keras, numpy as np
    >>> from mp_keras.models import MLP
    >>> folder = tempfile.mkdtemp()
    >>> x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    >>> y = np.arange(32) % 2
    >>> def run(epochs):
    ...     model = MLP(input_shape=(4,), num_classes=2, hidden_units=(8,))
    ...     model.compile()
    ...     backup = CrashSafeBackup(folder)
    ...     start = backup.restore(model)
    ...     model.fit(x, y, epochs=epochs, initial_epoch=start, verbose=0,
    ...               callbacks=[FailOnNonFinite(), backup])
    ...     return start, backup
    >>> run(2)[0], run(3)[0]  # the second run resumes after the two finished epochs
    (0, 2)
    >>> [len(values) for values in run(3)[1].history.values()]  # nothing left to do
    [3, 3]
"""

from __future__ import annotations

import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mp_keras import io

_CHECKPOINT = re.compile(r"^epoch-(\d+)$")
WEIGHTS_NAME = "checkpoint.weights.h5"
STATE_NAME = "state.json"


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss (or logged value)."""

    def __init__(self, message: str, epoch: int, batch: int | None, name: str) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.name = name


def _first_non_finite(logs: dict[str, Any] | None) -> tuple[str, float] | None:
    for name, value in (logs or {}).items():
        try:
            number = float(np.asarray(keras.ops.convert_to_numpy(value)).reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            continue
        if not np.isfinite(number):
            return name, number
    return None


class FailOnNonFinite(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` at the first batch whose logged values are not finite.

    Unlike `keras.callbacks.TerminateOnNaN`, which ends `fit` normally (so the caller
    goes on to save a broken model), this raises out of `fit`: callbacks that run at the
    end of the epoch, such as `CrashSafeBackup`, never see the broken state, and the
    message says where training went wrong.
    """

    def __init__(self) -> None:
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._check(logs, batch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._check(logs, None)

    def _check(self, logs: dict[str, Any] | None, batch: int | None) -> None:
        bad = _first_non_finite(logs)
        if bad is None:
            return
        name, value = bad
        where = f"epoch {self._epoch + 1}" + ("" if batch is None else f", batch {batch + 1}")
        raise NonFiniteLossError(
            f"training stopped: {name} became {value} at {where}", self._epoch, batch, name
        )


class CrashSafeBackup(keras.callbacks.Callback):
    """Checkpoints a model at the end of every epoch so that a killed run resumes exactly.

    Each checkpoint is a folder `epoch-NNNNN` (N finished epochs) holding
    `checkpoint.weights.h5` (`model.save_weights`: weights and optimizer slots) and
    `state.json` (seed-generator states, history, training seconds). It is written under
    a temporary name and renamed, so a crash at any instant leaves the previous
    checkpoints intact. The newest `keep` are kept. `restore` loads the newest readable
    one; if none is readable it warns and training starts over.

    With data whose epoch `e` depends only on `(seed, e)` (see `mp_keras.data.pipeline`'s
    `epochs`), a resumed run ends with the same weights as an uninterrupted one.

    Args:
        directory: path. Folder of the checkpoints (created).
        keep: int. Number of checkpoints kept. Defaults to `2`.
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 2) -> None:
        super().__init__()
        if int(keep) < 1:
            raise ValueError(f"keep must be >= 1, got {keep!r}.")
        self.directory = Path(directory)
        self.keep = int(keep)
        self.initial_epoch = 0
        self.history: dict[str, list[float]] = {}
        self.train_seconds = 0.0
        self._restored = False
        self._started = 0.0
        self._seconds_at_start = 0.0

    # === Reading ===

    def checkpoints(self) -> list[Path]:
        """The checkpoint folders, newest first."""
        if not self.directory.is_dir():
            return []
        found = [
            (int(match.group(1)), entry)
            for entry in self.directory.iterdir()
            if (match := _CHECKPOINT.match(entry.name)) and entry.is_dir()
        ]
        return [entry for _, entry in sorted(found, reverse=True)]

    def restore(self, model: keras.Model) -> int:
        """Loads the newest readable checkpoint into `model`; returns its epoch count.

        The model must be compiled (its optimizer is built here if needed). Returns 0,
        leaving the model as it is, when there is no readable checkpoint.
        """
        self._restored = True
        skipped = []
        for folder in self.checkpoints():
            state = _read_checkpoint(folder)
            if state is None:
                skipped.append(folder.name)
                continue
            _load(model, folder, state)
            if skipped:
                warnings.warn(
                    f"checkpoint {', '.join(skipped)} in {self.directory} is unreadable; "
                    f"resuming from {folder.name}.",
                    stacklevel=2,
                )
            self.initial_epoch = int(state["epoch"])
            self.history = {k: [float(v) for v in vs] for k, vs in state["history"].items()}
            self.train_seconds = float(state["train_seconds"])
            return self.initial_epoch
        if skipped:
            warnings.warn(
                f"no readable checkpoint in {self.directory} ({', '.join(skipped)} unreadable); "
                "training starts over.",
                stacklevel=2,
            )
        self.initial_epoch, self.history, self.train_seconds = 0, {}, 0.0
        return 0

    # === Callback ===

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self._restored:  # used like BackupAndRestore, without calling restore()
            self.model._initial_epoch = self.restore(self.model) or None
        self._started = time.perf_counter()
        self._seconds_at_start = self.train_seconds

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(keras.ops.convert_to_numpy(value)))
        self.train_seconds = self._seconds_at_start + time.perf_counter() - self._started
        self.save(epoch + 1)

    def save(self, epoch: int) -> Path:
        """Writes the checkpoint of `epoch` finished epochs; prunes old ones."""
        self.directory.mkdir(parents=True, exist_ok=True)
        io.remove_temporaries(self.directory)
        final = self.directory / f"epoch-{epoch:05d}"
        with io.atomic_path(final) as staging:
            staging.mkdir()
            self.model.save_weights(staging / WEIGHTS_NAME)
            io.write_json(
                staging / STATE_NAME,
                {
                    "epoch": epoch,
                    "history": self.history,
                    "train_seconds": round(self.train_seconds, 3),
                    "seed_states": _seed_states(self.model),
                },
            )
        for old in self.checkpoints()[self.keep :]:
            io.remove_path(old)
        return final


def _seed_variables(model: keras.Model) -> list[Any]:
    """The seed-generator states: model variables that `save_weights` does not store."""
    stored = {id(v) for v in model.weights}
    metrics = {id(v) for v in getattr(model, "metrics_variables", [])}
    return [v for v in model.variables if id(v) not in stored and id(v) not in metrics]


def _seed_states(model: keras.Model) -> list[dict[str, Any]]:
    return [
        {"path": v.path, "value": keras.ops.convert_to_numpy(v).tolist()}
        for v in _seed_variables(model)
    ]


def _read_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The state of a complete, readable checkpoint folder, else None."""
    state = io.read_json(folder / STATE_NAME)
    if not isinstance(state, dict) or not {"epoch", "history", "train_seconds"} <= set(state):
        return None
    try:
        import h5py

        with h5py.File(folder / WEIGHTS_NAME, "r") as handle:
            datasets: list[Any] = []
            handle.visititems(
                lambda _, item: datasets.append(item) if isinstance(item, h5py.Dataset) else None
            )
            for item in datasets:
                item[()]  # reads every byte: a truncated file fails here
    except Exception:  # h5py raises OSError, KeyError or RuntimeError on damage
        return None
    return state


def _load(model: keras.Model, folder: Path, state: dict[str, Any]) -> None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    model.load_weights(folder / WEIGHTS_NAME)
    variables = _seed_variables(model)
    saved = state.get("seed_states", [])
    if len(saved) != len(variables):
        raise ValueError(
            f"checkpoint {folder} holds {len(saved)} seed-generator states but the model has "
            f"{len(variables)}: it was written by a different model."
        )
    for variable, entry in zip(variables, saved):
        variable.assign(np.asarray(entry["value"], dtype=variable.dtype))
