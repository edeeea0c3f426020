"""Train, evaluate and sample registered models: what the command line runs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mp_keras import data as datasets
from mp_keras.plots import save_image_grid, save_model_figure, save_scatter
from mp_keras.registry import get_recipe


def _floats(logs: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in logs.items()}


def _inputs(dataset: datasets.Dataset, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Generative models learn from x alone; every other kind is supervised by y."""
    return dataset.x, (None if kind == "generative" else dataset.y)


def train(
    model_name: str,
    out_dir: str | os.PathLike,
    *,
    dataset: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    verbose: Any = "auto",
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> dict[str, Any]:
    """Trains a registered model and writes its artifacts to `out_dir`.

    Writes `model.keras`, `metrics.json` (the held-out split's metrics at top level,
    plus the per-epoch history), a PNG (`samples.png` for generative models,
    `predictions.png` for classifiers, segmenters and sequence models) and TensorBoard
    logs in `logs/`. A run that was interrupted resumes from its last finished epoch
    when started again on the same `out_dir` (Keras' `BackupAndRestore`, in `out_dir/backup`).

    Args:
        model_name: str. A name from `mp_keras.registry.RECIPES`.
        out_dir: path. Output folder (created).
        dataset: str or None. Dataset name (see `mp_keras.data.list_datasets`);
            defaults to the recipe's.
        epochs: int or None. Defaults to the recipe's.
        batch_size: int or None. Defaults to the recipe's.
        seed: int. Seeds Python, NumPy, the backend, the model and the shuffling.
        verbose: Keras verbosity (`"auto"` shows a progress bar).
        callbacks: extra Keras callbacks.

    Returns:
        The dict written to `metrics.json`.
    """
    recipe = get_recipe(model_name)
    dataset = dataset or recipe.dataset
    epochs = recipe.epochs if epochs is None else int(epochs)
    batch_size = recipe.batch_size if batch_size is None else int(batch_size)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    keras.utils.set_random_seed(seed)
    train_set = datasets.load(dataset, "train", seed=seed)
    test_set = datasets.load(dataset, "test", seed=seed)
    model = recipe.build(train_set.info, seed)
    model.compile(optimizer=recipe.optimizer())

    x, y = _inputs(train_set, recipe.kind)
    test_x, test_y = _inputs(test_set, recipe.kind)
    model.validate_data(x)  # fail before anything is written
    train_data = datasets.pipeline(x, y, batch_size=batch_size, shuffle=True, seed=seed)
    test_data = datasets.pipeline(test_x, test_y, batch_size=batch_size, shuffle=False)

    all_callbacks = [
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.TensorBoard(str(out / "logs")),
        *(callbacks or []),
    ]
    start = time.perf_counter()
    history = model.fit(
        train_data,
        epochs=epochs,
        validation_data=test_data,
        shuffle=False,  # the pipeline shuffles, with the seed
        callbacks=all_callbacks,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start

    model.save(out / "model.keras")
    test_metrics = _floats(model.evaluate(test_data, verbose=0, return_dict=True))
    save_figure(recipe.kind, model, out, test_x, test_y, seed)
    metrics = {
        **test_metrics,
        "model": recipe.name,
        "dataset": dataset,
        "split": "test",
        "backend": keras.backend.backend(),
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "train_seconds": round(seconds, 2),
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def save_figure(
    kind: str, model: keras.Model, out: Path, x: np.ndarray, y: np.ndarray | None, seed: int
) -> Path:
    """Writes the figure of a trained model: `samples.png` for generative models,
    `predictions.png` for every supervised kind."""
    path = out / ("samples.png" if kind == "generative" else "predictions.png")
    if kind == "sequence":
        from mp_keras.plots.sequences import save_sequence_figure

        save_sequence_figure(model, path, x, y)
    elif kind == "segmentation":
        from mp_keras.plots.segmentation import save_segmentation_figure

        save_segmentation_figure(model, path, x, y)
    else:
        save_model_figure(model, path, x, y, seed=seed)
    return path


def load(model_path: str | os.PathLike) -> keras.Model:
    """Loads a `.keras` file of any mp_keras model (on the current backend)."""
    import mp_keras.models  # noqa: F401  (registers the classes)

    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    return keras.saving.load_model(path)


def evaluate(
    model_path: str | os.PathLike, dataset: str, split: str = "test", batch_size: int = 256
) -> dict[str, float]:
    """Metrics of a saved model on a dataset split (the model must have been compiled)."""
    model = load(model_path)
    data = datasets.load(dataset, split)
    kind = "classifier" if data.y is not None and not hasattr(model, "sample") else "generative"
    x, y = _inputs(data, kind)
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        model.compile()
    return _floats(model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True))


def sample(
    model_path: str | os.PathLike, out_png: str | os.PathLike, num: int = 64, seed: int = 0
) -> np.ndarray:
    """Draws `num` samples from a saved generative model and saves them as a PNG."""
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}.")
    model = load(model_path)
    if not hasattr(model, "sample"):
        raise ValueError(f"{type(model).__name__} is not a generative model: it has no sample().")
    samples = keras.ops.convert_to_numpy(model.sample(num, seed=seed))
    if samples.ndim == 2 and samples.shape[1] == 2:
        save_scatter(samples, out_png, title=f"{type(model).__name__}: {num} samples")
    else:
        cols = int(np.ceil(np.sqrt(num)))
        rows = {f"{i}": samples[i * cols : (i + 1) * cols] for i in range(int(np.ceil(num / cols)))}
        save_image_grid(rows, out_png)
    return samples
