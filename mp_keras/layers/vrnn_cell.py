"""One time step of a variational RNN (notes, 6.6): the networks of `VRNN` and `CVRNN`.

`VRNNCell` holds the five networks of Chung et al. (2015) and the recurrent cell, and
computes one step t in either direction:

* inference (training, likelihood): from x_t and h_{t-1}, the prior and the posterior of
  z_t, a draw z_t from the posterior, p(x_t | z_t, h_{t-1}), the KL term, and h_t;
* generation: z_t from the prior, x_t from the decoder, and h_t.

The recurrent state travels as one tensor, `(batch, state_size)`: h for a GRU, h then c
for an LSTM, so that a loop over time, an exported step and an application all pass a
single array. `gaussian_kl` and `gaussian_log_density` are the closed forms the model's
ELBO and importance weights are made of.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

CELLS = ("lstm", "gru")
LIKELIHOODS = ("gaussian", "bernoulli")
_LATENT_MIN_STD = 1e-4  # keeps the latent log-variances finite


def gaussian_kl(mu_q: Any, logvar_q: Any, mu_p: Any, logvar_p: Any) -> Any:
    """KL(N(mu_q, diag(e^logvar_q)) || N(mu_p, diag(e^logvar_p))), summed over the last axis.

    Closed form per dimension: 1/2 [logvar_p - logvar_q + (e^logvar_q + (mu_q - mu_p)^2)
    / e^logvar_p - 1]; with mu_p = 0 and logvar_p = 0 it is the VAE's KL to N(0, I).

    Example:
    >>> import numpy as np
    >>> kl = gaussian_kl(np.ones((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)))
    >>> keras.ops.convert_to_numpy(kl).tolist()  # two unit shifts of unit Gaussians: 2 * 1/2
    [1.0]
    """
    mu_q, logvar_q = ops.convert_to_tensor(mu_q), ops.convert_to_tensor(logvar_q)
    mu_p, logvar_p = ops.convert_to_tensor(mu_p), ops.convert_to_tensor(logvar_p)
    ratio = (ops.exp(logvar_q) + ops.square(mu_q - mu_p)) * ops.exp(-logvar_p)
    return 0.5 * ops.sum(logvar_p - logvar_q + ratio - 1.0, axis=-1)


def gaussian_log_density(x: Any, mean: Any, logvar: Any) -> Any:
    """log N(x; mean, diag(e^logvar)), summed over the last axis."""
    x, mean, logvar = (ops.convert_to_tensor(v) for v in (x, mean, logvar))
    return -0.5 * ops.sum(
        math.log(2 * math.pi) + logvar + ops.square(x - mean) * ops.exp(-logvar), axis=-1
    )


def _mlp(name: str, input_dim: int, hidden_units: Sequence[int], out: int | None = None) -> Any:
    """Dense ReLU layers (plus a linear head of `out` units), built for `input_dim` inputs."""
    layers = [keras.Input((input_dim,))]
    layers += [keras.layers.Dense(u, activation="relu") for u in hidden_units]
    if out is not None:
        layers.append(keras.layers.Dense(out))
    return keras.Sequential(layers, name=name)


@keras.saving.register_keras_serializable(package="mp_keras")
class VRNNCell(keras.layers.Layer):
    """The networks of one VRNN step: phi_x, phi_z, prior, encoder, decoder and f.

    Chung et al., "A Recurrent Latent Variable Model for Sequential Data", NeurIPS 2015,
    equations (5)-(9); notes, 6.6. With e the label embedding of a conditional model
    (empty otherwise), every network reads the previous hidden state h = h_{t-1}:

        prior     N(mu_0, sigma_0^2) = phi_prior([h, e])
        encoder   N(mu_z, sigma_z^2) = phi_enc([phi_x(x_t), h, e])
        decoder   p(x_t | z_t, h) = phi_dec([phi_z(z_t), h, e])  (Gaussian or Bernoulli)
        recurrence h_t = f([phi_x(x_t), phi_z(z_t), e], h_{t-1})  (LSTM or GRU)

    Standard deviations are softplus outputs (plus a floor: `min_std` for the data, 1e-4
    for z), which keeps them positive and their logarithm finite. The Gaussian decoder
    learns its diagonal sigma per step, as in the paper.

    Args:
        features: int. Features of one step x_t.
        latent_dim: int. Size of z_t. Defaults to `16`.
        units: int. Size of the hidden state h. Defaults to `64`.
        hidden_units: tuple of ints. Hidden ReLU layers of every network (phi_x and phi_z
            output the last one). Defaults to `(64,)`.
        cell: str. `"lstm"` (`keras.layers.LSTMCell`) or `"gru"` (`keras.layers.GRUCell`).
            Defaults to `"lstm"`.
        likelihood: str. `"gaussian"` (real data) or `"bernoulli"` (binary data).
            Defaults to `"gaussian"`.
        min_std: float. Smallest standard deviation of the Gaussian decoder. Defaults to
            `0.01`.
        num_classes: int or None. Classes of the label a conditional model reads.
            Defaults to `None`.
        embedding_dim: int. Size of the label embedding e. Defaults to `16`.

    Example:
    >>> lstm = VRNNCell(features=2, latent_dim=3, units=4, hidden_units=(8,))
    >>> lstm.state_size, VRNNCell(2, units=4, cell="gru").state_size  # [h, c] or h
    (8, 4)
    >>> [net.name for net in (lstm.phi_x, lstm.phi_z, lstm.prior_net, lstm.encoder, lstm.decoder)]
    ['phi_x', 'phi_z', 'prior', 'encoder', 'decoder']
    """

    def __init__(
        self,
        features: int,
        latent_dim: int = 16,
        units: int = 64,
        hidden_units: Sequence[int] = (64,),
        cell: str = "lstm",
        likelihood: str = "gaussian",
        min_std: float = 0.01,
        num_classes: int | None = None,
        embedding_dim: int = 16,
        **kwargs: Any,
    ) -> None:
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}.")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
        hidden_units = (hidden_units,) if isinstance(hidden_units, int) else tuple(hidden_units)
        sizes = [("features", features), ("latent_dim", latent_dim), ("units", units)]
        sizes += [("hidden_units", u) for u in hidden_units]
        if num_classes is not None:
            sizes += [("num_classes", num_classes), ("embedding_dim", embedding_dim)]
        for name, value in sizes:
            if isinstance(value, bool) or not hasattr(value, "__index__") or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if not hidden_units:
            raise ValueError("hidden_units must name at least one layer width, got ().")
        if min_std <= 0:
            raise ValueError(f"min_std must be > 0, got {min_std!r}.")
        super().__init__(**kwargs)

        # === Config ===
        self.features = int(features)
        self.latent_dim = int(latent_dim)
        self.units = int(units)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.cell = cell
        self.likelihood = likelihood
        self.min_std = float(min_std)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.embedding_dim = int(embedding_dim)
        self.state_size = (2 if cell == "lstm" else 1) * self.units

        # === Layers ===
        hidden, latent = self.hidden_units, self.latent_dim
        label = 0 if self.num_classes is None else self.embedding_dim
        width = self.hidden_units[-1]
        out = 2 * self.features if likelihood == "gaussian" else self.features
        self.phi_x = _mlp("phi_x", self.features, hidden)
        self.phi_z = _mlp("phi_z", latent, hidden)
        self.prior_net = _mlp("prior", self.units + label, hidden, 2 * latent)
        self.encoder = _mlp("encoder", width + self.units + label, hidden, 2 * latent)
        self.decoder = _mlp("decoder", width + self.units + label, hidden, out)
        recurrent = keras.layers.LSTMCell if cell == "lstm" else keras.layers.GRUCell
        self.recurrent = recurrent(self.units, name="recurrence")
        self.recurrent.build((None, 2 * width + label))
        self.label_embedding = None
        if self.num_classes is not None:
            self.label_embedding = keras.layers.Embedding(
                self.num_classes, self.embedding_dim, name="label_embedding"
            )
            self.label_embedding.build((None,))
        self.built = True

    # === Pieces ===

    def embed(self, labels: Any) -> list[Any]:
        """The label embedding as a list to concatenate: `[(batch, embedding_dim)]` or `[]`."""
        if self.label_embedding is None:
            return []
        return [self.label_embedding(ops.reshape(ops.cast(labels, "int32"), (-1,)))]

    def _hidden(self, state: Any) -> Any:
        return state[:, : self.units]  # h; an LSTM's c follows it

    def _gaussian(self, stats: Any, floor: float) -> tuple[Any, Any]:
        mean, raw = ops.split(stats, 2, axis=-1)
        std = ops.softplus(raw) + floor
        return mean, 2.0 * ops.log(std)

    def prior(self, state: Any, label: list[Any]) -> tuple[Any, Any]:
        """Mean and log-variance of p(z_t | h_{t-1}), each `(batch, latent_dim)`."""
        h = self._hidden(state)
        return self._gaussian(self.prior_net(ops.concatenate([h, *label], -1)), _LATENT_MIN_STD)

    def posterior(self, features_x: Any, state: Any, label: list[Any]) -> tuple[Any, Any]:
        """Mean and log-variance of q(z_t | x_t, h_{t-1}), from phi_x(x_t)."""
        inputs = ops.concatenate([features_x, self._hidden(state), *label], -1)
        return self._gaussian(self.encoder(inputs), _LATENT_MIN_STD)

    def observation(self, z: Any, state: Any, label: list[Any]) -> tuple[Any, Any, Any]:
        """phi_z(z_t) and p(x_t | z_t, h_{t-1}): (mean, log-variance) or (logits, None)."""
        features_z = self.phi_z(z)
        out = self.decoder(ops.concatenate([features_z, self._hidden(state), *label], -1))
        if self.likelihood == "bernoulli":
            return features_z, out, None
        mean, logvar = self._gaussian(out, self.min_std)
        return features_z, mean, logvar

    def log_likelihood(self, x: Any, location: Any, logvar: Any) -> Any:
        """log p(x_t | z_t, h_{t-1}) per example, `(batch,)`."""
        if self.likelihood == "bernoulli":  # x l - softplus(l): stable for any logit l
            return ops.sum(x * location - ops.softplus(location), axis=-1)
        return gaussian_log_density(x, location, logvar)

    def recur(self, features_x: Any, features_z: Any, state: Any, label: list[Any]) -> Any:
        """h_t (and c_t) from phi_x(x_t), phi_z(z_t), the label and the previous state."""
        inputs = ops.concatenate([features_x, features_z, *label], -1)
        states = ops.split(state, 2, axis=-1) if self.cell == "lstm" else [state]
        _, new = self.recurrent(inputs, list(states))
        return ops.concatenate(list(new), axis=-1) if self.cell == "lstm" else new[0]

    # === Steps ===

    def infer(self, x: Any, noise: Any, state: Any, label: list[Any]) -> dict[str, Any]:
        """One step of inference: z_t = mu_z + sigma_z * noise, then h_t.

        Returns the new `state`, `log_px` = log p(x_t | z_t, h_{t-1}), the closed-form
        `kl` = KL(q || prior), `log_ratio` = log p(z_t | h_{t-1}) - log q(z_t | x_t, h_{t-1})
        (the importance weight's latent part) and the decoder `mean`, all per example.
        `noise = 0` follows the posterior means (a deterministic reconstruction).
        """
        features_x = self.phi_x(x)
        mu_p, logvar_p = self.prior(state, label)
        mu_q, logvar_q = self.posterior(features_x, state, label)
        z = mu_q + ops.exp(0.5 * logvar_q) * noise
        features_z, location, logvar = self.observation(z, state, label)
        return {
            "state": self.recur(features_x, features_z, state, label),
            "log_px": self.log_likelihood(x, location, logvar),
            "kl": gaussian_kl(mu_q, logvar_q, mu_p, logvar_p),
            "log_ratio": gaussian_log_density(z, mu_p, logvar_p)
            - gaussian_log_density(z, mu_q, logvar_q),
            "mean": location if logvar is not None else ops.sigmoid(location),
        }

    def generate(
        self,
        state: Any,
        z_noise: Any,
        x_noise: Any,
        labels: Any = None,
        use_mean: bool = False,
        recurrence_latent: str = "prior",
    ) -> dict[str, Any]:
        """One step of generation from the prior, the noise given as inputs.

        z_t = mu_0 + sigma_0 * z_noise; x_t = mean + sigma * x_noise (Gaussian, standard
        normal `x_noise`) or 1[x_noise < p] (Bernoulli, uniform `x_noise`), or the mean
        itself with `use_mean`. The state is then updated with that z_t
        (`recurrence_latent="prior"`) or with the posterior mean of z_t given the x_t just
        generated (`"posterior"`, the notes' C-VRNN). Returns `x`, the decoder `mean`
        and the new `state`.
        """
        state = ops.convert_to_tensor(state, dtype=self.compute_dtype)
        z_noise = ops.convert_to_tensor(z_noise, dtype=state.dtype)
        x_noise = ops.convert_to_tensor(x_noise, dtype=state.dtype)
        label = self.embed(labels) if labels is not None else []
        if self.label_embedding is not None and not label:
            raise ValueError("VRNNCell with num_classes needs labels to generate.")
        mu_p, logvar_p = self.prior(state, label)
        z = mu_p + ops.exp(0.5 * logvar_p) * z_noise
        features_z, location, logvar = self.observation(z, state, label)
        if logvar is None:
            mean = ops.sigmoid(location)
            x = mean if use_mean else ops.cast(x_noise < mean, mean.dtype)
        else:
            mean = location
            x = mean if use_mean else mean + ops.exp(0.5 * logvar) * x_noise
        features_x = self.phi_x(x)
        if recurrence_latent == "posterior":
            mu_q, _ = self.posterior(features_x, state, label)
            features_z = self.phi_z(mu_q)
        return {"x": x, "mean": mean, "state": self.recur(features_x, features_z, state, label)}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "features": self.features,
                "latent_dim": self.latent_dim,
                "units": self.units,
                "hidden_units": list(self.hidden_units),
                "cell": self.cell,
                "likelihood": self.likelihood,
                "min_std": self.min_std,
                "num_classes": self.num_classes,
                "embedding_dim": self.embedding_dim,
            }
        )
        return config
