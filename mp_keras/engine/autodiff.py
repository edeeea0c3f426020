"""Gradients of backend-free functions, for tests, tools and the course's derivations.

The engine is the only package that branches on the backend; these two functions let
model-side code (and the tests that check the notes' backward formulas against automatic
differentiation) ask for derivatives without importing a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np


def value_and_gradients(
    fn: Callable[..., Any], inputs: Sequence[Any], compile_jax: bool = False
) -> tuple[Any, list[Any]]:
    """The scalar `fn(*inputs)` and its gradients with respect to each input (NumPy).

    `compile_jax=True` traces `fn` into one `jax.jit` program on JAX (a second or two of
    compilation, then fast) instead of evaluating it op by op, which pays off for whole
    models; it falls back to op by op if `fn` needs concrete values.

    Example:
    >>> import numpy as np
    >>> value, (g,) = value_and_gradients(lambda x: keras.ops.sum(x**2), [np.array([1.0, 2.0])])
    >>> float(value), g.tolist()
    (5.0, [2.0, 4.0])
    """
    backend = keras.backend.backend()
    arrays = [np.asarray(x, dtype="float32") for x in inputs]
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = fn(*tensors)
        grads = tape.gradient(value, tensors)
        grads = [tf.zeros_like(t) if g is None else g for g, t in zip(grads, tensors)]
    elif backend == "jax":
        import jax

        both = jax.value_and_grad(lambda *xs: fn(*xs), argnums=tuple(range(len(arrays))))
        value, grads = None, None
        if compile_jax:  # one compiled program: faster than op-by-op for a whole model
            try:
                value, grads = jax.jit(both)(*arrays)
            except jax.errors.JAXTypeError:  # `fn` needs concrete values (NumPy inside)
                pass
        if grads is None:
            value, grads = both(*arrays)
    elif backend == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        value = fn(*tensors)
        grads = torch.autograd.grad(value, tensors, allow_unused=True)
        grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, tensors)]
    else:
        raise RuntimeError(f"No gradients on backend {backend!r}.")
    return keras.ops.convert_to_numpy(value), [keras.ops.convert_to_numpy(g) for g in grads]


def jacobian(fn: Callable[[Any], Any], x: Any, independent_batch: bool = False) -> np.ndarray:
    """The Jacobian d fn(x) / dx as a NumPy array of shape `fn(x).shape + x.shape`.

    Built one output component at a time, so meant for small problems. With
    `independent_batch=True`, `fn` must treat axis 0 as independent examples (no batch
    statistics) and `x` must hold one example, `(1, ...)`: `x` is then repeated once per
    output component and every row is read from a single backward pass, which is far
    faster for models.

    Example:
    >>> import numpy as np
    >>> jacobian(lambda v: 3.0 * v, np.ones(2)).tolist()
    [[3.0, 0.0], [0.0, 3.0]]
    >>> jacobian(lambda v: v**2, np.array([[1.0, 2.0]]), independent_batch=True).tolist()
    [[[[2.0, 0.0]], [[0.0, 4.0]]]]
    """
    x = np.asarray(x, dtype="float32")
    out_shape = _output_shape(fn, x)
    if independent_batch:
        if x.shape[:1] != (1,) or out_shape[:1] != (1,):
            raise ValueError(
                "jacobian(independent_batch=True) takes one example, x of shape (1, ...), "
                f"and fn(x) of shape (1, ...); got {x.shape} -> {out_shape}."
            )
        size = int(np.prod(out_shape))
        pick = np.eye(size, dtype="float32")  # row b reads output component b

        def picked(v: Any) -> Any:
            out = keras.ops.reshape(fn(v), (size, size))
            return keras.ops.sum(out * keras.ops.convert_to_tensor(pick))

        _, (grad,) = value_and_gradients(picked, [np.repeat(x, size, axis=0)], compile_jax=True)
        return grad.reshape(out_shape + x.shape)
    rows = []
    for index in np.ndindex(*out_shape):
        _, (grad,) = value_and_gradients(lambda v, i=index: fn(v)[i], [x])
        rows.append(grad)
    return np.stack(rows).reshape(out_shape + x.shape)


def _output_shape(fn: Callable[[Any], Any], x: np.ndarray) -> tuple[int, ...]:
    """The shape of `fn(x)`; on JAX traced abstractly (no op-by-op evaluation)."""
    if keras.backend.backend() == "jax":
        import jax

        try:
            return tuple(jax.eval_shape(fn, x).shape)
        except jax.errors.JAXTypeError:
            pass
    return tuple(keras.ops.convert_to_numpy(fn(keras.ops.convert_to_tensor(x))).shape)
