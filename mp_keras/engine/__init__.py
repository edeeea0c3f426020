"""The multi-backend training engine: models describe phases, the engine runs them.

`PhasedModel.train_step`/`test_step` dispatch to one implementation per backend
(`tensorflow_steps`, `jax_steps`, `torch_steps`), and `kernels` holds the few ops with a
backend-specific fast form (`padded_conv`); this package is the only place in
mp_keras that branches on the backend.
"""

from mp_keras.engine.autodiff import jacobian, value_and_gradients
from mp_keras.engine.compiled import CompiledCache, compiled
from mp_keras.engine.functional import (
    adam_state,
    adam_update,
    call_with,
    gradients,
    sgd_update,
)
from mp_keras.engine.model import BaseModel, PhasedModel
from mp_keras.engine.optimizer_group import OptimizerGroup
from mp_keras.engine.phase import Phase

__all__ = [
    "BaseModel",
    "CompiledCache",
    "OptimizerGroup",
    "Phase",
    "PhasedModel",
    "adam_state",
    "adam_update",
    "call_with",
    "compiled",
    "gradients",
    "jacobian",
    "sgd_update",
    "value_and_gradients",
]
