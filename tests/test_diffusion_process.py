"""The diffusion process alone: schedules, closed form vs chain, posterior, samplers with
an exact noise oracle (no network)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras import ops

from mp_keras.diffusion import (
    NoiseSchedule,
    ddim_sample,
    ddim_timesteps,
    ddpm_sample,
    ddpm_step,
    guided_noise,
)
from mp_keras.engine import compiled
from tests.harness import to_numpy


def test_linear_schedule_is_the_formula():
    schedule = NoiseSchedule("linear", timesteps=1000)
    np.testing.assert_allclose(schedule.betas, np.linspace(1e-4, 0.02, 1000), rtol=1e-12)
    assert np.all(np.diff(schedule.betas) > 0)
    np.testing.assert_allclose(schedule.alpha_bars, np.cumprod(1 - schedule.betas))
    assert schedule.alpha_bars[0] == pytest.approx(1 - 1e-4)
    assert schedule.alpha_bars[-1] < 1e-4
    # Another T keeps the shape: betas scaled by 1000 / T.
    short = NoiseSchedule("linear", timesteps=100)
    np.testing.assert_allclose(short.betas[[0, -1]], [1e-3, 0.2])


def test_cosine_schedule_is_the_formula():
    T, s = 1000, 0.008
    schedule = NoiseSchedule("cosine", timesteps=T)

    def f(t):
        return np.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    t = np.arange(1, T + 1)
    betas = np.minimum(1 - f(t) / f(t - 1), 0.999)
    np.testing.assert_allclose(schedule.betas, betas, rtol=1e-9)
    assert np.all(np.diff(schedule.betas) > 0)
    assert schedule.betas[-1] == 0.999  # clipped
    # Before the clip, abar_t = f(t) / f(0) exactly.
    np.testing.assert_allclose(schedule.alpha_bars[:-1], (f(t) / f(0))[:-1], rtol=1e-9)
    assert schedule.alpha_bars[0] > 0.9999 and schedule.alpha_bars[-1] < 1e-6
    # The footnote: the linear schedule destroys information faster.
    linear = NoiseSchedule("linear", timesteps=T)
    assert np.all(schedule.alpha_bars[100:900] > linear.alpha_bars[100:900])


def test_closed_form_equals_the_chain():
    schedule = NoiseSchedule("linear", timesteps=50)
    rng = np.random.default_rng(0)
    n, x0 = 20000, np.array([1.5, -0.5], "float32")
    x = np.broadcast_to(x0, (n, 2)).astype("float32")
    for t in range(1, 31):
        noise = rng.standard_normal((n, 2)).astype("float32")
        x = to_numpy(schedule.q_step(ops.convert_to_tensor(x), np.full((n,), t), noise))
    abar = schedule.alpha_bars[29]
    np.testing.assert_allclose(x.mean(0), math.sqrt(abar) * x0, atol=0.03)
    np.testing.assert_allclose(x.var(0), 1 - abar, rtol=0.04)
    closed = to_numpy(
        schedule.q_sample(
            np.broadcast_to(x0, (n, 2)).astype("float32"),
            np.full((n,), 30),
            rng.standard_normal((n, 2)).astype("float32"),
        )
    )
    np.testing.assert_allclose(closed.mean(0), x.mean(0), atol=0.04)
    np.testing.assert_allclose(closed.var(0), x.var(0), rtol=0.05)


def test_posterior_is_bayes_rule():
    schedule = NoiseSchedule("cosine", timesteps=20)
    x0 = np.array([[0.3], [-1.0], [2.0]], "float32")
    x_t = np.array([[0.1], [0.5], [-0.4]], "float32")
    for t in (2, 7, 20):
        mean, var = (to_numpy(v) for v in schedule.q_posterior(x0, x_t, np.full((3,), t)))
        a, abar_prev = schedule.alphas[t - 1], schedule.alpha_bars[t - 2]
        # q(x_{t-1} | x0) = N(sqrt(abar_prev) x0, 1 - abar_prev); q(x_t | x_{t-1}) =
        # N(sqrt(a) x_{t-1}, 1 - a): the product, normalised in x_{t-1}.
        precision = 1 / (1 - abar_prev) + a / (1 - a)
        expected = math.sqrt(abar_prev) * x0 / (1 - abar_prev) + math.sqrt(a) * x_t / (1 - a)
        np.testing.assert_allclose(var, np.full_like(x0, 1 / precision), rtol=1e-5)
        np.testing.assert_allclose(mean, expected / precision, rtol=1e-4, atol=1e-6)
    assert schedule.posterior_variance[0] == 0.0  # x_0 is known given x_1 and x_0


def gaussian_oracle(schedule, mean, std):
    """The exact E[eps | x_t] when x_0 ~ N(mean, std^2): what a perfect network predicts."""

    def predict(x, t):
        abar = schedule.alpha_bar_at(t, x)
        return ops.sqrt(1 - abar) * (x - ops.sqrt(abar) * mean) / (abar * std**2 + 1 - abar)

    return predict


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_algorithm_3_with_a_perfect_oracle_recovers_the_data(variance):
    schedule = NoiseSchedule("cosine", timesteps=100)
    mean, std = np.array([1.0, -2.0], "float32"), np.array([0.5, 0.2], "float32")
    noise = keras.random.normal((8000, 2), seed=0)
    x = to_numpy(
        ddpm_sample(
            gaussian_oracle(schedule, mean, std), schedule, noise, 1, variance, compile=compiled
        )
    )
    np.testing.assert_allclose(x.mean(0), mean, atol=0.03)
    # sigma_t^2 = beta_t adds a little extra variance; beta_tilde is exact in the limit.
    np.testing.assert_allclose(x.std(0), std, rtol=0.08)


def test_ddim_with_fewer_steps_and_its_ddpm_limit():
    schedule = NoiseSchedule("cosine", timesteps=100)
    mean, std = np.array([1.0, -2.0], "float32"), np.array([0.5, 0.2], "float32")
    oracle = gaussian_oracle(schedule, mean, std)
    noise = keras.random.normal((8000, 2), seed=0)
    # Deterministic (eta = 0): the mean at any number of steps; the spread shrinks with
    # few steps (a first-order ODE discretisation) and converges as the steps grow.
    spreads = []
    for steps in (10, 20, 100):
        x = to_numpy(ddim_sample(oracle, schedule, noise, steps=steps, compile=compiled))
        np.testing.assert_allclose(x.mean(0), mean, atol=0.03)
        spreads.append(x.std(0))
    assert np.all(np.diff(np.stack(spreads), axis=0) > 0) and np.all(spreads[-1] < std)
    np.testing.assert_allclose(spreads[-1], std, rtol=0.04)
    again = ddim_sample(oracle, schedule, noise, steps=100, compile=compiled)
    np.testing.assert_array_equal(x, to_numpy(again))  # no randomness at eta = 0
    # eta = 1 over every step is Algorithm 3 with sigma_t^2 = beta_tilde_t, draw for draw.
    start = noise[:64]
    ddim = to_numpy(ddim_sample(oracle, schedule, start, steps=100, eta=1.0, seed=3))
    ddpm = to_numpy(ddpm_sample(oracle, schedule, start, seed=3, variance="posterior"))
    np.testing.assert_allclose(ddim, ddpm, atol=1e-4)
    assert ddim_timesteps(schedule, 4).tolist() == [100, 67, 34, 1]


def test_clipping_x0_changes_only_what_leaves_the_range():
    schedule = NoiseSchedule("cosine", timesteps=50)
    rng = np.random.default_rng(0)
    x_t, eps, z = (rng.standard_normal((16, 3)).astype("float32") for _ in range(3))
    for t in (1, 2, 25, 50):
        steps = np.full((16,), t)
        plain = to_numpy(ddpm_step(schedule, x_t, steps, eps, z))
        # The posterior-mean form with an unreachable clip is Algorithm 3 itself.
        wide = to_numpy(ddpm_step(schedule, x_t, steps, eps, z, clip_x0=(-1e6, 1e6)))
        np.testing.assert_allclose(wide, plain, rtol=1e-4, atol=1e-4)
    clipped = to_numpy(ddpm_step(schedule, x_t, np.full((16,), 50), eps, z, clip_x0=(-1, 1)))
    x0 = to_numpy(schedule.predict_x0(x_t, np.full((16,), 50), eps))
    assert np.abs(x0).max() > 5  # beta_T = 0.999: the unclipped x_0 is far out
    mean, _ = schedule.q_posterior(np.clip(x0, -1, 1), x_t, np.full((16,), 50))
    sigma = math.sqrt(schedule.betas[-1])
    np.testing.assert_allclose(clipped, to_numpy(mean) + sigma * z, rtol=1e-5, atol=1e-5)


def test_guidance_formula_and_kept_chain():
    c, u = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    np.testing.assert_allclose(to_numpy(guided_noise(c, u, 0.0)), c)
    np.testing.assert_allclose(to_numpy(guided_noise(c, u, 2.0)), 3 * c - 2 * u)
    schedule = NoiseSchedule("linear", timesteps=10)
    _, kept = ddpm_sample(
        lambda x, t: ops.zeros_like(x), schedule, ops.ones((2, 1)), 0, keep=(10, 5)
    )
    assert sorted(kept) == [5, 10] and to_numpy(kept[10]).tolist() == [[1.0], [1.0]]


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        NoiseSchedule("quadratic")
    with pytest.raises(ValueError, match="timesteps must be an int >= 1"):
        NoiseSchedule("linear", timesteps=0)
    schedule = NoiseSchedule("linear", timesteps=10)
    with pytest.raises(ValueError, match=r"timesteps must be in 1\.\.10"):
        schedule.check_timesteps(np.array([0, 3]))
    with pytest.raises(ValueError, match="integers"):
        schedule.check_timesteps(np.array([1.5]))
    with pytest.raises(ValueError, match="steps must be <= T = 10"):
        ddim_timesteps(schedule, 11)
    with pytest.raises(ValueError, match="variance must be one of"):
        schedule.reverse_variance(np.array([1]), np.zeros((1, 2)), "learned")
    clone = NoiseSchedule.from_config(schedule.get_config())
    np.testing.assert_array_equal(clone.betas, schedule.betas)
