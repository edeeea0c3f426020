"""Denoising diffusion probabilistic model (notes, sections 9.1-9.4)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.diffusion import (
    NoiseSchedule,
    ddim_sample,
    ddpm_sample,
    ddpm_step,
    guided_noise,
)
from mp_keras.diffusion.space import to_data_space, to_process_space
from mp_keras.engine import CompiledCache, Phase, PhasedModel
from mp_keras.models._checks import (
    check_count,
    check_shape,
)
from mp_keras.models._ddpm_bound import VariationalBound
from mp_keras.models._ddpm_export import DenoiseStepExport
from mp_keras.models._ddpm_inputs import DiffusionInputs, _is_zero, check_arguments
from mp_keras.models.denoisers import MLPDenoiser, UNetDenoiser
from mp_keras.models.density import LN2, DensityModel

SAMPLERS = ("ddpm", "ddim")
EVALUATION_TIMESTEPS = 50  # random steps of the denoising sum that `mp-keras evaluate` uses
EVALUATION_EXAMPLES = 256  # ... on this many examples of the split


@keras.saving.register_keras_serializable(package="mp_keras")
class DDPM(VariationalBound, DiffusionInputs, DenoiseStepExport, DensityModel, PhasedModel):
    """Denoising diffusion probabilistic model: a noise-prediction network and a process.

    Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020; notes,
    chapter 9. The forward process q adds Gaussian noise in T steps (`NoiseSchedule`,
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps); the network eps_theta(x_t, t) (an
    `MLPDenoiser` for vectors, a `UNetDenoiser` for images) learns to predict eps, which
    is all the reverse process p(x_{t-1} | x_t) = N(mu_theta, sigma_t^2 I) needs. The
    network and the process stay apart: `self.network` is the network, `self.schedule`
    the process, and the samplers of `mp_keras.diffusion` combine them.

    Training is Algorithm 2: for each example t ~ U{1..T}, eps ~ N(0, I), and the loss
    is the mean over the batch and the dimensions of (eps - eps_theta(x_t, t))^2 (the
    simplified objective; `loss` starts near 1). Sampling is Algorithm 3 (`sampler=
    "ddpm"`, T network calls) or DDIM (`sampler="ddim"`, `steps` calls).

    Data: images in `data_range` (e.g. [0, 1]) are mapped to [-1, 1] for the process
    and back by `sample` (`encode_data` / `decode_data`; a latent diffusion model
    overrides these); with `data_range=None` (2-D toy data) the process runs on the data
    as it is.

    Class-conditional (`num_classes`, trained on `(x, labels)`): the network gets an
    embedding of the label, from `Embedding(num_classes + 1, condition_dim)` whose last
    row is the null label; during training each label is replaced by the null label with
    probability `condition_dropout`, so one network learns eps(x, y; t) and eps(x; t),
    and `sample(..., guidance=rho)` uses classifier-free guidance (Ho & Salimans 2022),
    eps* = (1 + rho) eps(x, y; t) - rho eps(x; t).

    Likelihood: `variational_bound(x)` gives the terms of the negative ELBO (notes,
    section 9.3) in nats per example, and `log_prob(x)` is minus their sum, a lower
    bound on log p(x); so `nll(x)` and `bits_per_dim(x)` are upper bounds on the true
    values. The reconstruction term is Ho et al.'s discretized Gaussian over
    `num_levels` bins when the data lies on a grid (8-bit images: 256; binary: 2).

    EMA: with `ema_momentum`, `compile()` defaults to Adam keeping an exponential moving
    average of the weights (`use_ema=True`); Keras writes the average into the weights at
    the end of `fit`, so `sample` uses it. For short runs pick a smaller momentum (the
    average of 0.999 spans about 1000 steps).

    Args:
        input_shape: tuple of ints. Shape of one example: `(d,)` or `(h, w, c)`.
            Defaults to `(8, 8, 1)`.
        network: str. `"mlp"`, `"unet"` or `"auto"` (vectors: mlp, images: unet).
            Defaults to `"auto"`.
        hidden_units: tuple of ints. Hidden widths of the MLP. Defaults to
            `(128, 128, 128)`.
        filters: tuple of ints. Widths of the U-Net's levels. Defaults to `(32, 64)`.
        time_dim: int or None. Size of the step embedding; None: 32 (mlp) or 64
            (unet). Defaults to `None`.
        groups: int. GroupNormalization groups of the U-Net. Defaults to `8`.
        schedule: str. `"cosine"` or `"linear"` (see `NoiseSchedule`). Defaults to
            `"cosine"`.
        timesteps: int. T. Defaults to `1000`.
        variance: str. sigma_t^2 of Algorithm 3: `"beta"` (beta_t) or `"posterior"`
            (beta_tilde_t). Defaults to `"beta"`.
        num_classes: int or None. Classes of a class-conditional model. Defaults to
            `None`.
        condition_dropout: float. Probability that a training label is replaced by the
            null label. Defaults to `0.1`.
        condition_dim: int or None. Size of the label embedding; None: `time_dim`.
            Defaults to `None`.
        data_range: pair of floats or None. The range [lo, hi] mapped to [-1, 1];
            None for no rescaling. Defaults to `(0.0, 1.0)`.
        num_levels: int or None. Number of evenly spaced values the data takes in
            `data_range` (256 for 8-bit images, 2 for binary, 17 for `digits`): the
            bins of the discretized reconstruction term; None (and always when
            `data_range` is None): a Gaussian density. Defaults to `256`.
        ema_momentum: float or None. Momentum of the weights' moving average; None for
            none. Defaults to `0.999`.
        learning_rate: float. Adam's rate in `default_optimizer()`. Defaults to `1e-3`.
        seed: int or None. Seed of the model's random draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = DDPM(input_shape=(2,), hidden_units=(16,), timesteps=10, data_range=None,
    ...              ema_momentum=None, seed=0)
    >>> model.compile()
    >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)
    ['loss']
    >>> tuple(model.sample(5, seed=1).shape)
    (5, 2)
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (8, 8, 1),
        network: str = "auto",
        hidden_units: Sequence[int] = (128, 128, 128),
        filters: Sequence[int] = (32, 64),
        time_dim: int | None = None,
        groups: int = 8,
        schedule: str = "cosine",
        timesteps: int = 1000,
        variance: str = "beta",
        num_classes: int | None = None,
        condition_dropout: float = 0.1,
        condition_dim: int | None = None,
        data_range: Sequence[float] | None = (0.0, 1.0),
        num_levels: int | None = 256,
        ema_momentum: float | None = 0.999,
        learning_rate: float = 1e-3,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        data_shape, kind, data_range = check_arguments(
            type(self).__name__,
            input_shape,
            network,
            variance,
            num_classes,
            condition_dropout,
            data_range,
            num_levels,
            ema_momentum,
        )
        super().__init__(**kwargs)

        # === Config ===
        self.data_shape = data_shape
        self.network_kind = network
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.filters = tuple(int(f) for f in filters)
        self.time_dim = int(time_dim) if time_dim is not None else (32 if kind == "mlp" else 64)
        self.groups = int(groups)
        self.variance = variance
        self.num_classes = None if num_classes is None else int(num_classes)
        self.condition_dropout = float(condition_dropout)
        self.condition_dim = self.time_dim if condition_dim is None else int(condition_dim)
        self.data_range = data_range
        self.num_levels = None if num_levels is None else int(num_levels)
        self.ema_momentum = None if ema_momentum is None else float(ema_momentum)
        self.learning_rate = float(learning_rate)
        self.seed = seed
        self._time_dim_arg = time_dim
        self._condition_dim_arg = condition_dim

        # === Process ===
        self.schedule = NoiseSchedule(schedule, timesteps)

        # === Layers ===
        # The network takes a condition whenever the model is conditional: a label's
        # embedding here, or a subclass's own condition (TextDiffusion: CLIP's text).
        condition_size = self.condition_dim if self.is_conditional else 0
        if kind == "mlp":
            self.network = MLPDenoiser(
                data_shape[0], self.hidden_units, self.time_dim, condition_size, name="network"
            )
        else:
            self.network = UNetDenoiser(
                data_shape, self.filters, self.time_dim, condition_size, self.groups, name="network"
            )
        self.label_embedding = None
        if self.num_classes is not None:  # row num_classes is the null label
            self.label_embedding = keras.layers.Embedding(
                self.num_classes + 1, self.condition_dim, name="label_embedding"
            )
            self.label_embedding.build((None,))
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._compiled = CompiledCache()
        self.built = True

    @property
    def is_conditional(self) -> bool:
        """Whether the model is class-conditional (trains on and samples given labels)."""
        return self.num_classes is not None

    # === Subclass hooks ===

    def encode_data(self, x: Any) -> Any:
        """Data to the space of the process: [lo, hi] -> [-1, 1] (identity without a range)."""
        return to_process_space(x, self.data_range, self.compute_dtype)

    def decode_data(self, z: Any) -> Any:
        """The inverse of `encode_data`, clipped to the data range."""
        return to_data_space(z, self.data_range)

    def embed_condition(self, labels: Any) -> Any:
        """Labels `(batch,)` (index `num_classes` is the null label) -> `(batch,
        condition_dim)`, or None for an unconditional model."""
        if self.label_embedding is None:
            return None
        return self.label_embedding(ops.cast(labels, "int32"))

    def null_condition(self, batch: Any) -> Any:
        """The null label's embedding for `batch` examples (None if unconditional)."""
        if self.label_embedding is None:
            return None
        return self.embed_condition(ops.full((batch,), self.num_classes, dtype="int32"))

    def sampling_variables(self) -> list[Any]:
        """The weights a compiled sampling step reads (passed in, so one trace serves
        all weight values)."""
        return list(self.network.weights) + (
            list(self.label_embedding.weights) if self.label_embedding is not None else []
        )

    # === The network ===

    def network_noise(self, x_t: Any, t: Any, condition: Any = None, training: bool = False) -> Any:
        """eps_theta(x_t, t[, condition]): the network on process-space x_t, t `(batch,)`."""
        t = ops.cast(t, self.compute_dtype)
        inputs = [x_t, t] if condition is None else [x_t, t, condition]
        return self.network(inputs, training=training)

    def predict_noise(self, x_t: Any, t: Any, labels: Any = None, guidance: float = 0.0) -> Any:
        """eps_hat(x_t, t) in the process space, `(batch, *input_shape)`.

        `t` holds one step in 1..T per example (an int broadcasts). A conditional model
        uses `labels` (None: the null label, i.e. the unconditional model); with
        `guidance` rho != 0 it returns (1 + rho) eps(x, y; t) - rho eps(x; t).
        """
        x_t = self._process_tensor(x_t, "x_t")
        t = self._timesteps(t, ops.shape(x_t)[0])
        condition = self._condition(labels, ops.shape(x_t)[0], guidance)
        return self._guided(x_t, t, condition, guidance)

    def _guided(self, x_t: Any, t: Any, condition: Any, guidance: Any) -> Any:
        eps = self.network_noise(x_t, t, condition)
        if condition is None or _is_zero(guidance):
            return eps
        unconditional = self.network_noise(x_t, t, self.null_condition(ops.shape(x_t)[0]))
        if not isinstance(guidance, (int, float)):  # per-example rho (the export endpoint)
            guidance = ops.reshape(
                ops.cast(guidance, eps.dtype), (-1,) + (1,) * len(self.process_shape)
            )
        return guided_noise(eps, unconditional, guidance)

    def call(self, inputs: Any, training: bool = False) -> Any:
        """`[x_t, t]` or `[x_t, t, labels]` -> eps_hat (process space); a single tensor x
        (data) is read as x_1, i.e. `predict_noise(encode_data(x), 1)`."""
        if isinstance(inputs, (list, tuple)):
            x_t, t = inputs[0], inputs[1]
            labels = inputs[2] if len(inputs) > 2 else None
            condition = self.embed_condition(labels) if labels is not None else None
            if condition is None and self.is_conditional:
                condition = self.null_condition(ops.shape(x_t)[0])
            return self.network_noise(x_t, t, condition, training=training)
        check_shape(type(self).__name__, inputs, self.data_shape)
        x = self.encode_data(inputs)
        t = ops.ones_like(ops.reshape(x, (-1, math.prod(self.process_shape)))[:, 0], dtype="int32")
        condition = None
        if self.is_conditional:  # the null label, built from t so a symbolic batch works
            condition = self.embed_condition(t * self.num_classes)
        return self.network_noise(x, t, condition, training=training)

    # === Training (Algorithm 2) ===

    def phases(self) -> list[Phase]:
        return [Phase("ddpm", self.trainable_variables, self._loss)]

    def default_optimizer(self) -> Any:
        if self.ema_momentum is None:
            return keras.optimizers.Adam(self.learning_rate)
        return keras.optimizers.Adam(
            self.learning_rate, use_ema=True, ema_momentum=self.ema_momentum
        )

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        x0 = self.encode_data(x)
        batch = ops.shape(x0)[0]
        t = self.schedule.sample_timesteps(batch, self.seed_generator)  # t ~ U{1..T}
        eps = keras.random.normal(ops.shape(x0), dtype=x0.dtype, seed=self.seed_generator)
        x_t = self.schedule.q_sample(x0, t, eps)
        eps_hat = self.network_noise(x_t, t, self._training_condition(y, batch), training)
        return ops.mean(ops.square(eps - eps_hat)), {}

    def _training_condition(self, y: Any, batch: Any) -> Any:
        if not self.is_conditional:
            return None
        labels = ops.reshape(ops.cast(y, "int32"), (-1,))
        if self.condition_dropout > 0:  # classifier-free guidance: sometimes the null label
            drop = keras.random.uniform((batch,), seed=self.seed_generator) < self.condition_dropout
            labels = ops.where(drop, self.num_classes, labels)
        return self.embed_condition(labels)

    # === Sampling (Algorithm 3, DDIM) ===

    def sample(
        self,
        num: int,
        seed: int | None = None,
        sampler: str = "ddpm",
        steps: int | None = None,
        labels: Any = None,
        guidance: float = 0.0,
        eta: float = 0.0,
        shift: Callable[[Any, Any], Any] | None = None,
        condition: Any = None,
        classifier: Any = None,
        classifier_scale: float = 1.0,
    ) -> Any:
        """`num` samples in the data space, `(num, *input_shape)`.

        Args:
            num: int. Number of samples.
            seed: int or None. The same seed gives the same samples; None draws from
                the model's generator.
            sampler: str. `"ddpm"` (Algorithm 3, T steps) or `"ddim"` (`steps` steps,
                deterministic with `eta=0`).
            steps: int or None. DDIM's number of steps (None: T); DDPM takes none.
            labels: int or `(num,)` ints. Required for a class-conditional model.
            guidance: float. Classifier-free guidance strength rho (0: conditional).
            eta: float. DDIM's noise (0: deterministic).
            shift: callable `(x_t, t) -> s grad log p(y | x_t)` or None: classifier
                guidance, passed to `ddpm_sample` (DDPM only).
            condition: alias of `labels` (the name the shared sample plots use).
            classifier: a `NoisyClassifier` trained with this model's schedule, or None:
                classifier guidance towards `labels` (an unconditional DDPM's labels then
                go to the classifier). DDPM sampler only.
            classifier_scale: float. The guidance scale s. Defaults to `1.0`.

        With a data range, each step clips its predicted x_0 to it (`ddpm_step`'s
        `clip_x0`; DDIM does the same).
        """
        owner = type(self).__name__
        num = check_count(owner, "num", num)
        if classifier is not None:
            from mp_keras.models.noisy_classifier import check_guidance_pair

            if shift is not None:
                raise ValueError(f"{owner}: pass shift or classifier, not both.")
            check_guidance_pair(self, classifier)
            shift = classifier.guidance(condition if labels is None else labels, classifier_scale)
            labels = condition = None
        if sampler not in SAMPLERS:
            raise ValueError(f"{owner}: sampler must be one of {SAMPLERS}, got {sampler!r}.")
        if sampler == "ddpm" and steps is not None:
            raise ValueError(
                f"{owner}: steps is for sampler='ddim'; DDPM takes all "
                f"T = {self.schedule.timesteps}."
            )
        if sampler == "ddim" and shift is not None:
            raise ValueError(
                f"{owner}: shift (classifier guidance) works with sampler='ddpm' only."
            )
        labels = condition if labels is None else labels
        label_array = self._sampling_labels(num, labels, guidance)
        generator = self.seed_generator if seed is None else keras.random.SeedGenerator(seed)
        x_T = keras.random.normal(
            (num, *self.process_shape), dtype=self.compute_dtype, seed=generator
        )
        cond_key = None if label_array is None else label_array.tobytes()

        def predict(x: Any, t: Any) -> Any:
            cond = (
                None
                if label_array is None
                else self.embed_condition(ops.convert_to_tensor(label_array))
            )
            return self._guided(x, t, cond, guidance)

        clip = None if self.data_range is None else (-1.0, 1.0)
        if sampler == "ddpm":
            key = ("ddpm", self.variance, num, float(guidance), cond_key, shift)
            # A classifier's weights are read by the step too (`guidance` lists them).
            extra = list(getattr(shift, "variables", ()))
            x = ddpm_sample(
                predict,
                self.schedule,
                x_T,
                generator,
                self.variance,
                lambda fn: self._compiled(key, fn, self.sampling_variables() + extra),
                shift,
                clip_x0=clip,
            )
        else:
            steps = self.schedule.timesteps if steps is None else steps
            key = ("ddim", float(eta), num, float(guidance), cond_key)
            x = ddim_sample(
                predict, self.schedule, x_T, steps, eta, generator, self._compiler(key), clip
            )
        return self.decode_data(x)

    @property
    def process_shape(self) -> tuple[int, ...]:
        """Shape of one example in the process space (the data's; latent models differ)."""
        return self.data_shape

    def _compiler(self, key: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return lambda fn: self._compiled(key, fn, self.sampling_variables())

    def denoise_step(
        self, x_t: Any, t: Any, noise: Any, labels: Any = None, guidance: Any = 0.0
    ) -> Any:
        """One step of Algorithm 3 with the given noise z: x_t -> x_{t-1}, process space.

        This is the export endpoint: an app draws x_T ~ N(0, I) and loops t = T..1 with
        its own z, then maps x_0 to the data with `decode_data` ((x + 1) / 2 * (hi - lo)
        + lo). `t` is `(batch,)` ints in 1..T (z is ignored at t = 1).
        """
        x_t = self._process_tensor(x_t, "x_t")
        noise = self._process_tensor(noise, "noise")
        t = self._timesteps(t, ops.shape(x_t)[0])
        condition = self._condition(labels, ops.shape(x_t)[0], guidance)
        eps = self._guided(x_t, t, condition, guidance)
        clip = None if self.data_range is None else (-1.0, 1.0)
        return ddpm_step(self.schedule, x_t, t, eps, noise, self.variance, clip_x0=clip)

    # === Likelihood (the variational bound, notes section 9.3; `_ddpm_bound.py`) ===

    def log_prob(
        self, x: Any, num_timesteps: int | None = None, seed: int | None = None, labels: Any = None
    ) -> Any:
        """Minus the variational bound: a lower bound on log p(x) in nats, `(batch,)`."""
        return -self.variational_bound(x, num_timesteps, seed, labels)["total"]

    def density_metrics(
        self,
        x: Any,
        y: Any = None,
        batch_size: int = 256,
        num_timesteps: int = EVALUATION_TIMESTEPS,
        max_examples: int | None = EVALUATION_EXAMPLES,
    ) -> dict[str, float]:
        """`nll_bound` and `bits_per_dim_bound` (upper bounds: the variational bound with
        `num_timesteps` random steps of the denoising sum), on the first `max_examples`
        examples (each costs `num_timesteps` network calls; None: all)."""
        kwargs: dict[str, Any] = {"num_timesteps": num_timesteps}
        if max_examples is not None:
            x = x[:max_examples]
            y = None if y is None else y[:max_examples]
        if self.is_conditional and y is not None:
            kwargs["labels"] = np.asarray(y)
        bound = self.nll(x, batch_size, **kwargs)
        return {"nll_bound": bound, "bits_per_dim_bound": bound / (self.num_dims * LN2)}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "input_shape": list(self.data_shape),
                "network": self.network_kind,
                "hidden_units": list(self.hidden_units),
                "filters": list(self.filters),
                "time_dim": self._time_dim_arg,
                "groups": self.groups,
                "schedule": self.schedule.kind,
                "timesteps": self.schedule.timesteps,
                "variance": self.variance,
                "num_classes": self.num_classes,
                "condition_dropout": self.condition_dropout,
                "condition_dim": self._condition_dim_arg,
                "data_range": None if self.data_range is None else list(self.data_range),
                "num_levels": self.num_levels,
                "ema_momentum": self.ema_momentum,
                "learning_rate": self.learning_rate,
                "seed": self.seed,
            }
        )
        return config
