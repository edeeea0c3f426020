"""Training and evaluation steps of `PhasedModel` on the JAX backend.

JAX training is stateless: the step receives the values of every trainable,
non-trainable, optimizer and metric variable and returns new ones. Keras has already
detached the values from the variables ("purged" them), so every read inside a phase's
loss must go through a `StatelessScope` that maps each variable to its current value;
writes made in the scope (a `SeedGenerator` advancing, batch-norm statistics) are read
back from it.
"""

from __future__ import annotations

from typing import Any

import jax
import keras

from mp_keras.engine.common import batch_size_of, check_no_sample_weight
from mp_keras.engine.optimizer_group import OptimizerGroup


class _Values:
    """Current value of each variable, keyed by the variable's identity."""

    def __init__(self) -> None:
        self._by_id: dict[int, Any] = {}

    def put(self, variables: list[Any], values: list[Any]) -> None:
        for variable, value in zip(variables, values):
            self._by_id[id(variable)] = value

    def get(self, variables: list[Any]) -> list[Any]:
        return [self._by_id[id(v)] for v in variables]

    def update(self, by_id: dict[int, Any]) -> None:
        self._by_id.update(by_id)

    def read_back(self, scope: Any, variables: list[Any]) -> None:
        for variable in variables:
            value = scope.get_current_value(variable)
            if value is not None:
                self._by_id[id(variable)] = value


def _run_phase_loss(model, phase, values, params, x, y, training, rule=False):
    """The phase's loss with its variables set to `params`, and the state it changed.

    With `rule=True` (rule phases), also the new values of the phase's variables.
    """
    model_variables = model.trainable_variables + model.non_trainable_variables
    mapping = dict(zip(map(id, model_variables), zip(model_variables, values.get(model_variables))))
    for variable, value in zip(phase.variables, params):
        mapping[id(variable)] = (variable, value)
    with keras.StatelessScope(state_mapping=list(mapping.values())) as scope:
        loss, logs = phase.loss(x, y, training)
        if rule:
            logs = (logs, list(phase.update(x, y)))
    changed = {}
    for variable in model.non_trainable_variables:
        value = scope.get_current_value(variable)
        if value is not None:
            changed[id(variable)] = value
    return loss, (logs, changed)


def _finish(model, values, total, logs, x):
    metrics_variables = model.metrics_variables
    mapping = list(zip(metrics_variables, values.get(metrics_variables)))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        model.update_trackers(total, logs, batch_size_of(x))
        result = model.metrics_result()
    values.read_back(scope, metrics_variables)
    return result


def _load_state(groups):
    values = _Values()
    for variables, state_values in groups:
        values.put(variables, state_values)
    return values


def train_step(model: Any, state: Any, data: Any) -> tuple[dict[str, Any], Any]:
    trainable, non_trainable, optimizer_values, metric_values = state
    groups = [
        (model.trainable_variables, trainable),
        (model.non_trainable_variables, non_trainable),
        (model.optimizer.variables, optimizer_values),
        (model.metrics_variables, metric_values),
    ]
    values = _load_state(groups)
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    check_no_sample_weight(model, sample_weight)

    total, logs = 0.0, {}
    for phase in model.phases():
        variables = list(phase.variables)
        grad_fn = jax.value_and_grad(
            lambda params, phase=phase: _run_phase_loss(model, phase, values, params, x, y, True),
            has_aux=True,
        )
        for _ in range(phase.repeat):
            if not phase.uses_gradients:
                loss, ((phase_logs, new_params), changed) = _run_phase_loss(
                    model, phase, values, values.get(variables), x, y, True, rule=True
                )
                values.update(changed)
                values.put(variables, new_params)
                continue
            optimizer = model.optimizer_for(phase.name)
            (loss, (phase_logs, changed)), grads = grad_fn(values.get(variables))
            values.update(changed)
            new_params, new_slots = optimizer.stateless_apply(
                values.get(optimizer.variables), grads, values.get(variables)
            )
            values.put(variables, new_params)
            values.put(optimizer.variables, new_slots)
        total += loss
        logs.update(phase_logs)

    if isinstance(model.optimizer, OptimizerGroup):
        counter = model.optimizer.iterations
        values.put([counter], [values.get([counter])[0] + 1])
    result = _finish(model, values, total, logs, x)
    return result, tuple(values.get(variables) for variables, _ in groups)


def test_step(model: Any, state: Any, data: Any) -> tuple[dict[str, Any], Any]:
    trainable, non_trainable, metric_values = state
    groups = [
        (model.trainable_variables, trainable),
        (model.non_trainable_variables, non_trainable),
        (model.metrics_variables, metric_values),
    ]
    values = _load_state(groups)
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    check_no_sample_weight(model, sample_weight)
    total, logs = 0.0, {}
    for phase in model.phases():
        params = values.get(list(phase.variables))
        loss, (phase_logs, changed) = _run_phase_loss(model, phase, values, params, x, y, False)
        values.update(changed)
        total += loss
        logs.update(phase_logs)
    result = _finish(model, values, total, logs, x)
    return result, tuple(values.get(variables) for variables, _ in groups)
