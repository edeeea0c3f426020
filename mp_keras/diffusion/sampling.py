"""Sampling a diffusion model: the notes' Algorithm 3 (DDPM) and DDIM (notes, section 9.3).

The samplers know nothing about networks: `predict_noise(x_t, t)` is any function that
returns the predicted noise eps_hat (a model's network, a guided combination of two
predictions, or an exact oracle in a test), and `t` is an int32 tensor `(batch,)`, so a
compiled step is traced once and reused for every t.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.diffusion.schedule import NoiseSchedule

Step = Callable[..., Any]


def guided_noise(eps_conditional: Any, eps_unconditional: Any, rho: float) -> Any:
    """Classifier-free guidance (Ho & Salimans 2022; notes, section 9.4):
    eps* = (1 + rho) eps(x, y; t) - rho eps(x; t). rho = 0 is the conditional model."""
    return (1.0 + rho) * eps_conditional - rho * eps_unconditional


def ddpm_step(
    schedule: NoiseSchedule,
    x_t: Any,
    t: Any,
    eps: Any,
    z: Any,
    variance: str = "beta",
    gradient: Any = None,
    clip_x0: tuple[float, float] | None = None,
) -> Any:
    """Algorithm 3, line 4: x_{t-1} = (x_t - (1 - alpha_t) / sqrt(1 - abar_t) eps) /
    sqrt(alpha_t) + sigma_t z, with z replaced by 0 at t = 1.

    `gradient` (optional, for classifier guidance; Dhariwal & Nichol 2021, Algorithm 1)
    is s * grad_x log p(y | x_t); the mean moves by sigma_t^2 times it.

    `clip_x0` (optional, e.g. `(-1, 1)` for images): the same mean written as the
    posterior mean of q(x_{t-1} | x_t, x_0) at x_0 = predict_x0(x_t, t, eps) (the two are
    equal), with that x_0 clipped to the data's range first, as Ho et al. 2020 sample.
    It matters at the first steps of the cosine schedule, where beta_T = 0.999 makes
    1 / sqrt(alpha_T) = 32 multiply the network's error.
    """
    x_t, eps, z = (ops.convert_to_tensor(v) for v in (x_t, eps, z))
    if clip_x0 is None:
        mean = schedule.reverse_mean(x_t, t, eps)
    else:
        x0 = ops.clip(schedule.predict_x0(x_t, t, eps), clip_x0[0], clip_x0[1])
        mean, _ = schedule.q_posterior(x0, x_t, t)
    var = schedule.reverse_variance(t, x_t, variance)
    if gradient is not None:
        mean = mean + var * gradient
    last = ops.reshape(ops.cast(t > 1, x_t.dtype), (-1,) + (1,) * (len(x_t.shape) - 1))
    return mean + last * ops.sqrt(var) * z


def _seed_generator(seed: Any) -> Any:
    if seed is None or isinstance(seed, keras.random.SeedGenerator):
        return seed
    return keras.random.SeedGenerator(int(seed))


def _steps_tensor(value: int, batch: int) -> Any:
    return ops.full((batch,), value, dtype="int32")


def ddpm_sample(
    predict_noise: Callable[[Any, Any], Any],
    schedule: NoiseSchedule,
    x_T: Any,
    seed: Any = None,
    variance: str = "beta",
    compile: Callable[[Step], Step] | None = None,
    shift: Callable[[Any, Any], Any] | None = None,
    keep: Sequence[int] = (),
    clip_x0: tuple[float, float] | None = None,
) -> Any:
    """Algorithm 3: from x_T ~ N(0, I), T reverse steps t = T, ..., 1 to x_0.

    Args:
        predict_noise: callable `(x_t, t) -> eps_hat`, `t` int32 `(batch,)`.
        schedule: the `NoiseSchedule` the network was trained with.
        x_T: the starting noise, `(batch, *shape)`.
        seed: int, `keras.random.SeedGenerator` or None: the draws z of each step.
        variance: `"beta"` (sigma_t^2 = beta_t) or `"posterior"` (beta_tilde_t).
        compile: optional wrapper of the one-step function `(x_t, t, z) -> x_{t-1}`
            (e.g. a model's compiled cache), so it is traced once for all t.
        shift: optional `(x_t, t) -> s * grad log p(y | x_t)` for classifier guidance.
        keep: steps t whose x_t to return as well (e.g. for a figure of the chain).
        clip_x0: optional data range to clip the predicted x_0 to (see `ddpm_step`).

    Returns:
        x_0, or `(x_0, {t: x_t})` when `keep` is given.

    Example:
    >>> from keras import ops
    >>> schedule = NoiseSchedule("linear", timesteps=10)
    >>> x = ddpm_sample(lambda x, t: ops.zeros_like(x), schedule, ops.ones((2, 3)), seed=0)
    >>> tuple(x.shape)
    (2, 3)
    """

    def step(x: Any, t: Any, z: Any) -> Any:
        gradient = None if shift is None else shift(x, t)
        return ddpm_step(schedule, x, t, predict_noise(x, t), z, variance, gradient, clip_x0)

    run = step if compile is None else compile(step)
    seed = _seed_generator(seed)
    x = ops.convert_to_tensor(x_T)
    batch, kept = int(x.shape[0]), {}
    for t in range(schedule.timesteps, 0, -1):
        if t in keep:
            kept[t] = x
        z = keras.random.normal(ops.shape(x), dtype=x.dtype, seed=seed)
        x = run(x, _steps_tensor(t, batch), z)
    return (x, kept) if keep else x


def ddim_timesteps(schedule: NoiseSchedule, steps: int) -> np.ndarray:
    """The `steps` timesteps a DDIM sampler visits, evenly spaced in 1..T, descending."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}.")
    if steps > schedule.timesteps:
        raise ValueError(f"steps must be <= T = {schedule.timesteps}, got {steps}.")
    grid = np.round(np.linspace(schedule.timesteps, 1, steps)).astype(int)
    return np.unique(grid)[::-1]


def ddim_step(
    schedule: NoiseSchedule,
    x_t: Any,
    t: Any,
    t_prev: Any,
    eps: Any,
    z: Any,
    eta: float = 0.0,
    clip_x0: tuple[float, float] | None = None,
) -> Any:
    """One DDIM update (Song et al. 2021, eq. 12) from step t to the earlier t_prev
    (t_prev = 0 ends at x_0): x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev -
    sigma^2) eps + sigma z, sigma = eta sqrt((1 - abar_prev) / (1 - abar_t))
    sqrt(1 - abar_t / abar_prev). eta = 0 is deterministic; eta = 1 with t_prev = t - 1
    is the DDPM step with sigma_t^2 = beta_tilde_t."""
    abar = schedule.alpha_bar_at(t, x_t)
    abar_prev = schedule.alpha_bar_at(t_prev, x_t)
    x0 = (x_t - ops.sqrt(1.0 - abar) * eps) / ops.sqrt(abar)
    if clip_x0 is not None:
        x0 = ops.clip(x0, clip_x0[0], clip_x0[1])
        eps = (x_t - ops.sqrt(abar) * x0) / ops.sqrt(1.0 - abar)
    sigma = eta * ops.sqrt((1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev))
    direction = ops.sqrt(ops.maximum(1.0 - abar_prev - sigma**2, 0.0)) * eps
    return ops.sqrt(abar_prev) * x0 + direction + sigma * z


def ddim_sample(
    predict_noise: Callable[[Any, Any], Any],
    schedule: NoiseSchedule,
    x_T: Any,
    steps: int,
    eta: float = 0.0,
    seed: Any = None,
    compile: Callable[[Step], Step] | None = None,
    clip_x0: tuple[float, float] | None = None,
) -> Any:
    """DDIM sampling (beyond the notes): `steps` updates instead of T, the same network.

    With eta = 0 the map from x_T to x_0 is deterministic (an ODE discretisation), so
    fewer steps trade accuracy, not randomness; `clip_x0` clips the predicted x_0 to the
    data range at each step (common for images).

    Example:
    >>> from keras import ops
    >>> schedule = NoiseSchedule("cosine", timesteps=100)
    >>> x = ddim_sample(lambda x, t: ops.zeros_like(x), schedule, ops.ones((2, 3)), steps=5)
    >>> tuple(x.shape)
    (2, 3)
    """

    def step(x: Any, t: Any, t_prev: Any, z: Any) -> Any:
        return ddim_step(schedule, x, t, t_prev, predict_noise(x, t), z, eta, clip_x0)

    run = step if compile is None else compile(step)
    seed = _seed_generator(seed)
    x = ops.convert_to_tensor(x_T)
    batch = int(x.shape[0])
    visits = ddim_timesteps(schedule, steps)
    for t, t_prev in zip(visits, [*visits[1:], 0]):
        z = (
            keras.random.normal(ops.shape(x), dtype=x.dtype, seed=seed)
            if eta
            else ops.zeros_like(x)
        )
        x = run(x, _steps_tensor(int(t), batch), _steps_tensor(int(t_prev), batch), z)
    return x
