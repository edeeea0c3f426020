"""`PhasedModel`: a Keras model whose training is described as phases."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mp_keras.engine.optimizer_group import OptimizerGroup
from mp_keras.engine.phase import Phase

ASSET_NAME = "mp_keras.json"  # in a .keras archive: assets/mp_keras.json
_STEP_MODULES = {
    "tensorflow": "mp_keras.engine.tensorflow_steps",
    "jax": "mp_keras.engine.jax_steps",
    "torch": "mp_keras.engine.torch_steps",
}


def _steps() -> Any:
    backend = keras.backend.backend()
    if backend not in _STEP_MODULES:
        raise RuntimeError(
            f"mp_keras trains on the tensorflow, jax and torch backends; "
            f"KERAS_BACKEND is {backend!r}."
        )
    return importlib.import_module(_STEP_MODULES[backend])


class BaseModel(keras.Model):
    """Base of every mp_keras model: input checks and backend-portable compile config.

    Data given to `fit` and `evaluate` is checked before anything runs: inputs by
    `validate_data`, targets by `validate_targets` (a model that learns from x alone
    refuses targets instead of ignoring them). `predict` and calls on NumPy arrays check
    their inputs with `validate_inputs`. Shapes are checked again inside `call`, but
    values (binary, finite, valid labels) can only be checked on concrete arrays, so they
    are checked here: on a whole NumPy array, or on the first batch of a
    `tf.data.Dataset`.

    A `.keras` file keeps how the model was compiled. `jit_compile` is not restored on
    load: its resolved value belongs to the backend that trained the model (XLA on
    TensorFlow means `torch.compile` on PyTorch), so each backend takes its default.
    It also records `training_backend`, the backend of the last `fit` (in the archive's
    `assets/mp_keras.json`), which the exporter checks the artifacts against.
    """

    training_backend: str | None = None

    def save_assets(self, dir_path: str) -> None:
        from mp_keras.io import write_json

        write_json(Path(dir_path) / ASSET_NAME, {"training_backend": self.training_backend})

    def load_assets(self, dir_path: str) -> None:
        from mp_keras.io import read_json

        info = read_json(Path(dir_path) / ASSET_NAME)
        if isinstance(info, dict):
            self.training_backend = info.get("training_backend")

    def validate_data(self, x: np.ndarray) -> None:
        """Checks a NumPy batch of inputs; raises `ValueError` saying what was expected."""

    def validate_targets(self, y: np.ndarray | None) -> None:
        """Checks a NumPy batch of targets (`None` when none were given)."""

    def validate_inputs(self, x: np.ndarray) -> None:
        """Checks NumPy inputs of `call` and `predict`; defaults to `validate_data`."""
        self.validate_data(x)

    def check_data(self, x: Any, y: Any = None) -> None:
        """Runs the checks `fit` and `evaluate` run, on arrays or a `tf.data.Dataset`."""
        inputs, targets = _first_batch(x, y)
        if inputs is None:
            return  # a generator or another source that cannot be peeked at
        self.validate_data(inputs)
        self.validate_targets(targets)
        from mp_keras.distribution import check_batch_size, num_devices

        if (devices := num_devices()) > 1 and len(inputs) % devices:
            check_batch_size(len(inputs), devices)  # batches must split evenly

    def fit(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        self.check_data(x, y)
        validation = kwargs.get("validation_data")
        if validation is not None:
            parts = validation if isinstance(validation, (tuple, list)) else (validation,)
            self.check_data(*parts[:2])
        self.training_backend = keras.backend.backend()
        _build_optimizer_before_tracing(self)
        history = super().fit(x, y, *args, **kwargs)
        _unalias_ema_weights(self)
        return history

    def evaluate(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        self.check_data(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        inputs, _ = _first_batch(x, None)
        if inputs is not None:
            self.validate_inputs(inputs)
        return super().predict(x, *args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Values can be checked on NumPy inputs only (tensors may be symbolic or traced).
        if args and isinstance(args[0], np.ndarray):
            self.validate_inputs(args[0])
        return super().__call__(*args, **kwargs)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        config = dict(keras.saving.deserialize_keras_object(config))
        config.pop("jit_compile", None)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)


class PhasedModel(BaseModel):
    """Base class of models that train through `phases()` rather than a `loss`.

    Subclasses build their networks in `__init__`, declare the values they log with
    `track(...)`, and return their training phases from `phases()`. The engine runs
    those phases inside `fit` and `evaluate` on TensorFlow, JAX and PyTorch, with one
    optimizer per phase (see `compile`). Everything else is plain Keras: callbacks,
    `validation_data`, `jit_compile`, `.keras` saving.

    The logged `loss` is the sum of the phases' losses (their last repeat).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._log_trackers: list[keras.metrics.Metric] = []

    # === Subclass interface ===

    def phases(self) -> list[Phase]:
        """Returns the training phases, run in order at every training step."""
        raise NotImplementedError(f"{type(self).__name__} must implement phases().")

    def default_optimizer(self) -> Any:
        """The optimizer `compile()` uses when given none."""
        return "adam"

    def track(self, *names: str) -> None:
        """Creates the epoch-mean trackers for the values that phases log."""
        for name in names:
            if name != "loss" and name not in self._tracker_names():
                self._log_trackers.append(keras.metrics.Mean(name=name))

    # === Compilation ===

    def compile(
        self,
        optimizer: Any = None,
        loss: Any = None,
        metrics: Any = None,
        **kwargs: Any,
    ) -> None:
        """Configures training. Takes no `loss` or `metrics`: the phases define them.

        Args:
            optimizer: an optimizer (instance, name or config), used for every phase
                (cloned per phase when there are several), or a dict mapping each
                phase's name to its optimizer. Defaults to `default_optimizer()`.
            **kwargs: passed to `keras.Model.compile` (`jit_compile`, `run_eagerly`,
                `steps_per_execution`, ...).
        """
        if loss is not None or metrics is not None or kwargs.get("weighted_metrics"):
            raise ValueError(
                f"{type(self).__name__} defines its own loss and logged values in its "
                "training phases; compile() takes no `loss` or `metrics`."
            )
        phases = self.phases()
        if len({phase.name for phase in phases}) != len(phases):
            raise ValueError(f"Phase names must be unique, got {[p.name for p in phases]}.")
        names = [phase.name for phase in phases if phase.uses_gradients]
        if not names:
            # Rule phases only: Keras still needs an optimizer object (JAX threads its
            # variables); an empty group just counts the steps.
            if optimizer is not None and not isinstance(optimizer, OptimizerGroup):
                raise ValueError(
                    f"{type(self).__name__} trains by its update rule and takes no optimizer."
                )
            optimizer = OptimizerGroup({})
        elif optimizer is None:
            optimizer = self.default_optimizer()
        if len(names) != 1 or isinstance(optimizer, (Mapping, OptimizerGroup)):
            optimizer = _as_group(optimizer, names)
            optimizer.attach(
                lambda: {p.name: list(p.variables) for p in self.phases() if p.uses_gradients}
            )
        super().compile(optimizer=optimizer, **kwargs)

    def optimizer_for(self, phase_name: str) -> keras.optimizers.Optimizer:
        """The optimizer that trains the phase called `phase_name`."""
        if isinstance(self.optimizer, OptimizerGroup):
            return self.optimizer[phase_name]
        return self.optimizer

    # === Training ===

    def train_step(self, *args: Any) -> Any:
        return _steps().train_step(self, *args)

    def test_step(self, *args: Any) -> Any:
        return _steps().test_step(self, *args)

    def fit(self, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        for name in ("sample_weight", "class_weight"):
            if kwargs.get(name) is not None:
                raise ValueError(
                    f"{type(self).__name__} trains on its own per-example loss and takes no {name}."
                )
        return super().fit(x, *args, **kwargs)

    # === Engine helpers (backend-free, used by the step modules) ===

    def update_trackers(self, loss: Any, logs: Mapping[str, Any], batch_size: Any) -> None:
        """Adds one batch's loss and logged values to the epoch means."""
        trackers = {tracker.name: tracker for tracker in self._log_trackers}
        self._loss_tracker.update_state(keras.ops.stop_gradient(loss), sample_weight=batch_size)
        for name, value in logs.items():
            if name == "loss":
                continue
            if name not in trackers:
                raise ValueError(
                    f"{type(self).__name__} logs {name!r} but tracks only "
                    f"{sorted(trackers)}: call self.track({name!r}) in __init__."
                )
            trackers[name].update_state(keras.ops.stop_gradient(value), sample_weight=batch_size)

    def metrics_result(self) -> dict[str, Any]:
        return {metric.name: metric.result() for metric in self.metrics}

    def _tracker_names(self) -> list[str]:
        return [tracker.name for tracker in self._log_trackers]


def _build_optimizer_before_tracing(model: keras.Model) -> None:
    """Builds the optimizer's variables before TensorFlow traces the first training step.

    Without a distribution strategy, Keras' TensorFlow trainer leaves the optimizer to
    build inside the traced step; a `tf.function` that creates variables on its first
    trace is traced a second time, which doubles the cost of starting `fit` (about 5 s
    for a small U-Net). JAX and PyTorch build it before their first step already.
    """
    optimizer = getattr(model, "optimizer", None)
    if keras.backend.backend() != "tensorflow" or optimizer is None or optimizer.built:
        return
    if all(layer.built for layer in model._flatten_layers()):
        optimizer.build(model.trainable_variables)


def _unalias_ema_weights(model: keras.Model) -> None:
    """Gives each weight its own buffer after an EMA optimizer has finalized it.

    At the end of `fit`, an optimizer with `use_ema=True` assigns each moving average to
    its weight; on JAX the weight then holds the very array the average variable holds,
    and the next `fit` or `evaluate`, which donates the buffers of both, finds one of them
    deleted ("Buffer has been deleted or donated"). A copy ends the sharing.
    """
    if keras.backend.backend() != "jax":
        return
    optimizer = getattr(model, "optimizer", None)
    members = list(optimizer.optimizers) if isinstance(optimizer, OptimizerGroup) else [optimizer]
    if any(getattr(member, "use_ema", False) for member in members):
        for variable in model.trainable_variables:
            variable.assign(keras.ops.copy(variable.value))


def _as_group(optimizer: Any, names: list[str]) -> OptimizerGroup:
    if isinstance(optimizer, OptimizerGroup):
        return optimizer
    if isinstance(optimizer, Mapping) and set(optimizer) == set(names):
        return OptimizerGroup({name: optimizer[name] for name in names})
    if isinstance(optimizer, Mapping) and "class_name" not in optimizer:
        raise ValueError(
            f"The optimizer dict must have exactly one entry per phase {names}, "
            f"got keys {sorted(optimizer)}."
        )
    template = keras.optimizers.get(optimizer)
    config = template.get_config()
    return OptimizerGroup({name: type(template).from_config(dict(config)) for name in names})


def _as_array(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, (np.ndarray, list)) or hasattr(value, "__array__"):
        return np.asarray(value)
    return None


def _first_batch(x: Any, y: Any) -> tuple[np.ndarray | None, Any]:
    """The inputs and targets given to fit/evaluate, as NumPy (whole arrays, or the first
    batch of a `tf.data.Dataset`); inputs are None when they cannot be peeked at, and
    targets that cannot be read as an array are returned as given."""
    if (
        type(x).__module__.startswith("tensorflow")
        and hasattr(x, "take")
        and hasattr(x, "element_spec")
    ):
        for element in x.take(1):
            if isinstance(element, (tuple, list)):
                target = np.asarray(element[1]) if len(element) > 1 else None
                return np.asarray(element[0]), target
            return np.asarray(element), None
        return None, None
    if isinstance(x, tuple) and x and y is None:
        x, y = x[0], (x[1] if len(x) > 1 else None)
    target = _as_array(y)
    return (x if isinstance(x, np.ndarray) else None), (y if target is None else target)
