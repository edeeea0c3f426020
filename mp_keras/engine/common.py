"""Backend-free pieces shared by the step modules."""

from __future__ import annotations

from typing import Any

import keras

from mp_keras.engine.optimizer_group import OptimizerGroup


def check_no_sample_weight(model: Any, sample_weight: Any) -> None:
    if sample_weight is not None:
        raise ValueError(
            f"{type(model).__name__} trains on its own per-example loss and takes no "
            "sample_weight; got one in the data."
        )


def batch_size_of(x: Any) -> Any:
    first = keras.tree.flatten(x)[0]
    return keras.ops.shape(first)[0]


def finish_step(model: Any, total_loss: Any, logs: dict[str, Any], batch_size: Any) -> None:
    """Counts the training step and records its logged values (stateful backends)."""
    if isinstance(model.optimizer, OptimizerGroup):
        model.optimizer.iterations.assign_add(1)
    model.update_trackers(total_loss, logs, batch_size)


def stateful_test_step(model: Any, data: Any) -> dict[str, Any]:
    """`test_step` of the stateful backends: every phase's loss once, no update."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    check_no_sample_weight(model, sample_weight)
    total, logs = 0.0, {}
    for phase in model.phases():
        loss, phase_logs = phase.loss(x, y, False)
        total += loss
        logs.update(phase_logs)
    model.update_trackers(total, logs, batch_size_of(x))
    return model.metrics_result()
