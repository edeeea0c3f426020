"""Variational RNN and conditional VRNN: a VAE at every step of an RNN (notes, 6.6)."""

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
    check_labels,
    check_no_targets,
    check_shape,
    check_values,
)
from mp_keras.models.density import DensityModel, batched_mean

__all__ = ["CVRNN", "VRNN", "gaussian_kl", "gaussian_log_density"]

RECURRENCE_LATENTS = ("prior", "posterior")
EVALUATION_SAMPLES = 100  # importance samples of the NLL that `density_metrics` reports
_ROWS_PER_CHUNK = 8192  # (sequences x importance samples) unrolled at once by log_prob


@keras.saving.register_keras_serializable(package="mp_keras")
class VRNN(DensityModel, PhasedModel):
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

    # === Generation ===

    def generate_step(
        self, state: Any, z_noise: Any, x_noise: Any, labels: Any = None, use_mean: bool = False
    ) -> dict[str, Any]:
        """One generation step with explicit noise: `{"x", "mean", "state"}` (see VRNNCell)."""
        return self.vrnn_cell.generate(
            state,
            z_noise,
            x_noise,
            labels,
            use_mean=use_mean,
            recurrence_latent=self.recurrence_latent,
        )

    def sample(
        self,
        num: int,
        seed: int | None = None,
        *,
        length: int | None = None,
        condition: Any = None,
        use_mean: bool = False,
    ) -> Any:
        """Sequences `(num, length, features)` from the generative model (prior only).

        At each step z_t ~ p(z_t | h_{t-1}), x_t ~ p(x_t | z_t, h_{t-1}) (its mean with
        `use_mean`), then h_t; one compiled step is reused for every t (and every call),
        and all noise is drawn up front from `seed`, so a seed gives the same sequences.
        `length` defaults to `sequence_length` and may differ. Conditional models need
        `condition`: `num` labels (or one, for all). `(num, seed)` come first, as for
        every sampler of the collection.
        """
        owner = type(self).__name__
        num = check_count(owner, "num", num)
        length = self.sequence_length if length is None else check_count(owner, "length", length)
        labels = self._sampling_labels(num, condition)
        generator = self.seed_generator if seed is None else keras.random.SeedGenerator(seed)
        dtype = self.compute_dtype
        z_noise = keras.random.normal((length, num, self.latent_dim), dtype=dtype, seed=generator)
        x_shape = (length, num, self.features)
        if self.likelihood == "gaussian":
            x_noise = keras.random.normal(x_shape, dtype=dtype, seed=generator)
        else:
            x_noise = keras.random.uniform(x_shape, dtype=dtype, seed=generator)

        def step(state: Any, z: Any, u: Any, *labels: Any) -> tuple[Any, Any]:
            out = self.generate_step(state, z, u, *labels, use_mean=use_mean)
            return out["state"], out["x"]

        run = self._compiled(("step", bool(use_mean)), step)
        state = ops.zeros((num, self.vrnn_cell.state_size), dtype=dtype)
        extra = () if labels is None else (labels,)
        xs = []
        for t in range(length):
            state, x = run(state, z_noise[t], x_noise[t], *extra)
            xs.append(x)
        return ops.stack(xs, axis=1)

    def figure_rows(self, x: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
        """Rows of pictures for `mp-keras train`'s figure: samples, inputs, reconstructions.

        Two features are drawn as pen paths (`mp_keras.data.strokes.render_strokes`),
        other sequences as `(T, features)` images. A conditional model samples the
        classes in turn and shows no reconstructions (it would need the labels).
        """
        from mp_keras.data.strokes import render_strokes

        def picture(v: Any) -> np.ndarray:
            v = np.asarray(ops.convert_to_numpy(v))
            return render_strokes(v) if self.features == 2 else v

        num = len(x)
        labels = None if self.num_classes is None else np.arange(num) % self.num_classes
        rows = {"samples": picture(self.sample(num, seed, condition=labels))}
        if labels is None:
            rows.update(inputs=picture(x), reconstructions=picture(self(x)))
        return rows

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

    # === Export ===

    def export_endpoints(self) -> dict[str, Any]:
        specs = [
            keras.InputSpec(shape=(None, self.vrnn_cell.state_size), dtype="float32"),
            keras.InputSpec(shape=(None, self.latent_dim), dtype="float32"),
            keras.InputSpec(shape=(None, self.features), dtype="float32"),
        ]
        if self.num_classes is not None:
            specs.append(keras.InputSpec(shape=(None,), dtype="int32"))
        return {"generate_step": (self.generate_step, specs)}

    def export_samples(self, name: str, num: int, seed: int) -> list[np.ndarray]:
        """A random state, standard normal z noise, x noise (uniform if Bernoulli), labels."""
        rng = np.random.default_rng(seed)
        state = rng.uniform(-1.0, 1.0, (num, self.vrnn_cell.state_size))
        z_noise = rng.standard_normal((num, self.latent_dim))
        shape = (num, self.features)
        gaussian = self.likelihood == "gaussian"
        x_noise = rng.standard_normal(shape) if gaussian else rng.uniform(size=shape)
        arrays = [a.astype("float32") for a in (state, z_noise, x_noise)]
        if self.num_classes is not None:
            arrays.append(rng.integers(0, self.num_classes, num).astype("int32"))
        return arrays

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


@keras.saving.register_keras_serializable(package="mp_keras")
class CVRNN(VRNN):
    """Conditional VRNN: a VRNN told which class to draw (notes, 6.6).

    Notes, 6.6 (the C-VRNN; Aksan et al. 2018 use it for handwriting styles): a label y,
    here the digit to draw, is embedded as e(y) and read by the prior, the encoder, the
    decoder and the recurrence (see `mp_keras.layers.VRNNCell`). Training is the VRNN's
    on (sequences, labels): `fit(x, labels)`, `log_prob(x, condition=labels)`. Sampling
    follows the notes: x_t is generated from the prior's z_t, then the posterior of z_t
    given that x_t (its mean) updates h_t, as in training, where h_t reads the posterior
    draw (`recurrence_latent="posterior"`; `"prior"` feeds the prior draw instead).

    `call` takes `(x, condition=labels)`, or one array `(batch, T, features + 1)` whose
    last column holds the label (read at the first step), the single-tensor form of
    Keras' functional API and `predict`.

    Args:
        sequence_length: int. Steps T of a training sequence.
        features: int. Features of one step x_t.
        num_classes: int. Number of classes of the label.
        embedding_dim: int. Size of the label embedding e(y). Defaults to `16`.
        recurrence_latent: str. `"posterior"` or `"prior"` (see above). Defaults to
            `"posterior"`.
        **kwargs: the other arguments of `VRNN` (`latent_dim`, `units`, `hidden_units`,
            `cell`, `likelihood`, `min_std`, `seed`).

    Example:
    >>> model = CVRNN(sequence_length=4, features=2, num_classes=3, latent_dim=2, units=8,
    ...               hidden_units=(8,), seed=0)  # train: compile(), then fit(x, labels)
    >>> tuple(model.sample(3, seed=1, condition=[0, 1, 2]).shape)  # one of each class
    (3, 4, 2)
    """

    def __init__(
        self,
        sequence_length: int,
        features: int,
        num_classes: int,
        embedding_dim: int = 16,
        recurrence_latent: str = "posterior",
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        num_classes = check_count(owner, "num_classes", num_classes)
        embedding_dim = check_count(owner, "embedding_dim", embedding_dim)
        super().__init__(
            sequence_length,
            features,
            recurrence_latent=recurrence_latent,
            _labels=(num_classes, embedding_dim),
            **kwargs,
        )
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim

    @property
    def is_conditional(self) -> bool:
        """Always True: trains and samples given labels."""
        return True

    def _split_inputs(self, inputs: Any, condition: Any) -> tuple[Any, Any]:
        owner = type(self).__name__
        if condition is None:
            shape = tuple(getattr(inputs, "shape", np.shape(inputs)))
            if len(shape) != 3 or shape[-1] != self.features + 1:
                raise ValueError(
                    f"{owner} is class-conditional ({self.num_classes} classes): pass "
                    f"condition=labels, or sequences of shape (batch, {self.sequence_length}, "
                    f"{self.features + 1}) whose last column is the label; got shape {shape}."
                )
            inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
            inputs, condition = inputs[..., : self.features], inputs[:, 0, self.features]
        self._check(inputs)
        labels = ops.reshape(ops.cast(condition, "int32"), (-1,))
        return ops.convert_to_tensor(inputs, dtype=self.compute_dtype), labels

    def _sampling_labels(self, num: int, condition: Any) -> Any:
        if condition is None:
            raise ValueError(
                f"{type(self).__name__} is class-conditional ({self.num_classes} classes): "
                f"pass condition=labels, {num} class indices."
            )
        labels = np.broadcast_to(np.asarray(condition), (num,))
        check_labels(type(self).__name__, labels, self.num_classes, what="condition")
        return ops.convert_to_tensor(labels.astype("int32"))

    def validate_inputs(self, x: np.ndarray) -> None:
        x = np.asarray(x)
        if x.ndim == 3 and x.shape[-1] == self.features + 1:  # the label is the last column
            check_labels(type(self).__name__, x[:, 0, -1], self.num_classes)
            x = x[..., :-1]
        self.validate_data(x)

    def validate_targets(self, y: np.ndarray | None) -> None:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} is class-conditional ({self.num_classes} classes) and "
                "trains on (sequences, labels); got no labels."
            )
        check_labels(type(self).__name__, y, self.num_classes)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "embedding_dim": self.embedding_dim})
        return config
