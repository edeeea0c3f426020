"""The variational bound of a diffusion model (notes, section 9.3): the negative ELBO as
prior-matching, denoising-matching and reconstruction terms, in nats per example."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from mp_keras.models._checks import check_count, check_shape

_MIN_PROB = 1e-12  # floor of a bin's probability (Ho et al. 2020)


class VariationalBound:
    """Mixin of `DDPM`: `variational_bound(x)` and the pieces it is made of.

    Uses the model's `schedule`, `variance`, `network_noise`, `encode_data`,
    `process_shape`, `data_range`, `num_levels`, the condition helpers and its compiled
    cache.
    """

    def variational_bound(
        self,
        x: Any,
        num_timesteps: int | None = None,
        seed: int | None = None,
        labels: Any = None,
        noise: Any = None,
    ) -> dict[str, Any]:
        """The terms of the negative ELBO, nats per example, each `(batch,)`.

        * `prior`: KL(q(x_T | x_0) || N(0, I)), closed form;
        * `denoising`: sum over t = 2..T of KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)),
          Gaussians with sigma_t^2 of `variance`, x_t drawn once per t; with
          `num_timesteps=k` < T - 1, (T - 1) / k times the sum over k steps drawn
          uniformly from 2..T per example (an unbiased estimate);
        * `reconstruction`: -log p(x_0 | x_1), the discretized Gaussian of Ho et al. 2020
          over `num_levels` bins of [-1, 1] (edge bins open), or a Gaussian density
          (in the data's units) without levels; sigma_1^2 is beta_1 (`"beta"`) or
          beta_tilde_2 (`"posterior"`, whose beta_tilde_1 is 0);
        * `total`: their sum, an upper bound on -log p(x).

        `noise` (optional, `(T, batch, *shape)`, only with all steps) fixes the eps of
        each x_t: row t - 1 draws x_t (row 0 the x_1 of the reconstruction term).
        """
        owner = type(self).__name__
        steps = self.schedule.timesteps
        x0 = self.encode_data(x)
        check_shape(owner, x0, self.process_shape)
        batch = int(x0.shape[0])
        condition = self._condition(labels, batch, 0.0)
        if condition is None and self.is_conditional:
            condition = self.null_condition(batch)
        generator = self.seed_generator if seed is None else keras.random.SeedGenerator(seed)
        if noise is not None:
            if num_timesteps is not None:
                raise ValueError(f"{owner}: noise fixes every step; pass num_timesteps=None.")
            noise = ops.convert_to_tensor(noise, dtype=x0.dtype)
            if tuple(noise.shape) != (steps, *x0.shape):
                raise ValueError(
                    f"{owner}: noise must have shape {(steps, *x0.shape)}; "
                    f"got {tuple(noise.shape)}."
                )

        def draw(index: int) -> Any:
            if noise is not None:
                return noise[index]
            return keras.random.normal(ops.shape(x0), dtype=x0.dtype, seed=generator)

        # Prior matching: q(x_T | x_0) = N(sqrt(abar_T) x_0, (1 - abar_T) I).
        abar_T = float(self.schedule.alpha_bars[-1])
        prior = 0.5 * _flat_sum(
            abar_T * ops.square(x0) + (1.0 - abar_T) - 1.0 - math.log(1.0 - abar_T)
        )

        # Denoising matching, one compiled term for every t.
        term = self._compiled(
            ("bound_term", batch, condition is None), self._kl_term, self.sampling_variables()
        )
        cond_args = () if condition is None else (condition,)
        denoising = ops.zeros((batch,), dtype=x0.dtype)
        if num_timesteps is None or num_timesteps >= steps - 1:
            for t in range(2, steps + 1):
                t_vec = ops.full((batch,), t, dtype="int32")
                denoising = denoising + term(x0, t_vec, draw(t - 1), *cond_args)
        else:
            k = check_count(owner, "num_timesteps", num_timesteps)
            for _ in range(k):
                t_vec = keras.random.randint((batch,), 2, steps + 1, dtype="int32", seed=generator)
                denoising = denoising + term(x0, t_vec, draw(0), *cond_args)
            denoising = denoising * ((steps - 1) / k)

        # Reconstruction: -log p(x_0 | x_1).
        x_1 = self.schedule.q_sample(x0, ops.ones((batch,), "int32"), draw(0))
        eps = self.network_noise(x_1, ops.ones((batch,), "int32"), condition)
        mean = self.schedule.reverse_mean(x_1, ops.ones((batch,), "int32"), eps)
        reconstruction = -self._decoder_log_prob(x0, mean)
        return {
            "prior": prior,
            "denoising": denoising,
            "reconstruction": reconstruction,
            "total": prior + denoising + reconstruction,
        }

    def _kl_term(self, x0: Any, t: Any, eps: Any, condition: Any = None) -> Any:
        """KL(q(x_{t-1} | x_t, x_0) || N(mu_theta(x_t, t), sigma_t^2 I)) per example."""
        x_t = self.schedule.q_sample(x0, t, eps)
        mean_q, var_q = self.schedule.q_posterior(x0, x_t, t)
        mean_p = self.schedule.reverse_mean(x_t, t, self.network_noise(x_t, t, condition))
        var_p = self.schedule.reverse_variance(t, x_t, self.variance)
        kl = 0.5 * (
            ops.log(var_p / var_q) + var_q / var_p + ops.square(mean_q - mean_p) / var_p - 1.0
        )
        return _flat_sum(kl)

    def decoder_variance(self) -> float:
        """sigma_1^2 of p(x_0 | x_1): beta_1, or beta_tilde_2 for `variance="posterior"`."""
        if self.variance == "beta" or self.schedule.timesteps < 2:
            return float(self.schedule.betas[0])
        return float(self.schedule.posterior_variance[1])

    def _decoder_log_prob(self, x0: Any, mean: Any) -> Any:
        """log p(x_0 | x_1) per example, x_0 and the mean in the process space."""
        std = math.sqrt(self.decoder_variance())
        if self.data_range is None or self.num_levels is None:
            density = -0.5 * (ops.square((x0 - mean) / std) + math.log(2 * math.pi * std**2))
            log_p = _flat_sum(density)
            if self.data_range is not None:  # density per unit of the data, not of [-1, 1]
                log_p = log_p - self.num_dims * math.log(
                    (self.data_range[1] - self.data_range[0]) / 2
                )
            return log_p
        half_bin = 1.0 / (self.num_levels - 1)  # bins of width 2 / (levels - 1) on [-1, 1]
        cdf_plus = _normal_cdf((x0 + half_bin - mean) / std)
        cdf_minus = _normal_cdf((x0 - half_bin - mean) / std)
        log_cdf_plus = ops.log(ops.maximum(cdf_plus, _MIN_PROB))
        log_one_minus = ops.log(ops.maximum(1.0 - cdf_minus, _MIN_PROB))
        log_mid = ops.log(ops.maximum(cdf_plus - cdf_minus, _MIN_PROB))
        edge = 1.0 - 0.5 * half_bin
        log_p = ops.where(x0 < -edge, log_cdf_plus, ops.where(x0 > edge, log_one_minus, log_mid))
        return _flat_sum(log_p)


def _flat_sum(x: Any) -> Any:
    return ops.sum(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)


def _normal_cdf(z: Any) -> Any:
    return 0.5 * (1.0 + ops.erf(z / math.sqrt(2.0)))
