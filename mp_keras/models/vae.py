"""Variational autoencoder (notes, section 5.3)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import Phase, PhasedModel
from mp_keras.models._checks import check_count, check_no_targets, check_shape, check_values
from mp_keras.models.density import DensityModel, batched_mean

LIKELIHOODS = ("bernoulli", "gaussian")
EVALUATION_SAMPLES = 1000  # importance samples of the NLL that `mp-keras evaluate` reports
_ROWS_PER_CHUNK = 16384  # (examples x importance samples) decoded at once by log_prob


@keras.saving.register_keras_serializable(package="mp_keras")
class VAE(DensityModel, PhasedModel):
    """Variational autoencoder with a Gaussian encoder and a Bernoulli or Gaussian decoder.

    Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014. The encoder gives
    the mean and log-variance of q(z|x) = N(mu, diag(sigma^2)); a latent is drawn with
    the reparameterisation z = mu + sigma * eps, eps ~ N(0, I), so gradients flow
    through the draw; the decoder gives p(x|z). Training maximises the evidence lower
    bound, per example

        ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || N(0, I)),
        KL = 1/2 * sum_j (sigma_j^2 + mu_j^2 - 1 - log sigma_j^2)   (closed form),

    with a one-sample Monte Carlo estimate of the first term. The loss is
    `reconstruction + beta * kl` where `reconstruction = -log p(x|z)`; `reconstruction`,
    `kl` and `elbo` (nats per example) are logged.

    beta-VAE (notes, section 5.4; Higgins et al. 2017): `beta` > 1 weighs the KL term.
    The notes' constrained form, KL <= delta, has the Lagrangian
    E[log p(x|z)] - beta (KL - delta), whose beta * delta is a constant: with
    `kl_target=None` the loss is `reconstruction + beta * kl`, which has the same
    gradients. With `kl_target=delta` the loss is `reconstruction + beta * |kl - delta|`
    (the capacity form of Burgess et al. 2018), which holds the KL near delta from both
    sides instead of only penalising it.

    Likelihood (the density vocabulary of `DensityModel`): `log_prob(x, num_samples=K)`
    is the importance-weighted bound of Burda et al. 2016,
    log (1/K) sum_k p(x, z_k) / q(z_k|x) with z_k ~ q(z|x), a lower bound on log p(x)
    that tightens as K grows (K = 1 is the ELBO); `nll(x, num_samples=K)` and
    `bits_per_dim` average it, and `mp-keras evaluate` reports the NLL with K = 1000
    next to the ELBO.

    Args:
        input_shape: tuple of ints. Shape of one example, e.g. `(8, 8, 1)`.
        latent_dim: int. Size of z. Defaults to `2`.
        hidden_units: tuple of ints. Widths of the encoder's hidden layers; the decoder
            uses them in reverse. Defaults to `(256, 128)`.
        likelihood: str. `"bernoulli"` (binary data; `decode` gives probabilities) or
            `"gaussian"` (real data; `decode` gives the mean). Defaults to
            `"bernoulli"`.
        observation_std: float. Standard deviation of the Gaussian decoder. Defaults
            to `0.1`.
        beta: float. Weight of the KL term (1 gives the ELBO). Defaults to `1.0`.
        kl_target: float or None. The KL target delta of the capacity form
            `beta * |kl - delta|`; `None` uses `beta * kl`. Defaults to `None`.
        seed: int or None. Seed of the model's random draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> vae = VAE(input_shape=(8, 8, 1), latent_dim=2, hidden_units=(32,), seed=0)
    >>> vae.compile(optimizer="adam")
    >>> x = (np.random.default_rng(0).random((64, 8, 8, 1)) > 0.5).astype("float32")
    >>> history = vae.fit(x, epochs=1, batch_size=32, verbose=0)
    >>> sorted(history.history)
    ['elbo', 'kl', 'loss', 'reconstruction']
    >>> tuple(vae.sample(3, seed=1).shape)
    (3, 8, 8, 1)
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (8, 8, 1),
        latent_dim: int = 2,
        hidden_units: Sequence[int] = (256, 128),
        likelihood: str = "bernoulli",
        observation_std: float = 0.1,
        beta: float = 1.0,
        kl_target: float | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}.")
        if observation_std <= 0:
            raise ValueError(f"observation_std must be > 0, got {observation_std!r}.")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta!r}.")
        if kl_target is not None and kl_target < 0:
            raise ValueError(f"kl_target must be >= 0 nats or None, got {kl_target!r}.")
        super().__init__(**kwargs)

        # === Config ===
        self.data_shape = tuple(int(d) for d in input_shape)
        self.latent_dim = int(latent_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.likelihood = likelihood
        self.observation_std = float(observation_std)
        self.beta = float(beta)
        self.kl_target = None if kl_target is None else float(kl_target)
        self.seed = seed

        # === Layers ===
        self.encoder = keras.Sequential(
            [keras.Input(self.data_shape), keras.layers.Flatten()]
            + [keras.layers.Dense(u, activation="relu") for u in self.hidden_units]
            + [keras.layers.Dense(2 * self.latent_dim)],  # [mu, log sigma^2]
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [keras.Input((self.latent_dim,))]
            + [keras.layers.Dense(u, activation="relu") for u in reversed(self.hidden_units)]
            + [
                keras.layers.Dense(math.prod(self.data_shape)),  # logits or means
                keras.layers.Reshape(self.data_shape),
            ],
            name="decoder",
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.track("reconstruction", "kl", "elbo")
        self.built = True

    # === Probabilistic model ===

    def encode(self, x: Any, training: bool = False) -> tuple[Any, Any]:
        """Returns the mean and log-variance of q(z|x), each `(batch, latent_dim)`."""
        self._check(x)
        stats = self.encoder(x, training=training)
        mean, log_var = ops.split(stats, 2, axis=-1)
        return mean, log_var

    def decode(self, z: Any) -> Any:
        """Mean of p(x|z): pixel probabilities (Bernoulli) or means (Gaussian)."""
        check_shape(type(self).__name__, z, (self.latent_dim,), what="latents")
        out = self.decoder(z)
        return ops.sigmoid(out) if self.likelihood == "bernoulli" else out

    def reparameterize(self, mean: Any, log_var: Any, seed: Any = None) -> Any:
        """z = mu + sigma * eps with eps ~ N(0, I), differentiable in mu and sigma."""
        mean, log_var = ops.convert_to_tensor(mean), ops.convert_to_tensor(log_var)
        eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self._seed(seed))
        return mean + ops.exp(0.5 * log_var) * eps

    def sample(self, num: int, seed: int | None = None) -> Any:
        """Decoder means for `num` latents drawn from the prior N(0, I)."""
        num = check_count(type(self).__name__, "num", num)
        z = keras.random.normal((num, self.latent_dim), seed=self._seed(seed))
        return self.decode(z)

    def _seed(self, seed: int | None) -> Any:
        return self.seed_generator if seed is None else seed

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Reconstruction of `inputs` through the posterior mean."""
        mean, _ = self.encode(inputs, training=training)
        return self.decode(mean)

    def negative_log_likelihood(self, x: Any, decoder_output: Any) -> Any:
        """-log p(x|z) per example, summed over all dimensions of x."""
        x = ops.cast(x, decoder_output.dtype)
        if self.likelihood == "bernoulli":
            # -[x log s(l) + (1-x) log(1-s(l))] = softplus(l) - x*l, stable for any logit l.
            per_dim = ops.softplus(decoder_output) - x * decoder_output
        else:
            var = self.observation_std**2
            per_dim = 0.5 * (ops.square(x - decoder_output) / var + math.log(2 * math.pi * var))
        return ops.sum(ops.reshape(per_dim, (ops.shape(per_dim)[0], -1)), axis=-1)

    @staticmethod
    def kl_divergence(mean: Any, log_var: Any) -> Any:
        """KL(N(mean, exp(log_var)) || N(0, I)) per example, in closed form."""
        return 0.5 * ops.sum(ops.exp(log_var) + ops.square(mean) - 1.0 - log_var, axis=-1)

    # === Likelihood ===

    def log_prob(self, x: Any, num_samples: int = 1, seed: int | None = None) -> Any:
        """Importance-weighted lower bound on log p(x) with `num_samples` draws, `(batch,)`.

        log w_k = log p(x|z_k) + log N(z_k; 0, I) - log q(z_k|x), z_k ~ q(z|x), and the
        bound is logsumexp_k(log w_k) - log K (Burda et al. 2016); K = 1 is a one-sample
        ELBO. Draws are decoded in chunks, so K = 1000 fits in memory.
        """
        num_samples = check_count(type(self).__name__, "num_samples", num_samples)
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        mean, log_var = self.encode(x)
        batch = ops.shape(x)[0]
        chunk = max(1, min(num_samples, _ROWS_PER_CHUNK // max(int(batch), 1)))
        # One generator for all chunks: an integer seed reused per chunk would repeat draws.
        seed = self.seed_generator if seed is None else keras.random.SeedGenerator(seed)
        parts = []
        for start in range(0, num_samples, chunk):
            k = min(chunk, num_samples - start)
            eps = keras.random.normal((k, batch, self.latent_dim), dtype=mean.dtype, seed=seed)
            z = mean[None] + ops.exp(0.5 * log_var)[None] * eps  # (k, batch, latent)
            flat_z = ops.reshape(z, (k * batch, self.latent_dim))
            repeated = ops.reshape(
                ops.tile(x[None], (k,) + (1,) * len(self.data_shape) + (1,)),
                (k * batch, *self.data_shape),
            )
            log_px = -self.negative_log_likelihood(repeated, self.decoder(flat_z))
            log_pz = -0.5 * ops.sum(ops.square(z) + math.log(2 * math.pi), axis=-1)
            log_qz = -0.5 * ops.sum(
                ops.square(eps) + log_var[None] + math.log(2 * math.pi), axis=-1
            )
            log_w = ops.reshape(log_px, (k, batch)) + log_pz - log_qz  # (k, batch)
            parts.append(ops.logsumexp(log_w, axis=0))
        return ops.logsumexp(ops.stack(parts), axis=0) - math.log(num_samples)

    def elbo(self, x: Any) -> Any:
        """The ELBO per example: a one-sample E_q[log p(x|z)] minus the closed-form KL."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        mean, log_var = self.encode(x)
        z = self.reparameterize(mean, log_var)
        return -self.negative_log_likelihood(x, self.decoder(z)) - self.kl_divergence(mean, log_var)

    def density_metrics(
        self, x: Any, y: Any = None, batch_size: int = 256, num_samples: int = EVALUATION_SAMPLES
    ) -> dict[str, float]:
        """`nll` (importance-weighted, `num_samples` draws), `bits_per_dim` and `elbo`."""
        nll = self.nll(x, batch_size, num_samples=num_samples)
        elbo = batched_mean(self.elbo, x, batch_size)
        return {"nll": nll, "bits_per_dim": nll / (self.num_dims * math.log(2)), "elbo": elbo}

    # === Training ===

    def phases(self) -> list[Phase]:
        return [Phase("vae", self.trainable_variables, self._loss)]

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        mean, log_var = self.encode(x, training=training)
        z = self.reparameterize(mean, log_var)
        reconstruction = self.negative_log_likelihood(x, self.decoder(z, training=training))
        kl = self.kl_divergence(mean, log_var)
        penalty = kl if self.kl_target is None else ops.abs(kl - self.kl_target)
        loss = ops.mean(reconstruction + self.beta * penalty)
        logs = {
            "reconstruction": ops.mean(reconstruction),
            "kl": ops.mean(kl),
            "elbo": -ops.mean(reconstruction + kl),
        }
        return loss, logs

    # === Checks and export ===

    def _check(self, x: Any) -> None:
        check_shape(type(self).__name__, x, self.data_shape)

    def validate_data(self, x: np.ndarray) -> None:
        self._check(x)
        check_values(type(self).__name__, x, binary=self.likelihood == "bernoulli")

    def validate_targets(self, y: np.ndarray | None) -> None:
        check_no_targets(type(self).__name__, y)

    def export_endpoints(self) -> dict[str, Any]:
        spec = keras.InputSpec(shape=(None, self.latent_dim), dtype="float32")
        return {"decode": (self.decode, [spec])}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "input_shape": list(self.data_shape),
                "latent_dim": self.latent_dim,
                "hidden_units": list(self.hidden_units),
                "likelihood": self.likelihood,
                "observation_std": self.observation_std,
                "beta": self.beta,
                "kl_target": self.kl_target,
                "seed": self.seed,
            }
        )
        return config
