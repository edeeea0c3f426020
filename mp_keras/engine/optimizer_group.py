"""Several named optimizers behind the single `model.optimizer` that Keras expects."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras


@keras.saving.register_keras_serializable(package="mp_keras")
class OptimizerGroup(keras.optimizers.Optimizer):
    """One optimizer per training phase, seen by Keras as one optimizer.

    Keras' trainers know a single `model.optimizer`. The JAX trainer in particular
    threads only `model.optimizer.variables` through its stateless training step, so a
    second optimizer kept beside it would lose its slots (Adam's moments) after every
    step. The group's `variables` are its own step counter followed by every member's
    variables, so all of them travel with the training state, are saved in `.keras`
    files and checkpoints, and are restored on load.

    Each member is built only on its own phase's variables; `PhasedModel.compile`
    attaches the function that says which ones. Members are renamed after their phase
    and listed in `optimizers`, the attribute Keras' callbacks look for: TensorBoard
    logs `learning_rate_<phase>`, and `ReduceLROnPlateau` and `LearningRateScheduler`
    act on every member. The group's `iterations` counts training
    steps (a GAN with k discriminator steps per generator step adds 1 per step, while
    its discriminator optimizer's own `iterations` adds k).

    A model whose phases are all rule phases gets an empty group, which only counts
    steps.

    Args:
        optimizers: dict. Phase name to optimizer (instance, name or config).
        name: str. Defaults to `"optimizer_group"`.

    Example:
    >>> group = OptimizerGroup({"generator": "adam", "discriminator": "sgd"})
    >>> [(opt.name, type(opt).__name__) for opt in group.optimizers]
    [('generator', 'Adam'), ('discriminator', 'SGD')]
    """

    def __init__(
        self,
        optimizers: Mapping[str, Any],
        name: str = "optimizer_group",
        **kwargs: Any,
    ) -> None:
        kwargs.pop("learning_rate", None)  # present in configs of the base class
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        members = [keras.optimizers.get(opt) for opt in optimizers.values()]
        if len({id(opt) for opt in members}) != len(members):
            raise ValueError("Each phase needs its own optimizer instance; got one twice.")
        for key, optimizer in zip(optimizers, members):
            optimizer.name = key
        self.optimizers = members
        self._variable_lists_fn: Callable[[], Mapping[str, Sequence[Any]]] | None = None

    def attach(self, variable_lists_fn: Callable[[], Mapping[str, Sequence[Any]]]) -> None:
        """Sets the function giving each member's variables (called when building)."""
        self._variable_lists_fn = variable_lists_fn

    def __getitem__(self, key: str) -> keras.optimizers.Optimizer:
        for optimizer in self.optimizers:
            if optimizer.name == key:
                return optimizer
        raise KeyError(f"No optimizer for phase {key!r}; phases: {self.names}.")

    @property
    def names(self) -> list[str]:
        return [optimizer.name for optimizer in self.optimizers]

    def build(self, var_list: Sequence[Any]) -> None:
        if self._variable_lists_fn is None:
            raise ValueError(
                "OptimizerGroup must be compiled into a PhasedModel (which says which "
                "variables each optimizer trains) before it is built."
            )
        lists = self._variable_lists_fn()
        if set(self.names) != set(lists):
            raise ValueError(
                f"The model's phases are {sorted(lists)} but the optimizer group has "
                f"{sorted(self.names)}: give one optimizer per phase."
            )
        for optimizer in self.optimizers:
            if not optimizer.built:
                optimizer.build(list(lists[optimizer.name]))
        super().build(var_list)

    @property
    def variables(self) -> list[Any]:
        members = [v for opt in self.optimizers for v in opt.variables]
        return self._variables[:] + members

    # Members save their own slots through Keras' object walk; saving them here too
    # would store every slot twice.
    def save_own_variables(self, store: Any) -> None:
        for i, variable in enumerate(self._variables):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store: Any) -> None:
        for i, variable in enumerate(self._variables):
            variable.assign(store[str(i)])

    def apply(self, grads: Any, trainable_variables: Any = None) -> None:
        raise NotImplementedError(
            "OptimizerGroup is driven by the mp_keras engine: call each member, "
            "e.g. group['generator'].apply(grads, variables)."
        )

    def stateless_apply(self, optimizer_variables: Any, grads: Any, trainable_variables: Any):
        raise NotImplementedError(
            "OptimizerGroup is driven by the mp_keras engine: call each member's "
            "stateless_apply on its own variables."
        )

    def finalize_variable_values(self, var_list: Any) -> None:
        if self._variable_lists_fn is None:
            return
        lists = self._variable_lists_fn()
        for optimizer in self.optimizers:
            optimizer.finalize_variable_values(list(lists[optimizer.name]))

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "optimizers": {
                opt.name: keras.saving.serialize_keras_object(opt) for opt in self.optimizers
            },
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> OptimizerGroup:
        config = dict(config)
        optimizers = {
            key: keras.saving.deserialize_keras_object(opt, custom_objects=custom_objects)
            for key, opt in config.pop("optimizers").items()
        }
        return cls(optimizers, **config)
