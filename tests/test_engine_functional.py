"""Double back-propagation and differentiable functional updates, against closed forms."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from mp_keras.engine import (
    Phase,
    PhasedModel,
    adam_state,
    adam_update,
    call_with,
    gradients,
    sgd_update,
    value_and_gradients,
)
from tests.harness import to_numpy


def test_gradient_of_a_gradient():
    # f = sum x^3 sin(y): the mixed second derivative d/dy (sum df/dx) = sum 3 x^2 cos(y).
    x, y = np.array([1.0, -2.0, 0.5]), np.array(0.3)

    def mixed(x, y):
        dx, _ = gradients(lambda a, b: ops.sum(a**3 * ops.sin(b)), [x, y])
        return ops.sum(dx)

    value, (dx, dy) = value_and_gradients(mixed, [x, y])
    np.testing.assert_allclose(value, np.sum(3 * x**2 * np.sin(y)), rtol=1e-5)
    np.testing.assert_allclose(dx, 6 * x * np.sin(y), rtol=1e-5)
    np.testing.assert_allclose(dy, np.sum(3 * x**2 * np.cos(y)), rtol=1e-5)


def test_an_input_the_value_ignores_gets_a_zero_gradient():
    grads = gradients(lambda a, b: ops.sum(a * 2.0), [np.ones(2, "float32"), np.ones(3, "float32")])
    np.testing.assert_allclose(to_numpy(grads[0]), [2.0, 2.0])
    np.testing.assert_allclose(to_numpy(grads[1]), np.zeros(3))


def _critic(phi: float) -> keras.layers.Dense:
    constant = keras.initializers.Constant(phi)
    dense = keras.layers.Dense(1, use_bias=False, kernel_initializer=constant)
    dense.build((None, 1))
    return dense


@pytest.mark.parametrize("steps", [1, 2])
def test_unrolled_sgd_gradient_matches_the_closed_form(steps):
    # D(x) = phi x. The critic's loss L_D = a phi^2 / 2 - b D(theta) takes `steps` SGD
    # steps: phi <- (1 - eta a) phi + eta b theta, so d phi_k / d theta = eta b sum_j
    # (1 - eta a)^j; the generator's loss L_G = D_k(theta) = phi_k theta has
    # d L_G / d theta = phi_k + theta d phi_k / d theta.
    a, b, eta, phi0, theta0 = 2.0, 1.5, 0.1, 0.7, -0.4
    dense = _critic(phi0)

    def generator_loss(theta):
        x = ops.reshape(theta, (1, 1))

        def critic_loss(kernel):
            return 0.5 * a * ops.sum(kernel**2) - b * ops.sum(call_with(dense, [kernel], x))

        params = [dense.kernel.value]
        for _ in range(steps):
            params = sgd_update(params, gradients(critic_loss, params), eta)
        return ops.sum(call_with(dense, params, x))

    value, (grad,) = value_and_gradients(generator_loss, [np.array(theta0)])
    phi, slope = phi0, 0.0
    for _ in range(steps):
        phi, slope = (1 - eta * a) * phi + eta * b * theta0, (1 - eta * a) * slope + eta * b
    np.testing.assert_allclose(value, phi * theta0, rtol=1e-5)
    np.testing.assert_allclose(grad, phi + theta0 * slope, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(dense.kernel), [[phi0]])  # the variable is untouched


def test_adam_update_follows_keras_adam():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3,)).astype("float32")
    variable = keras.Variable(start)
    optimizer = keras.optimizers.Adam(0.05)
    params, state = [start], adam_state([start])  # float32 throughout
    for _ in range(4):
        grad = rng.normal(size=(3,)).astype("float32")
        optimizer.apply([ops.convert_to_tensor(grad)], [variable])
        params, state = adam_update(params, [grad], state, learning_rate=0.05)
    np.testing.assert_allclose(to_numpy(params[0]), to_numpy(variable), atol=1e-5)


def test_adam_update_has_finite_second_derivatives_at_a_zero_gradient():
    def ahead(w):
        params, _ = adam_update([w], gradients(lambda u: ops.sum(u**2), [w]), adam_state([w]))
        return ops.sum(params[0] ** 2)

    _, (grad,) = value_and_gradients(ahead, [np.zeros(2, "float32")])
    assert np.all(np.isfinite(grad))


def test_call_with_checks_the_number_of_values():
    with pytest.raises(ValueError, match="1 trainable variables; got 2"):
        call_with(_critic(1.0), [np.ones((1, 1)), np.ones(1)], np.ones((1, 1)))


class _PenaltyModel(PhasedModel):
    """Loss (d/dx of w x^2 at x)^2 = 4 w^2 x^2: double back-propagation in the step."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.w = self.add_weight(shape=(), initializer="ones", name="w")
        self.built = True

    def phases(self):
        return [Phase("main", [self.w], self._loss)]

    def _loss(self, x, y, training):
        (slope,) = gradients(lambda u: ops.sum(self.w * u**2), [x])
        loss = ops.mean(slope**2)
        return loss, {}

    def call(self, x):
        return x


class _UnrolledModel(PhasedModel):
    """The unrolled game of the test above, trained by one SGD step on theta."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.theta = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(-0.4), name="theta"
        )
        self.critic = _critic(0.7)
        self.built = True

    def phases(self):
        return [Phase("generator", [self.theta], self._loss)]

    def _loss(self, x, y, training):
        point = ops.reshape(self.theta, (1, 1))
        params = [self.critic.kernel.value]

        def critic_loss(kernel):
            return ops.sum(kernel**2) - 1.5 * ops.sum(call_with(self.critic, [kernel], point))

        params = sgd_update(params, gradients(critic_loss, params), 0.1)
        return ops.sum(call_with(self.critic, params, point)), {}

    def call(self, x):
        return x


def test_double_backprop_inside_fit_and_evaluate():
    model = _PenaltyModel()
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    x = np.array([[0.5], [1.0]], "float32")
    loss = model.evaluate(x, batch_size=2, verbose=0)  # under torch.no_grad on PyTorch
    np.testing.assert_allclose(loss, np.mean(4 * x**2), rtol=1e-5)
    model.fit(x, batch_size=2, epochs=1, verbose=0, shuffle=False)
    # d loss / d w = 8 w mean(x^2) = 5 at w = 1: w <- 1 - 0.01 * 5
    np.testing.assert_allclose(to_numpy(model.w), 1 - 0.01 * 8 * np.mean(x**2), rtol=1e-5)


def test_unrolled_step_inside_fit():
    model = _UnrolledModel()
    model.compile(optimizer={"generator": keras.optimizers.SGD(0.5)})  # theta only
    model.fit(np.zeros((1, 1), "float32"), batch_size=1, epochs=1, verbose=0)
    a, b, eta, phi, theta = 2.0, 1.5, 0.1, 0.7, -0.4
    phi_1 = (1 - eta * a) * phi + eta * b * theta
    grad = phi_1 + theta * eta * b
    np.testing.assert_allclose(to_numpy(model.theta), theta - 0.5 * grad, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(model.critic.kernel), [[phi]])
