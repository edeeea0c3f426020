"""The engine: phases, one optimizer per phase, state across steps, fit features."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from mp_keras.engine import OptimizerGroup, Phase, PhasedModel
from tests.harness import to_numpy


@keras.saving.register_keras_serializable(package="mp_keras_tests")
class TwoPhaseToy(PhasedModel):
    """a chases 1 (k updates per step), then b chases the updated a.

    Phase A: loss (a - 1)^2 plus noise * 0 drawn from the model's seed generator;
    phase B: loss (b - a)^2 with a fixed. With SGD + momentum, the trajectory is known
    in closed form, so a lost optimizer slot or a stale `a` shows up as a wrong number.
    """

    def __init__(self, repeat: int = 2, noisy: bool = False, seed: int | None = 0, **kwargs):
        super().__init__(**kwargs)
        self.repeat = repeat
        self.noisy = noisy
        self.seed = seed
        self.a = self.add_weight(shape=(), initializer="zeros", name="a")
        self.b = self.add_weight(shape=(), initializer="zeros", name="b")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.track("a_loss", "b_loss")
        self.built = True

    def call(self, x):
        return x * self.a + self.b

    def phases(self):
        return [
            Phase("A", [self.a], self._a_loss, repeat=self.repeat),
            Phase("B", [self.b], self._b_loss),
        ]

    def _a_loss(self, x, y, training):
        loss = ops.square(self.a - 1.0)
        if self.noisy:
            loss = loss + 0.1 * ops.mean(keras.random.normal((3,), seed=self.seed_generator))
        return loss, {"a_loss": loss}

    def _b_loss(self, x, y, training):
        loss = ops.square(self.b - ops.stop_gradient(self.a))
        return loss, {"b_loss": loss}

    def get_config(self):
        return {
            **super().get_config(),
            "repeat": self.repeat,
            "noisy": self.noisy,
            "seed": self.seed,
        }


def _expected(steps: int, repeat: int, lr: float = 0.1, momentum: float = 0.9):
    """SGD with momentum (Keras form: m <- mu m - lr g; w <- w + m), by hand."""
    a = b = ma = mb = 0.0
    for _ in range(steps):
        for _ in range(repeat):
            ma = momentum * ma - lr * 2 * (a - 1.0)
            a += ma
        mb = momentum * mb - lr * 2 * (b - a)
        b += mb
    return a, b


def _compile(model, **kwargs):
    model.compile(
        optimizer={
            "A": keras.optimizers.SGD(0.1, momentum=0.9),
            "B": keras.optimizers.SGD(0.1, momentum=0.9),
        },
        **kwargs,
    )


X = np.zeros((8, 1), "float32")


@pytest.mark.parametrize("jit_compile", [True, False])
def test_phases_follow_closed_form_trajectory(jit_compile):
    model = TwoPhaseToy(repeat=2)
    _compile(model, jit_compile=jit_compile)
    model.fit(X, epochs=3, batch_size=4, verbose=0)  # 6 steps
    a, b = _expected(steps=6, repeat=2)
    np.testing.assert_allclose(to_numpy(model.a), a, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(model.b), b, rtol=1e-5)
    group = model.optimizer
    assert isinstance(group, OptimizerGroup)
    assert int(to_numpy(group["A"].iterations)) == 12  # k = 2 updates per step
    assert int(to_numpy(group["B"].iterations)) == 6
    assert int(to_numpy(group.iterations)) == 6


def test_optimizer_state_persists_across_fit_calls_and_save(tmp_path):
    model = TwoPhaseToy(repeat=1)
    _compile(model)
    model.fit(X, epochs=2, batch_size=4, verbose=0)
    model.save(tmp_path / "toy.keras")
    loaded = keras.saving.load_model(tmp_path / "toy.keras")
    assert isinstance(loaded.optimizer, OptimizerGroup)
    # Momentum slots survived the round trip, so training on gives the same trajectory
    # as four uninterrupted steps would.
    loaded.fit(X, epochs=1, batch_size=4, verbose=0)
    model.fit(X, epochs=1, batch_size=4, verbose=0)
    a, b = _expected(steps=6, repeat=1)
    for m in (model, loaded):
        np.testing.assert_allclose(to_numpy(m.a), a, rtol=1e-5)
        np.testing.assert_allclose(to_numpy(m.b), b, rtol=1e-5)


def test_an_ema_optimizer_can_fit_again_and_evaluate():
    # Keras writes the moving averages into the weights at the end of fit; on JAX the
    # weights then shared the averages' buffers, and the next fit found them donated.
    model = TwoPhaseToy(repeat=1)
    model.compile(
        optimizer={
            "A": keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5),
            "B": keras.optimizers.SGD(0.1),
        }
    )
    model.fit(X, epochs=1, batch_size=4, verbose=0)
    after_first = float(to_numpy(model.a))
    model.fit(X, epochs=1, batch_size=4, verbose=0)
    model.evaluate(X, verbose=0)
    assert 0.0 < after_first < float(to_numpy(model.a)) < 1.0


@pytest.mark.skipif(keras.backend.backend() == "torch", reason="PyTorch runs steps eagerly")
def test_the_training_step_is_traced_once():
    # Python in a loss runs only while a step is traced. On TensorFlow, an optimizer
    # built inside the first trace (Keras' default without a distribution strategy)
    # made `tf.function` trace the step twice; the engine builds it before `fit`.
    traces = []

    class Counted(TwoPhaseToy):
        def _b_loss(self, x, y, training):
            traces.append(1)
            return super()._b_loss(x, y, training)

    model = Counted(repeat=1)
    model.compile(optimizer={"A": "adam", "B": keras.optimizers.SGD(0.1, use_ema=True)})
    model.fit(X, epochs=2, batch_size=4, verbose=0)
    assert len(traces) == 1


def test_logs_and_evaluate():
    model = TwoPhaseToy(repeat=1)
    _compile(model)
    history = model.fit(X, epochs=1, batch_size=8, verbose=0, validation_data=(X,))
    assert set(history.history) == {
        "a_loss",
        "b_loss",
        "loss",
        "val_a_loss",
        "val_b_loss",
        "val_loss",
    }
    # The first step's a_loss is (0 - 1)^2 = 1; the logged loss is the sum of phases.
    np.testing.assert_allclose(history.history["a_loss"][0], 1.0, rtol=1e-6)
    result = model.evaluate(X, verbose=0, return_dict=True)
    a, b = to_numpy(model.a), to_numpy(model.b)
    np.testing.assert_allclose(result["a_loss"], (a - 1) ** 2, rtol=1e-5)
    np.testing.assert_allclose(result["b_loss"], (b - a) ** 2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(result["loss"], result["a_loss"] + result["b_loss"], rtol=1e-5)


def test_seeded_randomness_is_reproducible_and_advances():
    def run():
        keras.utils.set_random_seed(1)
        model = TwoPhaseToy(noisy=True, seed=3)
        _compile(model)
        return model.fit(X, epochs=3, batch_size=4, verbose=0).history["a_loss"]

    first, second = run(), run()
    assert first == second
    assert len(set(np.round(first, 6))) == 3  # a fresh draw each step, not a frozen one


def test_single_optimizer_is_cloned_per_phase():
    model = TwoPhaseToy()
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    assert model.optimizer.names == ["A", "B"]
    assert model.optimizer["A"] is not model.optimizer["B"]
    model.fit(X, epochs=1, batch_size=4, verbose=0)
    a, b = _expected(steps=2, repeat=2)
    np.testing.assert_allclose(to_numpy(model.a), a, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(model.b), b, rtol=1e-5)


def test_compile_rejects_loss_and_wrong_optimizer_keys():
    model = TwoPhaseToy()
    with pytest.raises(ValueError, match="takes no `loss`"):
        model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="one entry per phase"):
        model.compile(optimizer={"A": "sgd", "C": "sgd"})
    with pytest.raises(ValueError, match="repeat must be an int"):
        Phase("x", [model.a], lambda x, y, t: (0.0, {}), repeat=0)


def test_sample_weight_is_rejected():
    model = TwoPhaseToy()
    _compile(model)
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(X, None, sample_weight=np.ones(8), epochs=1, verbose=0)


@keras.saving.register_keras_serializable(package="mp_keras_tests")
class ExplodingToy(PhasedModel):
    """Its loss becomes NaN at the third step: TerminateOnNaN must stop training."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.w = self.add_weight(shape=(), initializer="ones", name="w")
        self.built = True

    def call(self, x):
        return x * self.w

    def phases(self):
        return [Phase("w", [self.w], self._loss)]

    def _loss(self, x, y, training):
        # w grows 1 -> 2 -> 3; log(3 - w) is NaN once w passes 3.
        return ops.log(3.0 - self.w) - self.w, {}


def test_callbacks_work_with_the_engine(tmp_path):
    model = ExplodingToy()
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    history = model.fit(
        X, epochs=10, batch_size=8, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()]
    )
    assert len(history.history["loss"]) < 10

    toy = TwoPhaseToy()
    _compile(toy)
    checkpoint = tmp_path / "best.keras"
    toy.fit(
        X,
        epochs=2,
        batch_size=4,
        verbose=0,
        validation_data=(X,),
        callbacks=[
            keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss"),
            keras.callbacks.TensorBoard(str(tmp_path / "logs")),
        ],
    )
    assert checkpoint.exists()
    assert any((tmp_path / "logs").rglob("*tfevents*"))


def test_backup_and_restore_resumes_with_optimizer_state(tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt  # as if the process were killed

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    model = TwoPhaseToy()
    _compile(model)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, epochs=4, batch_size=4, verbose=0, callbacks=[backup, Interrupt()])

    fresh = TwoPhaseToy()
    _compile(fresh)
    history = fresh.fit(
        X,
        epochs=4,
        batch_size=4,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))],
    )
    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only
    a, b = _expected(steps=8, repeat=2)
    np.testing.assert_allclose(to_numpy(fresh.a), a, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(fresh.b), b, rtol=1e-5)


@keras.saving.register_keras_serializable(package="mp_keras_tests")
class RuleToy(PhasedModel):
    """w follows an explicit rule (w <- w + mean(x)); v descends (v - w)^2 by SGD."""

    def __init__(self, with_gradient_phase: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.with_gradient_phase = with_gradient_phase
        self.w = self.add_weight(shape=(), initializer="zeros", name="w", trainable=False)
        self.v = self.add_weight(shape=(), initializer="zeros", name="v")
        self.built = True

    def call(self, x):
        return x * self.w + self.v

    def phases(self):
        rule = Phase(
            "rule",
            [self.w],
            lambda x, y, training: (ops.square(self.w), {}),
            update=lambda x, y: [self.w + ops.mean(x)],
        )
        descent = Phase("descent", [self.v], lambda x, y, t: (ops.square(self.v - self.w), {}))
        return [rule, descent] if self.with_gradient_phase else [rule]

    def get_config(self):
        return {**super().get_config(), "with_gradient_phase": self.with_gradient_phase}


def test_rule_phases_assign_their_update():
    x = np.ones((8, 1), "float32")
    model = RuleToy()
    model.compile(optimizer=keras.optimizers.SGD(0.25))
    history = model.fit(x, epochs=3, batch_size=4, verbose=0)  # 6 steps
    w, v = 0.0, 0.0
    for _ in range(6):
        w += 1.0
        v -= 0.25 * 2 * (v - w)
    np.testing.assert_allclose(to_numpy(model.w), w)
    np.testing.assert_allclose(to_numpy(model.v), v, rtol=1e-6)
    assert history.history["loss"][0] > 0

    rule_only = RuleToy(with_gradient_phase=False)
    rule_only.compile()
    rule_only.fit(x, epochs=2, batch_size=8, verbose=0)
    np.testing.assert_allclose(to_numpy(rule_only.w), 2.0)
    assert int(to_numpy(rule_only.optimizer.iterations)) == 2
    with pytest.raises(ValueError, match="takes no optimizer"):
        RuleToy(with_gradient_phase=False).compile(optimizer="sgd")


def test_value_and_gradients_and_jacobian():
    from mp_keras.engine import jacobian, value_and_gradients

    a = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")
    value, (grad_x, grad_w) = value_and_gradients(
        lambda x, w: ops.sum(ops.matmul(x, w) ** 2), [a, np.eye(2, dtype="float32")]
    )
    assert value == pytest.approx(30.0)
    np.testing.assert_allclose(grad_x, 2 * a)
    np.testing.assert_allclose(grad_w, 2 * a.T @ a)
    np.testing.assert_allclose(jacobian(lambda v: ops.matmul(a, v), np.ones(2)), a)


def test_keras_multi_optimizer_cannot_apply_one_phase():
    """Why the engine keeps `OptimizerGroup` (docs/engine.md): Keras' `MultiOptimizer`
    maps variables to optimizers but applies all gradients in one call, so a GAN cannot
    update its discriminator k times and then its generator, each with its own step."""
    d = keras.Variable(np.ones(2, "float32"), name="d")
    g = keras.Variable(np.ones(2, "float32"), name="g")
    multi = keras.optimizers.MultiOptimizer(
        keras.optimizers.OptimizerMap(keras.optimizers.SGD(0.1), {"d": keras.optimizers.Adam()})
    )
    multi.build([d, g])
    with pytest.raises(ValueError, match="Gradients must match trainable variables one-to-one"):
        multi.apply([keras.ops.ones(2)], [d])  # the discriminator phase alone
    multi.apply([keras.ops.ones(2), keras.ops.ones(2)], [d, g])  # both at once is all it does
    assert int(to_numpy(multi.iterations)) == 1
