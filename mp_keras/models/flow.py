"""Normalizing flows: an invertible map of a standard normal (notes, chapter 7).

`Flow` is any chain of bijectors (mp_keras/layers/bijectors.py) over a standard normal
base. Flows with a fixed architecture are its subclasses, one file each: `Flow2D`
(flow2d.py: RealNVP couplings for 2-D toy data) and `NICE` (nice.py: additive couplings
and a diagonal scaling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import CompiledCache, Phase, PhasedModel
from mp_keras.layers.bijectors import Chain, Dequantize, LogitTransform
from mp_keras.models._checks import check_count, check_no_targets, check_shape, check_values
from mp_keras.models.density import LN2, DensityModel, batched_mean

LOG_2PI = math.log(2.0 * math.pi)


@keras.saving.register_keras_serializable(package="mp_keras")
class Flow(DensityModel, PhasedModel):
    """A normalizing flow x = f(z), z ~ N(0, I), with f a chain of bijectors.

    Rezende & Mohamed, "Variational Inference with Normalizing Flows", ICML 2015; notes,
    7.1-7.4. By the change of variables,

        log p(x) = log N(f^-1(x); 0, I) + log|det df^-1/dx|,

    summed over the bijectors of the chain (7.3); training maximises it exactly (7.4):
    the loss is the NLL in nats per example, and `bits_per_dim` is logged.
    `sample(num)` draws z ~ N(0, T^2 I) (temperature T) and returns f(z).
    `encode(x)` (and `call(x)`) returns the latent z = f^-1(x), `decode(z)` the data f(z).

    With `num_levels`, the data are discrete, k / (num_levels - 1) in [0, 1] (add a
    `Dequantize` bijector last in the chain): training adds uniform noise of one bin's
    width, and the logged `bits_per_dim` is that of the discrete data,
    (NLL + D log(num_levels - 1)) / (D ln 2).

    Args:
        bijectors: list of bijectors (or their serialised configs), in the latent-to-data
            order: `Chain(bijectors).forward` is f.
        data_shape: tuple of ints. Shape of one example.
        num_levels: int or None. Number of values of discrete data. Defaults to None
            (continuous data).
        seed: int or None. Seed of the sampling and dequantisation noise. Defaults to None.

    Example:
    >>> from mp_keras.layers.bijectors import AffineCoupling, alternating_mask
    >>> couplings = [AffineCoupling(alternating_mask(2, i % 2), (8,)) for i in range(2)]
    >>> model = Flow(couplings, data_shape=(2,), seed=0)
    >>> x = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
    >>> tuple(model.log_prob(x).shape), tuple(model.sample(3, seed=1).shape)
    ((4,), (3, 2))
    """

    def __init__(
        self,
        bijectors: Sequence[Any],
        data_shape: Sequence[int],
        num_levels: int | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__

        # === Config ===
        self.data_shape = tuple(check_count(owner, "data_shape", d) for d in data_shape)
        if not self.data_shape:
            raise ValueError(f"{owner}: data_shape must name at least one dimension.")
        if num_levels is not None and (check_count(owner, "num_levels", num_levels) < 2):
            raise ValueError(f"{owner}: num_levels must be >= 2 or None; got {num_levels!r}.")
        self.num_levels = None if num_levels is None else int(num_levels)
        self.seed = seed

        # === Layers ===
        self.chain = Chain(bijectors, name="chain")
        # A symbolic pass builds every bijector and gives the latent shape (a squeeze
        # changes it) without computing anything.
        z, _ = self.chain.inverse(keras.KerasTensor((None, *self.data_shape)))
        self.latent_shape = tuple(int(d) for d in z.shape[1:])
        if math.prod(self.latent_shape) != self.num_dims:
            raise ValueError(f"{owner}: the bijectors change the number of dimensions.")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._compiled_fns = CompiledCache()  # log_prob and sample, traced once per shape
        self.track("bits_per_dim")
        self.built = True

    # === Density ===

    def call(self, inputs: Any, training: bool = False) -> Any:
        """The latent z = f^-1(x), shape `(batch, *latent_shape)`."""
        self._check(inputs)
        return self.chain.inverse(ops.convert_to_tensor(inputs, dtype=self.compute_dtype))[0]

    def log_prob(self, x: Any) -> Any:
        """log N(f^-1(x); 0, I) + log|det df^-1/dx| per example, in nats, `(batch,)`.

        Compiled for inference (no gradients); training differentiates `_log_prob`.
        """
        self._check(x)
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        return self._compiled_fns("log_prob", self._log_prob, self.chain.variables)(x)

    def _log_prob(self, x: Any, training: bool = False) -> Any:
        self._check(x)
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        z, log_det = self.chain.inverse(x, training=training)  # ActNorm initialises in training
        base = -0.5 * ops.sum(ops.reshape(z * z, (-1, self.num_dims)), axis=1)
        return base - 0.5 * self.num_dims * LOG_2PI + log_det

    def sample(self, num: int, seed: int | None = None, temperature: float = 1.0) -> Any:
        """x = f(z) for z ~ N(0, T^2 I): `num` examples, shape `(num, *data_shape)`."""
        num = check_count(type(self).__name__, "num", num)
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be positive; got {temperature!r}.")
        z = keras.random.normal(
            (num, *self.latent_shape),
            stddev=float(temperature),
            dtype=self.compute_dtype,
            seed=self.seed_generator if seed is None else seed,
        )
        return self._compiled_fns("sample", self._forward, self.chain.variables)(z)

    def _forward(self, z: Any) -> Any:
        return self.chain.forward(z)[0]

    def encode(self, x: Any) -> Any:
        """The latent z = f^-1(x) of data `x`, shape `(batch, *latent_shape)` (as `call`)."""
        return self(x)

    def decode(self, z: Any) -> Any:
        """The data x = f(z) of latents `z` `(batch, *latent_shape)`, e.g. an interpolation.

        `decode(encode(x))` is `x` up to float32 rounding; `sample` is `decode` of
        normal draws.
        """
        z = ops.convert_to_tensor(z, dtype=self.compute_dtype)
        check_shape(type(self).__name__, z, self.latent_shape, what="latents")
        return self._compiled_fns("sample", self._forward, self.chain.variables)(z)

    def density_metrics(self, x: Any, y: Any = None, batch_size: int = 256) -> dict[str, float]:
        """`nll` and `bits_per_dim`; for discrete data, of the data's levels (see below).

        With `num_levels`, one draw of the training's uniform noise (seeded, so the
        numbers repeat) dequantises `x`, and the NLL of the levels is bounded by
        E[-log p(x + noise)] + D log(num_levels - 1) (Theis et al. 2016). `nll(x)` and
        `bits_per_dim(x)` stay those of the density at `x` itself.
        """
        if self.num_levels is None:
            return super().density_metrics(x, y, batch_size)
        x = np.asarray(ops.convert_to_numpy(x), dtype="float32")
        self.validate_data(x)
        noise = (np.random.default_rng(0).random(x.shape) - 0.5) / (self.num_levels - 1)
        nll = -batched_mean(self.log_prob, (x + noise).astype("float32"), batch_size)
        nll += self.num_dims * math.log(self.num_levels - 1)
        return {"nll": nll, "bits_per_dim": nll / (self.num_dims * LN2)}

    # === Training ===

    def phases(self) -> list[Phase]:
        return [Phase("nll", self.trainable_variables, self._loss)]

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        dims = self.num_dims
        if self.num_levels is None:
            nll = -ops.mean(self._log_prob(x, training=training))
            return nll, {"bits_per_dim": nll / (dims * LN2)}
        # Uniform dequantisation: a bin of width 1 / (L - 1) around each level.
        u = keras.random.uniform(ops.shape(x), dtype=x.dtype, seed=self.seed_generator)
        nll = -ops.mean(self._log_prob(x + (u - 0.5) / (self.num_levels - 1), training=training))
        discrete = nll + dims * math.log(self.num_levels - 1)
        return nll, {"bits_per_dim": discrete / (dims * LN2)}

    # === Checks ===

    def _check(self, x: Any) -> None:
        check_shape(type(self).__name__, x, self.data_shape)

    def validate_data(self, x: np.ndarray) -> None:
        owner = type(self).__name__
        self._check(x)
        check_values(owner, x)
        if self.num_levels is not None and (np.min(x) < 0 or np.max(x) > 1):
            raise ValueError(
                f"{owner} models discrete data in [0, 1] ({self.num_levels} levels); got "
                f"values in [{float(np.min(x))}, {float(np.max(x))}]."
            )

    def validate_targets(self, y: np.ndarray | None) -> None:
        check_no_targets(type(self).__name__, y)

    # === Export ===

    def export_endpoints(self) -> dict[str, Any]:
        z_spec = keras.InputSpec(shape=(None, *self.latent_shape), dtype="float32")
        x_spec = keras.InputSpec(shape=(None, *self.data_shape), dtype="float32")
        return {
            "sample": (self._forward, [z_spec]),
            "log_prob": (self._log_prob, [x_spec]),
        }

    def export_samples(self, name: str, num: int, seed: int) -> list[np.ndarray]:
        """Latents for `sample`; data (on the grid, for discrete data) for `log_prob`."""
        rng = np.random.default_rng(seed)
        if name == "sample":
            return [rng.normal(size=(num, *self.latent_shape)).astype("float32")]
        if self.num_levels is None:
            return [rng.normal(size=(num, *self.data_shape)).astype("float32")]
        levels = rng.integers(0, self.num_levels, (num, *self.data_shape))
        return [(levels / (self.num_levels - 1)).astype("float32")]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "bijectors": [keras.saving.serialize_keras_object(b) for b in self.chain.bijectors],
                "data_shape": list(self.data_shape),
                "num_levels": self.num_levels,
                "seed": self.seed,
            }
        )
        return config


# === Shared by the image architectures (NICE, RealNVP, Glow) ===


def image_flow_arguments(
    owner: str,
    input_shape: Sequence[int],
    hidden_units: Sequence[int] | int,
    scale: float,
    squeezes: int,
) -> tuple[tuple[int, ...], tuple[int, ...], float]:
    """Checked `(input_shape, hidden_units, scale)` of an image flow with `squeezes` squeezes.

    Raises `ValueError` unless the shape is (H, W, C) with H and W divisible by
    2 ** squeezes, the hidden units are positive counts and the scale bound is positive.
    """
    shape = tuple(check_count(owner, "input_shape", d) for d in input_shape)
    if len(shape) != 3:
        raise ValueError(f"{owner} models images (height, width, channels); got {shape}.")
    factor = 2**squeezes
    if shape[0] % factor or shape[1] % factor:
        raise ValueError(
            f"{owner} squeezes the image {squeezes} times, so needs a height and width "
            f"divisible by {factor}: input_shape (H, W, C) with H % {factor} == W % {factor} "
            f"== 0; got {shape}."
        )
    if isinstance(hidden_units, (int, np.integer)):
        hidden_units = (hidden_units,)
    hidden = tuple(check_count(owner, "hidden_units", u) for u in hidden_units)
    if not float(scale) > 0:
        raise ValueError(f"{owner}: scale must be positive; got {scale!r}.")
    return shape, hidden, float(scale)


def discrete_data_end(num_levels: int | None, alpha: float) -> list[Any]:
    """The data end of an image flow's chain: none for continuous data, else the logit
    transform and the dequantisation of `num_levels` levels (latent to data order)."""
    if num_levels is None:
        return []
    return [LogitTransform(alpha, name="logit"), Dequantize(num_levels)]


def architecture_config(config: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A `Flow` config made that of an architecture: no `bijectors`, `input_shape`."""
    config = dict(config)
    config.pop("bijectors")
    config["input_shape"] = config.pop("data_shape")
    config.update(fields)
    return config
