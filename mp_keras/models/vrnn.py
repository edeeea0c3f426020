"""Variational RNN: a VAE at every step of an RNN (notes, 6.6); `CVRNN` is in cvrnn.py."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import CompiledCache, Phase, PhasedModel
from mp_keras.layers.vrnn_cell import VRNNCell, gaussian_kl, gaussian_log_density
from mp_keras.models._checks import (
    check_count,
    check_no_targets,
    check_shape,
    check_values,
)
from mp_keras.models._vrnn_generation import VRNNGeneration
from mp_keras.models.density import DensityModel, batched_mean

__all__ = ["VRNN", "gaussian_kl", "gaussian_log_density"]

RECURRENCE_LATENTS = ("prior", "posterior")
EVALUATION_SAMPLES = 100  # importance samples of the NLL that `density_metrics` reports
_ROWS_PER_CHUNK = 8192  # (sequences x importance samples) unrolled at once by log_prob


@keras.saving.register_keras_serializable(package="mp_keras")
class VRNN(VRNNGeneration, DensityModel, PhasedModel):
    """Variational RNN: a latent z_t with a learned prior at every step of an RNN.

    Chung et al., "A Recurrent Latent Variable Model for Sequential Data", NeurIPS 2015;
    notes, 6.6. The prior of z_t is no longer N(0, I) but N(mu_0,t, sigma_0,t^2) predicted
    from h_{t-1}; the encoder q(z_t | x_t, h_{t-1}) and the decoder p(x_t | z_t, h_{t-1})
    read the hidden state too, and h_t = f(phi_x(x_t), phi_z(z_t), h_{t-1}) carries the
    past (the networks are `mp_keras.layers.VRNNCell`). Training maximises the ELBO of
    a whole sequence,

        ELBO(x) = sum_t E_q[log p(x_t | z_t, h_{t-1})
                           - KL(q(z_t | x_t, h_{t-1}) || p(z_t | h_{t-1}))],

    with one reparameterised draw z_t = mu_z + sigma_z * eps per step and the KL between
    the two diagonal Gaussians in closed form (`gaussian_kl`). The loss is the negative
    ELBO in nats per sequence; `reconstruction`, `kl` and `elbo` are logged. The time
    loop is `keras.ops.scan`, so it compiles on every backend inside `fit`.

    Likelihood: `log_prob(x, num_samples=K)` is the importance-weighted bound
    log (1/K) sum_k prod_t p(x_t | z_t) p(z_t) / q(z_t), z ~ q (Burda et al. 2016; one
    draw gives a Monte Carlo ELBO), so `nll` and `bits_per_dim` compare the VRNN with the
    other density models. `sample(num)` runs the generative model: z_t from the prior,
    x_t from the decoder, then h_t, with one compiled step reused for every t.

    `call(x)` reconstructs x through the posterior means (compiled for inference, like
    `log_prob`, `elbo` and `sample`: once per shape, the weights passed in). Export:
    `generate_step`
    (state, noise) -> (x_t, mean, state), a single step with the state as an input and an
    output, so that an application runs the loop (start from a zero state).

    Args:
        sequence_length: int. Steps T of a training sequence.
        features: int. Features of one step x_t (2 for the `(x, y)` of `digit_strokes`).
        latent_dim: int. Size of z_t. Defaults to `16`.
        units: int. Size of the hidden state h_t. Defaults to `64`.
        hidden_units: tuple of ints. Hidden ReLU layers of every network. Defaults to
            `(64,)`.
        cell: str. Recurrence f: `"lstm"` or `"gru"`. Defaults to `"lstm"`.
        likelihood: str. `"gaussian"` (real data, learned diagonal sigma) or
            `"bernoulli"` (binary data). Defaults to `"gaussian"`.
        min_std: float. Smallest sigma of the Gaussian decoder. Defaults to `0.01`.
        recurrence_latent: str. What updates h_t while sampling: the prior draw z_t
            (`"prior"`, Chung et al.) or the posterior mean of z_t given the generated x_t
            (`"posterior"`, the notes' C-VRNN). Defaults to `"prior"`.
        seed: int or None. Seed of the model's random draws. Defaults to `None`.

    Example:
    >>> import numpy as np  # train with model.compile(); model.fit(x)
    >>> model = VRNN(sequence_length=4, features=2, latent_dim=2, units=8, hidden_units=(8,))
    >>> x = np.random.default_rng(0).normal(size=(5, 4, 2)).astype("float32")
    >>> tuple(model.log_prob(x, num_samples=4).shape), tuple(model.sample(3, seed=1).shape)
    ((5,), (3, 4, 2))
    """

    num_classes: int | None = None

    def __init__(
        self,
        sequence_length: int,
        features: int,
        latent_dim: int = 16,
        units: int = 64,
        hidden_units: Sequence[int] = (64,),
        cell: str = "lstm",
        likelihood: str = "gaussian",
        min_std: float = 0.01,
        recurrence_latent: str = "prior",
        seed: int | None = None,
        _labels: tuple[int, int] | None = None,  # (num_classes, embedding_dim), from CVRNN
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        if recurrence_latent not in RECURRENCE_LATENTS:
            raise ValueError(
                f"recurrence_latent must be one of {RECURRENCE_LATENTS}, got {recurrence_latent!r}."
            )
        super().__init__(**kwargs)

        # === Config ===
        self.sequence_length = check_count(owner, "sequence_length", sequence_length)
        self.features = check_count(owner, "features", features)
        self.data_shape = (self.sequence_length, self.features)
        self.recurrence_latent = recurrence_latent
        self.seed = seed
        num_classes, embedding_dim = (None, 16) if _labels is None else _labels

        # === Layers ===
        self.vrnn_cell = VRNNCell(
            self.features,
            latent_dim=latent_dim,
            units=units,
            hidden_units=hidden_units,
            cell=cell,
            likelihood=likelihood,
            min_std=min_std,
            num_classes=num_classes,
            embedding_dim=embedding_dim,
            name="vrnn_cell",
        )
        for name in ("latent_dim", "units", "hidden_units", "cell", "likelihood", "min_std"):
            setattr(self, name, getattr(self.vrnn_cell, name))
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._compiled_fns = CompiledCache()  # inference functions, see _compiled
        self.track("reconstruction", "kl", "elbo")
        self.built = True

    # === Sequence terms ===

    def _terms(self, x: Any, noise: Any, labels: Any = None) -> dict[str, Any]:
        """Unrolls inference over time: per-sequence `log_px`, `kl`, `log_ratio`, `mean`.

        `noise` `(batch, T, latent_dim)` gives the posterior draws (zeros: the means).
        """
        cell = self.vrnn_cell
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        label = cell.embed(labels) if labels is not None else []
        batch = ops.shape(x)[0]
        sums = ("log_px", "kl", "log_ratio")
        carry = {name: ops.zeros((batch,), dtype=x.dtype) for name in sums}
        carry["state"] = ops.zeros((batch, cell.state_size), dtype=x.dtype)
        carry["mean"] = ops.zeros((batch, self.features), dtype=x.dtype)

        def step(carry: dict[str, Any], inputs: tuple[Any, Any]) -> tuple[dict, dict]:
            out = cell.infer(inputs[0], inputs[1], carry["state"], label)
            new = {name: carry[name] + out[name] for name in sums}
            new.update(state=out["state"], mean=out["mean"])
            return new, new  # Keras' TensorFlow scan wants outputs shaped like the carry

        time_major = (ops.transpose(x, (1, 0, 2)), ops.transpose(noise, (1, 0, 2)))
        last, every = ops.scan(step, carry, time_major)  # every: (T, batch, ...)
        terms = {name: last[name] for name in sums}  # (batch,)
        terms["mean"] = ops.transpose(every["mean"], (1, 0, 2))  # (batch, T, features)
        return terms

    def _noise(self, batch: int, seed: Any) -> Any:
        shape = (batch, self.sequence_length, self.latent_dim)
        return keras.random.normal(shape, dtype=self.compute_dtype, seed=seed)

    def _compiled(self, key: Any, fn: Any) -> Any:
        """`fn(*tensors)` compiled once per model (and shape), the weights passed in."""
        return self._compiled_fns(key, fn, self.vrnn_cell.variables)

    def call(self, inputs: Any, condition: Any = None, training: bool = False) -> Any:
        """Reconstruction through the posterior means: decoder means `(batch, T, features)`."""
        x, labels = self._split_inputs(inputs, condition)
        extra = () if labels is None else (labels,)
        return self._compiled("call", self._reconstruct)(x, *extra)

    def _reconstruct(self, x: Any, *labels: Any) -> Any:
        return self._terms(x, ops.zeros((*ops.shape(x)[:2], self.latent_dim)), *labels)["mean"]

    # === Likelihood ===

    def _log_weights(self, x: Any, noise: Any, *labels: Any) -> Any:
        """log w of `k = len(noise) / len(x)` trajectories per sequence, `(k, batch)`."""
        batch = ops.shape(x)[0]
        k = ops.shape(noise)[0] // batch
        tiled = [ops.tile(v, (k,)) for v in labels]  # row i * batch + b is sequence b
        terms = self._terms(ops.tile(x, (k, 1, 1)), noise, *tiled)
        return ops.reshape(terms["log_px"] + terms["log_ratio"], (k, batch))

    def _elbo(self, x: Any, noise: Any, *labels: Any) -> Any:
        terms = self._terms(x, noise, *labels)
        return terms["log_px"] - terms["kl"]

    def log_prob(
        self, x: Any, num_samples: int = 1, seed: int | None = None, condition: Any = None
    ) -> Any:
        """Importance-weighted lower bound on log p(x) per sequence, `(batch,)`, in nats.

        log w_k = sum_t [log p(x_t | z_t, h_{t-1}) + log p(z_t | h_{t-1})
        - log q(z_t | x_t, h_{t-1})] along a trajectory z_k ~ q; the bound is
        logsumexp_k log w_k - log K. The K trajectories are unrolled side by side.
        """
        num_samples = check_count(type(self).__name__, "num_samples", num_samples)
        x, labels = self._split_inputs(x, condition)
        batch = int(ops.shape(x)[0])
        chunk = max(1, min(num_samples, _ROWS_PER_CHUNK // max(batch, 1)))
        # One generator for all chunks: an integer seed reused per chunk would repeat draws.
        seed = self.seed_generator if seed is None else keras.random.SeedGenerator(seed)
        run = self._compiled("log_weights", self._log_weights)
        extra = () if labels is None else (labels,)
        parts = []
        for start in range(0, num_samples, chunk):
            k = min(chunk, num_samples - start)
            parts.append(ops.logsumexp(run(x, self._noise(k * batch, seed), *extra), axis=0))
        return ops.logsumexp(ops.stack(parts), axis=0) - math.log(num_samples)

    def elbo(self, x: Any, seed: int | None = None, condition: Any = None) -> Any:
        """The ELBO per sequence: one posterior draw per step, the KL in closed form."""
        x, labels = self._split_inputs(x, condition)
        noise = self._noise(int(ops.shape(x)[0]), self.seed_generator if seed is None else seed)
        extra = () if labels is None else (labels,)
        return self._compiled("elbo", self._elbo)(x, noise, *extra)

    def density_metrics(
        self, x: Any, y: Any = None, batch_size: int = 256, num_samples: int = EVALUATION_SAMPLES
    ) -> dict[str, float]:
        """`nll` (importance-weighted, `num_samples` draws), `bits_per_dim` and `elbo`."""
        kwargs = {} if self.num_classes is None else {"condition": np.asarray(y)}
        nll = self.nll(x, batch_size, num_samples=num_samples, **kwargs)
        elbo = batched_mean(self.elbo, x, batch_size, **kwargs)
        return {"nll": nll, "bits_per_dim": nll / (self.num_dims * math.log(2)), "elbo": elbo}

    # === Training ===

    def phases(self) -> list[Phase]:
        return [Phase("elbo", self.trainable_variables, self._loss)]

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        self._check(x)
        labels = None if self.num_classes is None else ops.reshape(ops.cast(y, "int32"), (-1,))
        terms = self._terms(x, self._noise(ops.shape(x)[0], self.seed_generator), labels)
        reconstruction, kl = -terms["log_px"], terms["kl"]
        loss = ops.mean(reconstruction + kl)
        logs = {"reconstruction": ops.mean(reconstruction), "kl": ops.mean(kl), "elbo": -loss}
        return loss, logs

    # === Checks ===

    def _check(self, x: Any) -> None:
        check_shape(type(self).__name__, x, self.data_shape, what="sequences")

    def _split_inputs(self, inputs: Any, condition: Any) -> tuple[Any, Any]:
        """Checked sequences and labels (None for an unconditional model)."""
        if condition is not None:
            raise ValueError(f"{type(self).__name__} is unconditional and takes no condition.")
        self._check(inputs)
        return ops.convert_to_tensor(inputs, dtype=self.compute_dtype), None

    def _sampling_labels(self, num: int, condition: Any) -> Any:
        if condition is not None:
            raise ValueError(
                f"{type(self).__name__} is unconditional; sample() takes no condition."
            )
        return None

    def validate_data(self, x: np.ndarray) -> None:
        self._check(x)
        check_values(type(self).__name__, x, binary=self.likelihood == "bernoulli")

    def validate_targets(self, y: np.ndarray | None) -> None:
        check_no_targets(type(self).__name__, y)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "features": self.features,
                "latent_dim": self.latent_dim,
                "units": self.units,
                "hidden_units": list(self.hidden_units),
                "cell": self.cell,
                "likelihood": self.likelihood,
                "min_std": self.min_std,
                "recurrence_latent": self.recurrence_latent,
                "seed": self.seed,
            }
        )
        return config
