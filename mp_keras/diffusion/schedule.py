"""The noise schedule and the forward process of a diffusion model (notes, sections 9.1-9.3).

A schedule is the sequence beta_1, ..., beta_T of variances of the forward steps
q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I). Everything the process needs is
a function of it: alpha_t = 1 - beta_t, abar_t = prod_{i <= t} alpha_i, the closed form
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, and the Gaussian posterior
q(x_{t-1} | x_t, x_0) that the reverse process imitates. The tables are NumPy (float64,
entry t - 1 belongs to step t = 1..T); the methods that act on data are `keras.ops`, so
they run inside a compiled training or sampling step on every backend.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

SCHEDULES = ("linear", "cosine")
VARIANCES = ("beta", "posterior")


@keras.saving.register_keras_serializable(package="mp_keras")
class NoiseSchedule:
    """The betas of a diffusion model and the forward process q they define.

    * `"linear"` (Ho et al. 2020): beta_t rises linearly from `beta_start` to `beta_end`.
      The two values are the paper's for T = 1000; for another T both are scaled by
      1000 / T (as Nichol & Dhariwal 2021 do), so that abar_T is about as small for any
      T (capped at `max_beta`).
    * `"cosine"` (Nichol & Dhariwal 2021): abar_t = f(t) / f(0) with
      f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2), s = `cosine_offset`; beta_t =
      1 - abar_t / abar_{t-1} clipped at `max_beta`. It destroys information more slowly
      than the linear schedule (the notes' footnote 17), which wastes its last steps on
      nearly pure noise.

    Args:
        kind: str. `"linear"` or `"cosine"`. Defaults to `"cosine"`.
        timesteps: int. T, the number of forward steps. Defaults to `1000`.
        beta_start: float. The linear schedule's beta_1 at T = 1000. Defaults to `1e-4`.
        beta_end: float. The linear schedule's beta_T at T = 1000. Defaults to `0.02`.
        cosine_offset: float. s of the cosine schedule. Defaults to `0.008`.
        max_beta: float. Upper clip of every beta_t. Defaults to `0.999`.

    Example:
    >>> schedule = NoiseSchedule("linear", timesteps=1000)
    >>> round(float(schedule.betas[0]), 6), round(float(schedule.betas[-1]), 6)
    (0.0001, 0.02)
    >>> bool(schedule.alpha_bars[-1] < 1e-4)
    True
    >>> cosine = NoiseSchedule("cosine", timesteps=1000)
    >>> bool(cosine.alpha_bars[499] > schedule.alpha_bars[499])  # slower destruction
    True
    """

    def __init__(
        self,
        kind: str = "cosine",
        timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        cosine_offset: float = 0.008,
        max_beta: float = 0.999,
    ) -> None:
        if kind not in SCHEDULES:
            raise ValueError(f"kind must be one of {SCHEDULES}, got {kind!r}.")
        if isinstance(timesteps, bool) or not isinstance(timesteps, (int, np.integer)):
            raise ValueError(f"timesteps must be an int >= 1, got {timesteps!r}.")
        if timesteps < 1:
            raise ValueError(f"timesteps must be an int >= 1, got {timesteps!r}.")
        if not 0 < beta_start <= beta_end < 1:
            raise ValueError(
                f"need 0 < beta_start <= beta_end < 1, got {beta_start!r} and {beta_end!r}."
            )
        if not 0 < max_beta < 1:
            raise ValueError(f"max_beta must be in (0, 1), got {max_beta!r}.")
        if cosine_offset < 0:
            raise ValueError(f"cosine_offset must be >= 0, got {cosine_offset!r}.")
        self.kind = kind
        self.timesteps = int(timesteps)
        self.beta_start = float(beta_start)
        self.beta_end = float(beta_end)
        self.cosine_offset = float(cosine_offset)
        self.max_beta = float(max_beta)

        # === Tables (float64; entry t - 1 is step t) ===
        steps = self.timesteps
        if kind == "linear":
            scale = 1000.0 / steps
            betas = np.linspace(scale * beta_start, scale * beta_end, steps, dtype=np.float64)
        else:
            betas = 1.0 - self.cosine_alpha_bar(np.arange(1, steps + 1)) / self.cosine_alpha_bar(
                np.arange(steps)
            )
        self.betas = np.clip(betas, 0.0, self.max_beta)
        self.alphas = 1.0 - self.betas
        self.alpha_bars = np.cumprod(self.alphas)
        self.alpha_bars_prev = np.concatenate([[1.0], self.alpha_bars[:-1]])
        # q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, beta_tilde_t I); beta_tilde_1 = 0.
        self.posterior_variance = (
            self.betas * (1.0 - self.alpha_bars_prev) / (1.0 - self.alpha_bars)
        )
        self.posterior_mean_coef_x0 = (
            self.betas * np.sqrt(self.alpha_bars_prev) / (1.0 - self.alpha_bars)
        )
        self.posterior_mean_coef_xt = (
            np.sqrt(self.alphas) * (1.0 - self.alpha_bars_prev) / (1.0 - self.alpha_bars)
        )

    def cosine_alpha_bar(self, t: Any) -> np.ndarray:
        """abar(t) = f(t) / f(0) of the cosine schedule, for any (real) t in [0, T]."""
        s = self.cosine_offset

        def f(u: Any) -> np.ndarray:
            return (
                np.cos((np.asarray(u, np.float64) / self.timesteps + s) / (1 + s) * math.pi / 2)
                ** 2
            )

        return f(t) / f(0.0)

    # === Looking up per-example values ===

    def _at(self, table: np.ndarray, t: Any, like: Any, offset: int = 1) -> Any:
        """`table[t - offset]` for each example, shaped to broadcast against `like`."""
        values = ops.take(
            ops.convert_to_tensor(table.astype("float32")), ops.cast(t, "int32") - offset
        )
        values = ops.cast(values, like.dtype)
        return ops.reshape(values, (-1,) + (1,) * (len(like.shape) - 1))

    def alpha_bar_at(self, t: Any, like: Any) -> Any:
        """abar_t per example for t in 0..T (abar_0 = 1), broadcastable against `like`."""
        return self._at(np.concatenate([[1.0], self.alpha_bars]), t, like, offset=0)

    def sample_timesteps(self, batch: int, seed: Any = None) -> Any:
        """t ~ U{1, ..., T} for each of `batch` examples, int32 `(batch,)`."""
        return keras.random.randint((batch,), 1, self.timesteps + 1, dtype="int32", seed=seed)

    def check_timesteps(self, t: Any) -> None:
        """Raises `ValueError` unless every entry of (NumPy) `t` is an integer in 1..T."""
        values = np.asarray(t)
        if values.dtype.kind not in "iu" and not (
            values.dtype.kind == "f"
            and np.all(np.isfinite(values))
            and np.all(values == np.round(values))
        ):
            raise ValueError(
                f"timesteps must be integers in 1..{self.timesteps}; got dtype {values.dtype}."
            )
        if values.size and (values.min() < 1 or values.max() > self.timesteps):
            raise ValueError(
                f"timesteps must be in 1..{self.timesteps} (T = {self.timesteps}); got values "
                f"from {values.min()} to {values.max()}."
            )

    # === The forward process ===

    def q_sample(self, x0: Any, t: Any, noise: Any) -> Any:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps: the closed form of q(x_t | x_0)."""
        x0, noise = ops.convert_to_tensor(x0), ops.convert_to_tensor(noise)
        abar = self._at(self.alpha_bars, t, x0)
        return ops.sqrt(abar) * x0 + ops.sqrt(1.0 - abar) * noise

    def q_step(self, x_prev: Any, t: Any, noise: Any) -> Any:
        """One step of the chain: x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps."""
        x_prev, noise = ops.convert_to_tensor(x_prev), ops.convert_to_tensor(noise)
        beta = self._at(self.betas, t, x_prev)
        return ops.sqrt(1.0 - beta) * x_prev + ops.sqrt(beta) * noise

    def q_posterior(self, x0: Any, x_t: Any, t: Any) -> tuple[Any, Any]:
        """Mean and variance of q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, beta_tilde_t I),
        c0 = beta_t sqrt(abar_{t-1}) / (1 - abar_t), ct = sqrt(alpha_t)(1 - abar_{t-1}) /
        (1 - abar_t), beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)."""
        x0, x_t = ops.convert_to_tensor(x0), ops.convert_to_tensor(x_t)
        mean = (
            self._at(self.posterior_mean_coef_x0, t, x0) * x0
            + self._at(self.posterior_mean_coef_xt, t, x_t) * x_t
        )
        return mean, self._at(self.posterior_variance, t, x_t) + ops.zeros_like(x_t)

    # === What the reverse process needs from a noise prediction ===

    def predict_x0(self, x_t: Any, t: Any, eps: Any) -> Any:
        """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), the closed form solved for x_0."""
        x_t, eps = ops.convert_to_tensor(x_t), ops.convert_to_tensor(eps)
        abar = self._at(self.alpha_bars, t, x_t)
        return (x_t - ops.sqrt(1.0 - abar) * eps) / ops.sqrt(abar)

    def reverse_mean(self, x_t: Any, t: Any, eps: Any) -> Any:
        """mu_theta = (x_t - beta_t / sqrt(1 - abar_t) * eps) / sqrt(alpha_t) (Algorithm 3)."""
        x_t, eps = ops.convert_to_tensor(x_t), ops.convert_to_tensor(eps)
        beta = self._at(self.betas, t, x_t)
        abar = self._at(self.alpha_bars, t, x_t)
        return (x_t - beta / ops.sqrt(1.0 - abar) * eps) / ops.sqrt(1.0 - beta)

    def reverse_variance(self, t: Any, like: Any, variance: str = "beta") -> Any:
        """sigma_t^2 of the reverse step: beta_t, or the posterior's beta_tilde_t (Ho et al.
        2020 found both to work; beta_tilde is optimal for a deterministic x_0)."""
        if variance not in VARIANCES:
            raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}.")
        table = self.betas if variance == "beta" else self.posterior_variance
        return self._at(table, t, like)

    def get_config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "timesteps": self.timesteps,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "cosine_offset": self.cosine_offset,
            "max_beta": self.max_beta,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> NoiseSchedule:
        return cls(**config)

    def __repr__(self) -> str:
        return f"NoiseSchedule(kind={self.kind!r}, timesteps={self.timesteps})"
