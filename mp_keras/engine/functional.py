"""Differentiable gradients and functional network calls, for losses that need them.

Two things some losses of chapter 8 need and plain `keras.ops` cannot express:

* **gradients inside a loss** that are themselves differentiated (double
  back-propagation), such as the gradient penalty ||grad_x D(x_hat)|| of WGAN-GP;
* **functional updates**: a network evaluated with parameter values that are not its
  variables' (`call_with`), and optimizer steps on those values (`sgd_update`,
  `adam_update`) that stay differentiable, so a loss can look k discriminator steps
  ahead (the unrolled GAN).

`gradients` is the only function here that branches on the backend: a nested
`GradientTape` on TensorFlow, `torch.autograd.grad(create_graph=True)` on PyTorch and a
nested `jax.grad` on JAX (inside the traced training step, or eagerly). All of them
work inside a `PhasedModel` phase's loss on every backend, and outside one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops


def gradients(fn: Callable[..., Any], inputs: Sequence[Any]) -> list[Any]:
    """The gradients of the scalar `fn(*inputs)` with respect to each input.

    Unlike `value_and_gradients` (NumPy out, for tests), the result is a list of
    backend tensors that can be used inside a loss and differentiated again. An input
    the value does not depend on gets a zero gradient. For a per-example gradient, such
    as the critic's gradient at each interpolate x_hat, pass a `fn` that sums over the
    batch: the examples do not interact, so row i of the gradient is that example's.

    Args:
        fn: callable. Takes one tensor per input and returns a scalar tensor.
        inputs: sequence of tensors (or arrays, or Keras variables, whose current value
            is used).

    Returns:
        A list of tensors, `d fn / d inputs[i]`, each of its input's shape.

    Example:
    >>> import numpy as np
    >>> from mp_keras.engine import value_and_gradients
    >>> cube = lambda u: keras.ops.sum(u**3)  # gradient 3 u^2
    >>> slope = lambda u: keras.ops.sum(gradients(cube, [u])[0])  # d/du of sum 3 u^2 = 6 u
    >>> value, (second,) = value_and_gradients(slope, [np.array([1.0, 2.0])])
    >>> float(value), second.tolist()
    (15.0, [6.0, 12.0])
    """
    values = [x.value if isinstance(x, keras.Variable) else x for x in inputs]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        values = [v if isinstance(v, tf.Variable) else tf.convert_to_tensor(v) for v in values]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(values)
            value = fn(*values)
        return list(
            tape.gradient(value, values, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        )
    if backend == "jax":
        import jax

        return list(jax.grad(fn, argnums=tuple(range(len(values))))(*values))
    if backend == "torch":
        import torch

        with torch.enable_grad():  # also inside test_step's no_grad
            ready = []
            for v in values:
                v = torch.as_tensor(ops.convert_to_tensor(v))
                # A tensor outside any graph gets a differentiable copy; one inside the
                # graph is used as it is, so the gradient stays connected to it.
                ready.append(v if v.requires_grad else v.detach().requires_grad_(True))
            value = fn(*ready)
            grads = torch.autograd.grad(value, ready, create_graph=True, allow_unused=True)
        return [torch.zeros_like(v) if g is None else g for g, v in zip(grads, ready)]
    raise RuntimeError(f"No gradients on backend {backend!r}.")


def call_with(network: keras.Layer, values: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
    """`network(*args, **kwargs)` with its trainable variables set to `values`.

    The output is differentiable with respect to `values`; the network's variables are
    not changed, and neither are its non-trainable ones (batch-norm statistics updated
    by the call are discarded). Keras' `stateless_call`, returning the outputs only.

    Args:
        network: a built Keras layer or model.
        values: one tensor per `network.trainable_variables`, in that order.
        *args: the call's inputs; `**kwargs` such as `training` are passed on.

    Example:
    >>> import numpy as np
    >>> dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")
    >>> _ = dense.build((None, 2))
    >>> x = np.array([[1.0, 2.0]], "float32")
    >>> keras.ops.convert_to_numpy(call_with(dense, [np.full((2, 1), 3.0, "float32")], x))
    array([[9.]], dtype=float32)
    """
    if len(values) != len(network.trainable_variables):
        raise ValueError(
            f"call_with: {network.name} has {len(network.trainable_variables)} trainable "
            f"variables; got {len(values)} values."
        )
    current = [v.value for v in network.non_trainable_variables]
    outputs, _ = network.stateless_call(list(values), current, *args, **kwargs)
    return outputs


def sgd_update(params: Sequence[Any], grads: Sequence[Any], learning_rate: float) -> list[Any]:
    """One differentiable gradient-descent step, theta <- theta - eta * g, on values.

    Example:
    >>> import numpy as np
    >>> (step,) = sgd_update([np.ones(2)], [np.ones(2)], learning_rate=0.5)
    >>> keras.ops.convert_to_numpy(step).tolist()
    [0.5, 0.5]
    """
    return [p - learning_rate * g for p, g in zip(params, grads)]


def adam_state(params: Sequence[Any]) -> tuple[Any, list[Any], list[Any]]:
    """The initial state of `adam_update`: step 0 and zero first and second moments."""
    zeros = [ops.zeros_like(ops.convert_to_tensor(p)) for p in params]
    return ops.convert_to_tensor(0.0), zeros, list(zeros)


def adam_update(
    params: Sequence[Any],
    grads: Sequence[Any],
    state: tuple[Any, Sequence[Any], Sequence[Any]],
    learning_rate: float = 1e-3,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
) -> tuple[list[Any], tuple[Any, list[Any], list[Any]]]:
    """One differentiable Adam step (Kingma & Ba 2015) on values; returns (params, state).

    The same update as `keras.optimizers.Adam` except for where epsilon goes: the
    denominator is sqrt(v_hat + epsilon^2) instead of sqrt(v_hat) + epsilon, because
    the derivative of sqrt is infinite at 0 and a zero gradient would otherwise make
    the second derivative NaN. The two agree to within epsilon.

    Example:
    >>> import numpy as np
    >>> start, grad = np.zeros(2, "float32"), np.array([2.0, -3.0], "float32")
    >>> params, state = adam_update([start], [grad], adam_state([start]), learning_rate=0.1)
    >>> np.round(keras.ops.convert_to_numpy(params[0]), 4).tolist()  # -lr * sign(g) at step 1
    [-0.1, 0.1]
    """
    params = [ops.convert_to_tensor(p) for p in params]
    grads = [ops.cast(g, p.dtype) for g, p in zip(grads, params)]
    step, first, second = state
    step = step + 1.0
    first = [beta_1 * m + (1 - beta_1) * g for m, g in zip(first, grads)]
    second = [beta_2 * v + (1 - beta_2) * ops.square(g) for v, g in zip(second, grads)]
    m_scale = 1.0 / (1.0 - ops.power(beta_1, step))
    v_scale = 1.0 / (1.0 - ops.power(beta_2, step))
    params = [
        p - learning_rate * (m * m_scale) / ops.sqrt(v * v_scale + epsilon**2)
        for p, m, v in zip(params, first, second)
    ]
    return params, (step, first, second)
