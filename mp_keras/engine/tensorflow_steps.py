"""Training and evaluation steps of `PhasedModel` on the TensorFlow backend."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from mp_keras.engine.common import (
    batch_size_of,
    check_no_sample_weight,
    finish_step,
    stateful_test_step,
)


def train_step(model: Any, data: Any) -> dict[str, Any]:
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    check_no_sample_weight(model, sample_weight)
    total, logs = 0.0, {}
    for phase in model.phases():
        variables = list(phase.variables)
        for _ in range(phase.repeat):
            if not phase.uses_gradients:
                loss, phase_logs = phase.loss(x, y, True)
                for variable, value in zip(variables, phase.update(x, y)):
                    variable.assign(value)
                continue
            with tf.GradientTape() as tape:
                loss, phase_logs = phase.loss(x, y, True)
            grads = tape.gradient(loss, variables)
            grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
            model.optimizer_for(phase.name).apply(grads, variables)
        total += loss
        logs.update(phase_logs)
    finish_step(model, total, logs, batch_size_of(x))
    return model.metrics_result()


def test_step(model: Any, data: Any) -> dict[str, Any]:
    return stateful_test_step(model, data)
