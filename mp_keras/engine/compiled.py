"""`compiled(fn)`: one backend-compiled function of tensors, traced once per shape.

Loops that call a network many times with the same shapes (ancestral sampling: one
call per pixel) should trace it once and reuse the trace. Model code stays
backend-free: it writes the step in `keras.ops`, passes changing integers (the pixel
index) as tensors so they do not trigger a retrace, and wraps the step here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras


def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` compiled for the current backend, for inference (no gradients).

    TensorFlow: `tf.function`; JAX: `jax.jit` (the model's weights are read at trace
    time, so make a new compiled function after the weights change); PyTorch: eager
    under `torch.no_grad()` (tracing each call with `torch.compile` costs more than it
    saves on the small networks of the course).

    Example:
    >>> from keras import ops
    >>> step = compiled(lambda x, i: x + ops.one_hot(i, 3))
    >>> ops.convert_to_numpy(step(ops.zeros((3,)), ops.convert_to_tensor(1))).tolist()
    [0.0, 1.0, 0.0]
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "torch":
        import torch

        def run(*args: Any) -> Any:
            with torch.no_grad():
                return fn(*args)

        return run
    raise RuntimeError(f"compiled() supports tensorflow, jax and torch, not {backend!r}.")


class CompiledCache:
    """A model's compiled inference functions, each traced once and reused.

    `cache(key, fn, variables)` returns `fn` compiled (see `compiled`), taking the same
    tensors as `fn`. The current values of `variables` (the weights `fn` reads) are
    passed to the compiled function as arguments and read through a
    `keras.StatelessScope`, so one trace stays valid after the weights change (a JAX
    trace that read them itself would keep the values it was traced with). A new trace
    is made only for a new key, new shapes, or another list of variables.

    Keep the cache in a plain attribute (it is not a list or dict, so Keras does not
    track the variables it holds as the model's own).

    Example:
    >>> import keras
    >>> from keras import ops
    >>> scale = keras.Variable(2.0)
    >>> cache = CompiledCache()
    >>> run = cache("double", lambda x: x * scale, [scale])
    >>> float(ops.convert_to_numpy(run(ops.ones(()))))
    2.0
    >>> _ = scale.assign(3.0)  # the same trace reads the new value
    >>> float(ops.convert_to_numpy(cache("double", lambda x: x * scale, [scale])(ops.ones(()))))
    3.0
    """

    def __init__(self) -> None:
        self._entries: dict[Any, tuple[list[Any], Callable[..., Any]]] = {}

    def __call__(
        self, key: Any, fn: Callable[..., Any], variables: list[Any]
    ) -> Callable[..., Any]:
        entry = self._entries.get(key)
        if (
            entry is None
            or len(entry[0]) != len(variables)
            or any(a is not b for a, b in zip(entry[0], variables))
        ):
            held = list(variables)

            def stateless(values: list[Any], *args: Any) -> Any:
                with keras.StatelessScope(state_mapping=list(zip(held, values))):
                    return fn(*args)

            entry = self._entries[key] = (held, compiled(stateless))
        held, run = entry
        return lambda *args: run([v.value for v in held], *args)
