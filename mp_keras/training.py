"""Train, evaluate and sample registered models: what the command line runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mp_keras import data as datasets
from mp_keras import io
from mp_keras.callbacks import CrashSafeBackup, FailOnNonFinite, NonFiniteLossError
from mp_keras.distribution import data_parallel
from mp_keras.plots import save_model_figure
from mp_keras.registry import get_recipe
from mp_keras.runs import METRICS, RunFolder


def _floats(logs: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in logs.items()}


def _add_new(metrics: dict[str, float], extra: dict[str, float]) -> None:
    """Adds the density metrics `evaluate` did not already log (its `elbo` is kept: it is
    the same draw as its `loss`)."""
    for key, value in extra.items():
        metrics.setdefault(key, float(value))


def _inputs(dataset: datasets.Dataset, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Generative models learn from x alone; every other kind (conditional generative
    models too) is given y."""
    return dataset.x, (None if kind == "generative" else dataset.y)


def _whole_batches(
    x: np.ndarray, y: np.ndarray | None, batch_size: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The first examples of `(x, y)` that fill whole batches of `batch_size`: what a
    data-parallel run keeps, since every device must get an equal share of each batch."""
    kept = len(x) - len(x) % batch_size
    if kept == 0:
        raise ValueError(
            f"{len(x)} examples do not fill one batch of {batch_size}; a data-parallel run "
            "drops partial batches, so use a smaller batch size."
        )
    return x[:kept], None if y is None else y[:kept]


class RunMetrics(dict):
    """The metrics of a run (what `metrics.json` holds), and what `train` did to get them.

    Attributes:
        status: `"trained"` (a new run), `"resumed"` (an interrupted run, finished now)
            or `"finished"` (the folder already held this finished run; nothing ran).
        initial_epoch: Epochs already done when this process started.
    """

    def __init__(self, metrics: dict[str, Any], status: str, initial_epoch: int = 0) -> None:
        super().__init__(metrics)
        self.status = status
        self.initial_epoch = initial_epoch


def train(
    model_name: str,
    out_dir: str | os.PathLike,
    *,
    dataset: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    recipe: str = "default",
    condition: str = "none",
    overwrite: bool = False,
    devices: int = 1,
    jit_compile: bool | str = "auto",
    verbose: Any = "auto",
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> RunMetrics:
    """Trains a registered model and writes its artifacts to `out_dir`, crash-safely.

    Writes `model.keras`, `metrics.json` (the held-out split's metrics at top level,
    plus the per-epoch history), a PNG (`samples.png` for generative models,
    `predictions.png` for classifiers, segmenters and sequence models) and TensorBoard
    logs in `logs/`. They appear together, and only when the run has succeeded
    (`mp_keras.runs.RunFolder`); until then the folder's previous content is untouched.

    Every epoch ends with a checkpoint (`mp_keras.callbacks.CrashSafeBackup`); a run that
    was killed resumes from its last one when started again with the same arguments, and
    ends with the same weights and history as if it had never stopped (each epoch's
    shuffle is a function of `seed` and the epoch). A folder that holds this finished run
    is recognised and nothing is retrained; one that holds a different run is refused.
    A non-finite loss stops the run with `NonFiniteLossError`, keeping the last good
    checkpoint.

    Args:
        model_name: str. A name from `mp_keras.registry.RECIPES`.
        out_dir: path. Output folder (created).
        dataset: str or None. Dataset name (see `mp_keras.data.list_datasets`);
            defaults to the recipe's.
        epochs: int or None. Defaults to the recipe's.
        batch_size: int or None. Defaults to the recipe's.
        seed: int. Seeds Python, NumPy, the backend, the model and the shuffling.
        recipe: str. `"default"` (sized for a CPU) or `"paper"` (the published
            hyper-parameters, see `mp_keras.registry.Recipe`).
        condition: str. `"none"`, or `"class"` for the recipe's class-conditional
            variant (a diffusion model trained on labels, for guidance).
        overwrite: bool. Discard an unfinished run and replace a finished one (the old
            files stay until the new run has succeeded).
        devices: int. Train data-parallel on this many devices (JAX backend,
            `keras.distribution.DataParallel`; see `docs/distributed.md`). Each batch
            is split evenly, so the last partial batch of each epoch, and of the test
            split, is dropped when `devices > 1`.
        jit_compile: `model.compile`'s `jit_compile`. `True` on PyTorch compiles the
            training step with `torch.compile`: about 1.6x the steps per second of the
            VAE after ~30 s of compilation (docs/benchmarks.md), so it pays off for
            long runs only; `"auto"` (the default) leaves PyTorch eager.
        verbose: Keras verbosity (`"auto"` shows a progress bar).
        callbacks: extra Keras callbacks.

    Returns:
        The metrics written to `metrics.json`, with `.status` saying what was done.

    Raises:
        ValueError: a bad argument, or data the model cannot train on (checked before
            anything is written); `mp_keras.runs.RunFolderError` for a folder that holds
            another run.
        NonFiniteLossError: the loss became NaN or infinite.
    """
    recipe = get_recipe(model_name, recipe, condition)
    dataset = dataset or recipe.dataset
    epochs = recipe.epochs if epochs is None else epochs
    batch_size = recipe.batch_size if batch_size is None else batch_size
    checked = (("epochs", epochs), ("batch_size", batch_size), ("seed", seed), ("devices", devices))
    for name, value in checked:
        if isinstance(value, bool) or not isinstance(value, int) or value < (name != "seed"):
            raise ValueError(f"{name} must be an integer >= {int(name != 'seed')}, got {value!r}.")
    backend = keras.backend.backend()
    identity = {
        "model": recipe.name,
        "recipe": recipe.variant,
        "dataset": dataset,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "backend": backend,
        "devices": devices,
        # Only when set, so that the runs of models without the option keep their identity.
        **({"condition": condition} if condition != "none" else {}),
    }
    run = RunFolder(out_dir)
    action = run.prepare(identity, overwrite=overwrite)
    if action == "finished":
        metrics = json.loads((run.path / METRICS).read_text(encoding="utf-8"))
        return RunMetrics(metrics, "finished", initial_epoch=epochs)

    distribution = data_parallel(devices, batch_size)  # before the model's variables exist
    try:
        return _train(recipe, run, identity, distribution, jit_compile, verbose, callbacks)
    finally:
        if distribution is not None:
            keras.distribution.set_distribution(None)


def _train(
    recipe: Any,
    run: RunFolder,
    identity: dict[str, Any],
    distribution: Any,
    jit_compile: bool | str,
    verbose: Any,
    callbacks: list[keras.callbacks.Callback] | None,
) -> RunMetrics:
    dataset, epochs, batch_size, seed = (
        identity[k] for k in ("dataset", "epochs", "batch_size", "seed")
    )
    drop = distribution is not None  # every device gets an equal share of each batch
    # Everything that can be wrong with the data is found before anything is written.
    keras.utils.set_random_seed(seed)
    train_set = datasets.load(dataset, "train", seed=seed)
    test_set = datasets.load(dataset, "test", seed=seed)
    model = recipe.build(train_set.info, seed)
    model.compile(optimizer=recipe.optimizer(), jit_compile=jit_compile)
    x, y = _inputs(train_set, recipe.kind)
    test_x, test_y = _inputs(test_set, recipe.kind)
    if drop:  # the test split is evaluated, and scored, in whole batches only
        test_x, test_y = _whole_batches(test_x, test_y, batch_size)
    model.check_data(*(_whole_batches(x, y, batch_size) if drop else (x, y)))
    model.check_data(test_x, test_y)

    run.begin(identity)
    backup = CrashSafeBackup(run.checkpoints)
    initial_epoch = backup.restore(model)
    steps = datasets.steps_per_epoch(len(x), batch_size, drop_remainder=drop)
    train_data = datasets.pipeline(
        x,
        y,
        batch_size=batch_size,
        seed=seed,
        epochs=epochs,
        initial_epoch=initial_epoch,
        drop_remainder=drop,
    )
    test_data = datasets.pipeline(
        test_x, test_y, batch_size=batch_size, shuffle=False, drop_remainder=drop
    )
    all_callbacks = [
        FailOnNonFinite(),
        backup,
        keras.callbacks.TensorBoard(str(run.logs)),
        *(callbacks or []),
    ]
    if initial_epoch < epochs:
        try:
            model.fit(
                train_data,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps,
                validation_data=test_data,
                shuffle=False,  # the pipeline shuffles, from (seed, epoch)
                callbacks=all_callbacks,
                verbose=verbose,
            )
        except NonFiniteLossError as error:
            good = backup.checkpoints()
            kept = (
                f"kept the last good checkpoint ({good[0].name})"
                if good
                else "no epoch had finished, so there is no checkpoint"
            )
            raise NonFiniteLossError(
                f"{error}; {kept}, and left {run.path}'s finished files untouched. Lower the "
                "learning rate or rescale the data, then rerun with --overwrite.",
                error.epoch,
                error.batch,
                error.name,
            ) from None

    test_metrics = _floats(model.evaluate(test_data, verbose=0, return_dict=True))
    if hasattr(model, "retrieval_recall"):  # image-text models: caption retrieval
        _add_new(test_metrics, model.retrieval_recall(test_x, test_y))
    if hasattr(model, "density_metrics"):  # nll and bits/dim of the held-out split
        _add_new(test_metrics, model.density_metrics(test_x, test_y))
    if dataset in ("ring", "grid"):  # cheap: modes covered by the samples (GANs)
        if _judged_by_samples(model):
            _add_new(test_metrics, sample_quality_metrics(model, dataset, test_x, seed=seed))
    io.save_model(model, run.result / "model.keras")
    save_figure(recipe.kind, model, run.result, test_x, test_y, seed)
    metrics = {
        **test_metrics,
        **identity,
        "split": "test",
        "test_examples": len(test_x),
        "train_seconds": round(backup.train_seconds, 2),
        "history": backup.history,
    }
    io.write_json(run.result / METRICS, metrics)
    run.commit()
    return RunMetrics(metrics, "resumed" if initial_epoch else "trained", initial_epoch)


def save_figure(
    kind: str, model: keras.Model, out: Path, x: np.ndarray, y: np.ndarray | None, seed: int
) -> Path:
    """Writes the figure of a trained model: `samples.png` for (conditional) generative
    models, `predictions.png` for every supervised kind."""
    generative = kind in ("generative", "conditional")
    path = out / ("samples.png" if generative else "predictions.png")
    if kind == "sequence":
        from mp_keras.plots.sequences import save_sequence_figure

        save_sequence_figure(model, path, x, y)
    elif kind == "contrastive":
        from mp_keras.plots.captions import save_caption_figure

        save_caption_figure(model, path, x, y)
    elif kind == "segmentation":
        from mp_keras.plots.segmentation import save_segmentation_figure

        save_segmentation_figure(model, path, x, y)
    else:
        save_model_figure(model, path, x, y, seed=seed)
    return path


def load(model_path: str | os.PathLike) -> keras.Model:
    """Loads a `.keras` file of any mp_keras model (on the current backend)."""
    import mp_keras.models  # noqa: F401  (registers the classes)
    from mp_keras.export.artifacts import check_model_path

    path = check_model_path(model_path)
    try:
        return keras.saving.load_model(path)
    except (TypeError, ValueError, KeyError, OSError) as error:
        raise ValueError(
            f"{path} is a .keras archive that Keras could not load ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); was it written by another "
            "library or a newer version?"
        ) from error


def evaluate(
    model_path: str | os.PathLike,
    dataset: str,
    split: str = "test",
    batch_size: int = 256,
    classifier: str | os.PathLike | None = None,
    num_samples: int = 2500,
) -> dict[str, float]:
    """Metrics of a saved model on a dataset split (the model must have been compiled).

    Density models add `nll` and `bits_per_dim` (a diffusion model its bound,
    `nll_bound`). GANs and diffusion models add the quality of `num_samples` samples (see
    `sample_quality_metrics`); `classifier` is where the feature CNN of an
    image dataset is cached (trained on the dataset's train split when missing).
    """
    model = load(model_path)
    data = datasets.load(dataset, split)
    unsupervised = hasattr(model, "sample") or hasattr(model, "figure_rows")  # + autoencoders
    supervised = not unsupervised or getattr(model, "is_conditional", False)
    kind = "classifier" if data.y is not None and supervised else "generative"
    x, y = _inputs(data, kind)
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        model.compile()
    metrics = _floats(model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True))
    if hasattr(model, "retrieval_recall") and y is not None:
        _add_new(metrics, model.retrieval_recall(x, y))
    if hasattr(model, "density_metrics"):
        _add_new(metrics, model.density_metrics(x, y, batch_size=batch_size))
    if _judged_by_samples(model):
        _add_new(metrics, sample_quality_metrics(model, dataset, x, classifier, num_samples))
    return metrics


def _judged_by_samples(model: keras.Model) -> bool:
    """GANs and diffusion models: their samples are judged (FD/KD, modes covered);
    not a text-conditioned one, whose dataset's labels are captions."""
    from mp_keras.models import DDPM, GAN, TextDiffusion

    return isinstance(model, (GAN, DDPM)) and not isinstance(model, TextDiffusion)


def sample_quality_metrics(
    model: keras.Model,
    dataset: str,
    x: np.ndarray,
    classifier: str | os.PathLike | None = None,
    num_samples: int = 2500,
    seed: int = 0,
) -> dict[str, float]:
    """How good a generative model's samples are, against the real examples `x`.

    On the 2-D mixtures (`ring`, `grid`): the modes covered, the fraction of
    high-quality samples and the KL of the mode histogram from uniform
    (`mp_keras.metrics.mode_coverage`). On a labelled image dataset: the Fréchet and
    kernel distances (`fid`, `kid`) and the class coverage on the features of the
    project's CNN trained on the dataset's train split (cached at `classifier` if
    given). Other datasets get no sample metrics.
    """
    from mp_keras import metrics

    centres = {
        "ring": (datasets.ring_centres, "RING_STD"),
        "grid": (datasets.grid_centres, "GRID_STD"),
    }
    if dataset in centres:
        make, std_name = centres[dataset]
        samples = keras.ops.convert_to_numpy(model.sample(num_samples, seed=seed))
        result = metrics.mode_coverage(samples, make(), getattr(datasets.embedded, std_name))
        return {
            "modes_covered": float(result["modes"]),
            "high_quality": result["high_quality"],
            "mode_kl": result["kl"],
        }
    train = datasets.load(dataset, "train")
    if train.y is None or len(train.info.shape) != 3:
        return {}
    features = metrics.train_feature_classifier(train.x, train.y, seed=seed, path=classifier)
    quality = metrics.sample_quality(model, x, features, num_samples=num_samples, seed=seed)
    return {key: float(quality[key]) for key in ("fid", "kid", "kid_std", "class_coverage")}


def sample(
    model_path: str | os.PathLike,
    out_png: str | os.PathLike,
    num: int = 64,
    seed: int = 0,
    label: int | None = None,
    prompt: str | None = None,
    **options: Any,
) -> np.ndarray:
    """Draws `num` samples from a saved generative model and writes them to `out_png`.

    Images become a grid and 2-D points a scatter plot; audio also gets one `.wav` per
    clip and token sequences a `.txt` next to the PNG (`mp_keras.plots.samples`). A
    conditional model draws its classes in turn, or only class `label` when given; a
    text-conditioned model draws `prompt`. Other `options` (a diffusion model's
    `steps`, `sampler`, `guidance`) go to `model.sample`, which must take them.
    """
    import inspect

    from mp_keras.plots.samples import draw_samples, save_samples

    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}.")
    model = load(model_path)
    name = type(model).__name__
    if not hasattr(model, "sample"):
        raise ValueError(f"{name} is not a generative model: it has no sample().")
    takes = inspect.signature(model.sample).parameters
    wanted = dict(options, **({"prompt": prompt} if prompt is not None else {}))
    unknown = sorted(key for key in wanted if key not in takes)
    if unknown:
        flags = ", ".join("--" + key for key in unknown)
        raise ValueError(f"{name}.sample() does not take {flags}.")
    if label is not None:
        if not getattr(model, "is_conditional", False):
            raise ValueError(f"{name} is not class-conditional: it takes no --label.")
        labels = np.full((num,), int(label))
        drawn = model.sample(num, seed, condition=labels, **wanted)
        samples = np.asarray(keras.ops.convert_to_numpy(drawn))
    elif wanted:
        if getattr(model, "is_conditional", False) and prompt is None:
            labels = np.arange(num) % int(model.num_classes)
            drawn = model.sample(num, seed, condition=labels, **wanted)
        else:
            labels, drawn = None, model.sample(num, seed, **wanted)
        samples = np.asarray(keras.ops.convert_to_numpy(drawn))
    else:
        samples, labels = draw_samples(model, num, seed)
    save_samples(model, samples, out_png, labels)
    return samples
