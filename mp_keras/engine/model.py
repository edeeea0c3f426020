"""`PhasedModel`: a Keras model whose training is described as phases."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from mp_keras.engine.optimizer_group import OptimizerGroup
from mp_keras.engine.phase import Phase

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

    Data given to `fit`, `evaluate` and `predict` is checked by `validate_data` before
    anything runs. Shapes are checked again inside `call`, but values (binary, finite)
    can only be checked on concrete arrays, so they are checked here: on a whole NumPy
    array, or on the first batch of a `tf.data.Dataset`.

    A `.keras` file keeps how the model was compiled. `jit_compile` is not restored on
    load: its resolved value belongs to the backend that trained the model (XLA on
    TensorFlow means `torch.compile` on PyTorch), so each backend takes its default.
    """

    def validate_data(self, x: np.ndarray) -> None:
        """Checks a NumPy batch of inputs; raises `ValueError` saying what was expected."""

    def fit(self, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        self._validate_input_sample(x)
        validation = kwargs.get("validation_data")
        if validation is not None:
            self._validate_input_sample(validation)
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        self._validate_input_sample(x)
        return super().evaluate(x, *args, **kwargs)

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        self._validate_input_sample(x)
        return super().predict(x, *args, **kwargs)

    def _validate_input_sample(self, x: Any) -> None:
        sample = _first_inputs(x)
        if sample is not None:
            self.validate_data(sample)

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


def _first_inputs(x: Any) -> np.ndarray | None:
    """The inputs a user gave to fit/evaluate as NumPy (whole array or first batch)."""
    if x is None:
        return None
    if isinstance(x, tuple) and x:
        x = x[0]
    if isinstance(x, np.ndarray):
        return x
    if (
        type(x).__module__.startswith("tensorflow")
        and hasattr(x, "take")
        and hasattr(x, "element_spec")
    ):
        for element in x.take(1):
            first = element[0] if isinstance(element, tuple) else element
            return np.asarray(first)
        return None
    return None
