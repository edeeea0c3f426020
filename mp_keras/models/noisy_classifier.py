"""A classifier of noisy inputs p(y | x_t, t), for classifier guidance (notes, section 9.4)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.diffusion import NoiseSchedule
from mp_keras.diffusion.space import to_process_space
from mp_keras.engine import CompiledCache, Phase, PhasedModel, gradients
from mp_keras.models._checks import (
    check_count,
    check_labels,
    check_shape,
)
from mp_keras.models._ddpm_inputs import RangedData, checked_tensor, checked_timesteps
from mp_keras.models._noisy_networks import cnn_network, mlp_network
from mp_keras.models.denoisers import positive_ints


@keras.saving.register_keras_serializable(package="mp_keras")
class NoisyClassifier(RangedData, PhasedModel):
    """A time-conditioned classifier p(y | x_t, t) trained on inputs noised by q.

    Dhariwal & Nichol, "Diffusion Models Beat GANs on Image Synthesis", NeurIPS 2021
    (section 4); notes, section 9.4 ("a classifier trained on noisy images"). Classifier
    guidance samples p(x | y) from an unconditional diffusion model by adding the
    gradient of log p(y | x_t) to its score: grad log p(x_t | y) = grad log p(x_t) +
    grad log p(y | x_t). An ordinary classifier knows clean images only, so this one is
    trained, like the diffusion model, at every noise level: each step draws
    t ~ U{1..T} and eps ~ N(0, I) per example and minimises the cross-entropy of the
    labels given x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (the same `NoiseSchedule`
    as the diffusion model it guides). `guidance(labels, scale)` is the `shift` of
    `mp_keras.diffusion.ddpm_sample` (and of `DDPM.sample`): the sampler adds
    sigma_t^2 * scale * grad_x log p(y | x_t, t) to the mean of each reverse step
    (Dhariwal & Nichol's Algorithm 1).

    The network embeds t sinusoidally (then Dense -> SiLU -> Dense) and adds the
    embedding to every hidden layer: an MLP for vectors, a small CNN (3x3 convolutions,
    average pooling between levels, global average pooling) for images.

    Data: as in `DDPM`, images in `data_range` [lo, hi] are mapped to [-1, 1] before
    noising (`encode_data`); with `data_range=None` the process runs on the data as it
    is. `logits`, `log_prob_labels` and `guidance` take x_t in that process space, as
    the sampler holds it; `fit(x, y)` and `accuracy_by_timestep` take clean data.

    Args:
        input_shape: tuple of ints. Shape of one example: `(d,)` or `(h, w, c)`.
            Defaults to `(2,)`.
        num_classes: int. Number of classes. Defaults to `2`.
        schedule: str. `"cosine"` or `"linear"` (see `NoiseSchedule`). Defaults to
            `"cosine"`.
        timesteps: int. T. Defaults to `1000`.
        hidden_units: tuple of ints. Hidden widths of the MLP (vectors). Defaults to
            `(128, 128)`.
        filters: tuple of ints. Widths of the CNN's levels (images). Defaults to
            `(16, 32)`.
        time_dim: int. Size of the sinusoidal step embedding (even). Defaults to `32`.
        data_range: pair of floats or None. The range [lo, hi] mapped to [-1, 1]; None
            for no rescaling. Defaults to `(0.0, 1.0)`.
        learning_rate: float. Adam's rate in `default_optimizer()`. Defaults to `1e-3`.
        seed: int or None. Seed of the model's random draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = NoisyClassifier(input_shape=(2,), num_classes=2, timesteps=10,
    ...                         hidden_units=(8,), time_dim=4, data_range=None, seed=0)
    >>> model.compile()
    >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    >>> sorted(model.fit(x, (x[:, 0] > 0).astype("int32"), epochs=1, verbose=0).history)
    ['accuracy', 'loss']
    >>> shift = model.guidance(labels=1, scale=2.0)  # for DDPM.sample(..., shift=shift)
    >>> tuple(shift(x[:3], np.array([10, 5, 1])).shape)
    (3, 2)
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (2,),
        num_classes: int = 2,
        schedule: str = "cosine",
        timesteps: int = 1000,
        hidden_units: Sequence[int] = (128, 128),
        filters: Sequence[int] = (16, 32),
        time_dim: int = 32,
        data_range: Sequence[float] | None = (0.0, 1.0),
        learning_rate: float = 1e-3,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        data_shape = tuple(int(d) for d in input_shape)
        if len(data_shape) not in (1, 3) or min(data_shape) < 1:
            raise ValueError(
                f"{owner}: input_shape must be (d,) or (height, width, channels) of positive "
                f"sizes; got {input_shape!r}."
            )
        num_classes = check_count(owner, "num_classes", num_classes)
        if num_classes < 2:
            raise ValueError(f"{owner}: num_classes must be >= 2, got {num_classes}.")
        hidden = positive_ints(owner, "hidden_units", hidden_units)
        widths = positive_ints(owner, "filters", filters)
        if isinstance(time_dim, bool) or int(time_dim) != time_dim or time_dim < 2 or time_dim % 2:
            raise ValueError(f"{owner}: time_dim must be an even int >= 2, got {time_dim!r}.")
        if data_range is not None:
            data_range = (float(data_range[0]), float(data_range[1]))
            if not data_range[0] < data_range[1]:
                raise ValueError(
                    f"{owner}: data_range must be (lo, hi) with lo < hi, got {data_range!r}."
                )
        if not learning_rate > 0:
            raise ValueError(f"{owner}: learning_rate must be > 0, got {learning_rate!r}.")
        super().__init__(**kwargs)

        # === Config ===
        self.data_shape = data_shape
        self.num_classes = num_classes
        self.hidden_units = hidden
        self.filters = widths
        self.time_dim = int(time_dim)
        self.data_range = data_range
        self.learning_rate = float(learning_rate)
        self.seed = seed

        # === Process ===
        self.schedule = NoiseSchedule(schedule, timesteps)

        # === Layers ===
        if len(data_shape) == 1:
            self.network = mlp_network(data_shape, num_classes, hidden, self.time_dim)
        else:
            self.network = cnn_network(data_shape, num_classes, widths, self.time_dim)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._compiled = CompiledCache()
        self.track("accuracy")
        self.built = True

    # === Data ===

    def encode_data(self, x: Any) -> Any:
        """Data to the space of the process: [lo, hi] -> [-1, 1] (identity without a range)."""
        return to_process_space(x, self.data_range, self.compute_dtype)

    # === The classifier ===

    def network_logits(self, x_t: Any, t: Any, training: bool = False) -> Any:
        """The network on process-space x_t and steps t `(batch,)`, no checks."""
        return self.network([x_t, ops.cast(t, self.compute_dtype)], training=training)

    def logits(self, x_t: Any, t: Any) -> Any:
        """Logits of p(y | x_t, t), `(batch, num_classes)`; x_t in the process space, `t`
        one step in 1..T per example (an int broadcasts)."""
        x_t = self._process_tensor(x_t)
        return self.network_logits(x_t, self._timesteps(t, ops.shape(x_t)[0]))

    def log_prob_labels(self, x_t: Any, t: Any, labels: Any) -> Any:
        """log p(y | x_t, t) of the given labels (an int or one per example), `(batch,)`."""
        x_t = self._process_tensor(x_t)
        t = self._timesteps(t, ops.shape(x_t)[0])
        labels = self._labels(labels, int(x_t.shape[0]))
        return _label_log_prob(self.network_logits(x_t, t), labels)

    def guidance(self, labels: Any, scale: float = 1.0) -> Callable[[Any, Any], Any]:
        """The classifier-guidance term, `fn(x_t, t) -> scale * grad_x log p(y | x_t, t)`.

        `labels` is one class (every sample) or one per sample. `fn` is written in
        `keras.ops` with `mp_keras.engine.gradients`, so it runs inside the compiled step
        of `ddpm_sample` (pass it as `shift`, or to `DDPM.sample(..., shift=fn)`).
        `fn.variables` lists the classifier weights it reads, for a `CompiledCache`.
        """
        owner = type(self).__name__
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.number)):
            raise ValueError(f"{owner}: scale must be a float, got {scale!r}.")
        if not math.isfinite(float(scale)):
            raise ValueError(f"{owner}: scale must be finite, got {scale!r}.")
        scale = float(scale)
        labels = self._labels(labels, None)

        def shift(x_t: Any, t: Any) -> Any:
            check_shape(owner, x_t, self.data_shape, what="x_t")
            if labels.ndim == 1 and x_t.shape[0] is not None and len(labels) != x_t.shape[0]:
                raise ValueError(
                    f"{owner}: guidance has {len(labels)} labels; got a batch of "
                    f"{x_t.shape[0]} x_t."
                )
            x_t = ops.convert_to_tensor(x_t, dtype=self.compute_dtype)
            steps = ops.convert_to_tensor(t, dtype="int32")

            def total(x: Any) -> Any:  # the examples do not interact: row i is example i's
                return ops.sum(_label_log_prob(self.network_logits(x, steps), labels))

            (grad,) = gradients(total, [x_t])
            return ops.stop_gradient(scale * grad)

        shift.variables = list(self.network.weights)  # what a compiled sampling step reads
        return shift

    def call(self, inputs: Any, training: bool = False) -> Any:
        """`[x_t, t]` -> logits (process space); a single tensor x (data) is classified at
        t = 1 without noise, i.e. `logits(encode_data(x), 1)`."""
        if isinstance(inputs, (list, tuple)):
            return self.network_logits(inputs[0], inputs[1], training=training)
        check_shape(type(self).__name__, inputs, self.data_shape)
        x = self.encode_data(inputs)
        t = ops.ones_like(ops.reshape(x, (-1, math.prod(self.data_shape)))[:, 0])  # (batch,)
        return self.network_logits(x, t, training=training)

    # === Training ===

    def phases(self) -> list[Phase]:
        return [Phase("noisy_classifier", self.trainable_variables, self._loss)]

    def default_optimizer(self) -> Any:
        return keras.optimizers.Adam(self.learning_rate)

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        x0 = self.encode_data(x)
        batch = ops.shape(x0)[0]
        t = self.schedule.sample_timesteps(batch, self.seed_generator)  # t ~ U{1..T}
        eps = keras.random.normal(ops.shape(x0), dtype=x0.dtype, seed=self.seed_generator)
        logits = self.network_logits(self.schedule.q_sample(x0, t, eps), t, training)
        labels = ops.reshape(ops.cast(y, "int32"), (-1,))
        nll = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        hits = ops.cast(ops.equal(ops.argmax(logits, axis=-1), labels), logits.dtype)
        return ops.mean(nll), {"accuracy": ops.mean(hits)}

    # === Evaluation ===

    def accuracy_by_timestep(
        self,
        x: Any,
        y: Any,
        timesteps: Sequence[int],
        seed: int = 0,
        batch_size: int = 512,
    ) -> dict[int, float]:
        """Accuracy on clean data `x` (labels `y`) noised by q to each step in `timesteps`.

        One draw of eps per example and step (seeded: the same `seed` gives the same
        numbers). Returns `{t: accuracy}`.
        """
        owner = type(self).__name__
        x = np.asarray(x)
        self.validate_data(x)
        y = np.asarray(y)
        check_labels(owner, y, self.num_classes)
        y = y.reshape(-1).astype("int64")
        if len(y) != len(x):
            raise ValueError(f"{owner}: got {len(x)} examples and {len(y)} labels.")
        steps = np.asarray(list(timesteps))
        if steps.ndim != 1 or not steps.size:
            raise ValueError(f"{owner}: timesteps must be a non-empty list of steps.")
        self.schedule.check_timesteps(steps)
        batch_size = check_count(owner, "batch_size", batch_size)
        rng = np.random.default_rng(seed)
        predict = self._compiled("noisy_predictions", self._noisy_predictions, self.network.weights)
        result = {}
        for t in steps.astype(int).tolist():
            hits = 0
            for start in range(0, len(x), batch_size):
                x0 = np.asarray(x[start : start + batch_size], dtype="float32")
                noise = rng.standard_normal(x0.shape).astype("float32")
                t_vec = np.full((len(x0),), t, dtype="int32")
                predicted = np.asarray(ops.convert_to_numpy(predict(x0, t_vec, noise)))
                hits += int(np.sum(predicted == y[start : start + batch_size]))
            result[int(t)] = hits / len(x)
        return result

    def _noisy_predictions(self, x: Any, t: Any, noise: Any) -> Any:
        """argmax_y p(y | x_t, t) with x_t = q_sample(encode_data(x), t, noise)."""
        x_t = self.schedule.q_sample(self.encode_data(x), t, noise)
        return ops.argmax(self.network_logits(x_t, t), axis=-1)

    # === Checks ===

    def _process_tensor(self, x: Any) -> Any:
        return checked_tensor(type(self).__name__, x, self.data_shape, "x_t", self.compute_dtype)

    def _timesteps(self, t: Any, batch: Any) -> Any:
        return checked_timesteps(type(self).__name__, self.schedule, t, batch)

    def _labels(self, labels: Any, batch: int | None) -> np.ndarray:
        """Labels as int32 NumPy: a scalar (every example) or `(batch,)`."""
        owner = type(self).__name__
        labels = np.asarray(ops.convert_to_numpy(labels))
        flat = labels.reshape(-1) if labels.ndim else labels.reshape(1)
        check_labels(owner, flat, self.num_classes)
        if labels.ndim == 0:
            return labels.astype("int32")
        if labels.ndim > 2 or (labels.ndim == 2 and labels.shape[1] != 1):
            raise ValueError(f"{owner} expects labels (batch,) or an int; got {labels.shape}.")
        if batch is not None and len(flat) != batch:
            raise ValueError(f"{owner} expects {batch} labels, one per example; got {len(flat)}.")
        return flat.astype("int32")

    def validate_targets(self, y: np.ndarray | None) -> None:
        owner = type(self).__name__
        if y is None:
            raise ValueError(f"{owner} trains on (x, labels); got no labels.")
        check_labels(owner, y, self.num_classes)

    # === Export and config ===

    def export_endpoints(self) -> dict[str, Any]:
        specs = [
            keras.InputSpec(shape=(None, *self.data_shape), dtype="float32", name="x_t"),
            keras.InputSpec(shape=(None,), dtype="int32", name="t"),
        ]
        return {"logits": (lambda x_t, t: self.logits(x_t, t), specs)}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "input_shape": list(self.data_shape),
                "num_classes": self.num_classes,
                "schedule": self.schedule.kind,
                "timesteps": self.schedule.timesteps,
                "hidden_units": list(self.hidden_units),
                "filters": list(self.filters),
                "time_dim": self.time_dim,
                "data_range": None if self.data_range is None else list(self.data_range),
                "learning_rate": self.learning_rate,
                "seed": self.seed,
            }
        )
        return config


def classifier_guided_sample(
    ddpm: Any,
    classifier: NoisyClassifier,
    num: int,
    labels: Any,
    scale: float = 1.0,
    seed: int | None = None,
) -> Any:
    """`num` samples of an unconditional `DDPM` steered to `labels` by `classifier`.

    The same as `ddpm.sample(num, seed, labels=labels, classifier=classifier,
    classifier_scale=scale)`: checks that the two share the process (schedule, T, shape,
    data range), then runs Algorithm 3 with sigma_t^2 * scale * grad log p(y | x_t, t)
    added to each step's mean. Returns samples in the data space.
    """
    labels = np.asarray(labels)
    if labels.ndim:
        labels = classifier._labels(labels, check_count("classifier_guided_sample", "num", num))
    return ddpm.sample(num, seed=seed, labels=labels, classifier=classifier, classifier_scale=scale)


def check_guidance_pair(ddpm: Any, classifier: NoisyClassifier) -> None:
    """Raises `ValueError` unless `classifier` can guide the unconditional `ddpm`: the same
    schedule and T, x_t of the process's shape, the same data range."""
    theirs, ours = ddpm.schedule.get_config(), classifier.schedule.get_config()
    if theirs != ours:
        raise ValueError(
            f"The classifier's schedule {ours} is not the diffusion model's {theirs}: "
            "train the NoisyClassifier with the DDPM's schedule and timesteps."
        )
    shape = tuple(getattr(ddpm, "process_shape", ddpm.data_shape))
    if shape != classifier.data_shape:
        raise ValueError(
            f"The classifier takes x_t of shape {classifier.data_shape}; the diffusion "
            f"model's process has shape {shape}."
        )
    ranges = [None if r is None else tuple(r) for r in (ddpm.data_range, classifier.data_range)]
    if ranges[0] != ranges[1]:
        raise ValueError(
            f"The classifier's data_range {ranges[1]} is not the diffusion model's "
            f"{ranges[0]}: both must map the data to the same process space."
        )
    if getattr(ddpm, "is_conditional", False):
        raise ValueError(
            "classifier_guided_sample steers an unconditional DDPM; a class-conditional one "
            "has classifier-free guidance (sample(..., guidance=rho))."
        )


# === Helpers ===


def _label_log_prob(logits: Any, labels: np.ndarray) -> Any:
    """log softmax(logits)[y] per example; `labels` a scalar or `(batch,)` int array."""
    log_probs = ops.log_softmax(logits, axis=-1)
    mask = ops.one_hot(ops.convert_to_tensor(labels, dtype="int32"), logits.shape[-1])
    return ops.sum(ops.cast(mask, log_probs.dtype) * log_probs, axis=-1)
