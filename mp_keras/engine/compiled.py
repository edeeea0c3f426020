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
