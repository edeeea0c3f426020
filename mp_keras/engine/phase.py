"""A training phase: which variables change, by gradient descent on a loss or by a rule."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

LossFn = Callable[..., tuple[Any, dict[str, Any]]]
UpdateFn = Callable[..., Sequence[Any]]


@dataclasses.dataclass(frozen=True)
class Phase:
    """One gradient step of a model's training, written in backend-free `keras.ops`.

    A training step of a `PhasedModel` runs its phases in order; each phase computes a
    loss from the batch, differentiates it with respect to `variables` only, and lets
    its own optimizer (the one compiled under `name`) update them. A VAE has one phase;
    a GAN has a discriminator phase repeated k times and then a generator phase.

    A phase with an `update` function is a *rule* phase instead: no gradient and no
    optimizer; the engine assigns the new values the rule returns (the perceptron's
    learning rule, for example). Its `loss` is still computed, before the update, for
    the logs and for `evaluate`.

    Args:
        name: str. The phase's name, also the key of its optimizer in
            `model.compile(optimizer={name: ...})` when a model has several phases.
        variables: sequence of Keras variables. What this phase's optimizer updates.
        loss: callable `loss(x, y, training) -> (loss, logs)`. `loss` is a scalar tensor;
            `logs` maps names of the model's trackers (see `PhasedModel.track`) to
            scalars averaged over the epoch and shown in the progress bar.
        repeat: int. How many updates this phase makes per training step (on the same
            batch; random draws inside the loss differ each time). Defaults to 1.
        update: callable `update(x, y) -> new values` (one per variable, same order),
            or None for a gradient phase. Defaults to None.
    """

    name: str
    variables: Sequence[Any]
    loss: LossFn
    repeat: int = 1
    update: UpdateFn | None = None

    @property
    def uses_gradients(self) -> bool:
        return self.update is None

    def __post_init__(self) -> None:
        if not isinstance(self.repeat, int) or self.repeat < 1:
            raise ValueError(
                f"Phase '{self.name}': repeat must be an int >= 1, got {self.repeat!r}"
            )
        if not self.variables:
            raise ValueError(f"Phase '{self.name}' has no variables to train.")
