"""Training and evaluation steps of `PhasedModel` on the PyTorch backend."""

from __future__ import annotations

from typing import Any

import keras
import torch

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
        tensors = [v.value for v in variables]
        for _ in range(phase.repeat):
            if not phase.uses_gradients:
                with torch.no_grad():
                    loss, phase_logs = phase.loss(x, y, True)
                    for variable, value in zip(variables, phase.update(x, y)):
                        variable.assign(value)
                continue
            loss, phase_logs = phase.loss(x, y, True)
            # autograd.grad, not backward(): only this phase's gradients are computed and
            # nothing accumulates in .grad between phases.
            grads = torch.autograd.grad(loss, tensors, allow_unused=True)
            grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, tensors)]
            with torch.no_grad():
                model.optimizer_for(phase.name).apply(grads, variables)
        total += loss.detach()
        logs.update(phase_logs)
    with torch.no_grad():
        finish_step(model, total, logs, batch_size_of(x))
        return model.metrics_result()


def test_step(model: Any, data: Any) -> dict[str, Any]:
    with torch.no_grad():
        return stateful_test_step(model, data)
