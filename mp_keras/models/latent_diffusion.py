"""Latent diffusion: a DDPM on the latents of a frozen autoencoder (notes, section 9.5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.diffusion import guided_noise
from mp_keras.engine import Phase
from mp_keras.engine.model import _first_batch
from mp_keras.models._checks import check_count, check_shape, check_values
from mp_keras.models._ddpm_inputs import _is_zero
from mp_keras.models.ddpm import DDPM

_ADAPT_BATCH = 1024  # examples encoded at once by `adapt`
_ADAPT_MAX = 20000  # `fit`'s automatic `adapt` uses at most this many examples
_MIN_SCALE = 1e-6


def _latent_dim(owner: str, autoencoder: Any) -> int:
    for name in ("encode", "decode", "latent_dim", "data_shape"):
        if not hasattr(autoencoder, name):
            raise ValueError(
                f"{owner} expects an autoencoder with encode(x), decode(z), latent_dim and "
                f"data_shape (a chapter-5 VAE or Autoencoder); got {type(autoencoder).__name__} "
                f"without {name!r}."
            )
    return check_count(owner, "autoencoder.latent_dim", autoencoder.latent_dim)


def nested_config(model: Any) -> dict[str, Any]:
    """`serialize_keras_object(model)` of a frozen nested model, without its compile
    config (a frozen model is not trained again, and recompiling one that has no
    trainable variables would fail)."""
    config = dict(keras.saving.serialize_keras_object(model))
    config.pop("compile_config", None)
    return config


def freeze(model: Any) -> None:
    """Sets `model` and every one of its weights non-trainable (a model deserialized with
    `trainable=False` may keep trainable sub-layers, so the weights are set one by one)."""
    model.trainable = False
    for variable in model.weights:
        variable.trainable = False


@keras.saving.register_keras_serializable(package="mp_keras")
class LatentDiffusion(DDPM):
    """DDPM in the latent space of a frozen, pretrained autoencoder.

    Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models", CVPR
    2022 (notes, section 9.5). An autoencoder (a chapter-5 `VAE`, whose posterior mean is
    the latent, or an `Autoencoder`) is trained first and then frozen; the diffusion
    process and an `MLPDenoiser` run on its latent vectors z = E(x), which are far
    smaller than the images, and a sample is the decoder's output D(z_0).

    The latents are standardised per dimension, z' = (E(x) - shift) / scale, so that the
    data of the process has about unit variance like the N(0, I) it is noised towards
    (Rombach et al. rescale by one factor; here each dimension has its own). `shift` and
    `scale` are non-trainable weights (saved with the model) set by `adapt(x)`, the
    latents' mean and standard deviation over `x`; `fit` calls `adapt` on its data (all
    of a NumPy array, at most 20,000 examples, or the first batch of a `tf.data.Dataset`)
    when the model was never adapted, and refuses a source it cannot peek at (call
    `adapt` first). `encode_data(x)` = z' and `decode_data(z')` = D(z' * scale + shift),
    clipped to `output_range`.

    The autoencoder is an argument, not a part that trains: it is set `trainable=False`,
    its weights are outside the training phase, and `get_config` serialises it as a
    nested Keras object, so a `.keras` file restores it with its weights.

    Everything else is the DDPM: class-conditional training (`num_classes`) with
    classifier-free guidance, DDPM/DDIM sampling (`sample` returns decoded images), and
    `variational_bound` / `log_prob`, which here bound the density of the standardised
    latents z' (nats per example, not of the images: `density_metrics` names them
    `latent_nll_bound` and `latent_bits_per_dim_bound`).

    Export: `denoise_step` (one step of Algorithm 3 on latents, as the DDPM's) and
    `decode` (standardised latents -> images); an app loops the step from
    z_T ~ N(0, I) and decodes z_0.

    Args:
        autoencoder: a `VAE` or `Autoencoder` (any Keras model with `encode(x)`, which
            may return `(mean, log_var)`, `decode(z)`, `latent_dim` and `data_shape`),
            trained beforehand.
        hidden_units: tuple of ints. Hidden widths of the latent MLP denoiser. Defaults
            to `(128, 128, 128)`.
        time_dim: int or None. Size of the step embedding; None: 32. Defaults to `None`.
        schedule: str. `"cosine"` or `"linear"`. Defaults to `"cosine"`.
        timesteps: int. T. Defaults to `1000`.
        variance: str. `"beta"` or `"posterior"`. Defaults to `"beta"`.
        num_classes: int or None. Classes of a class-conditional model. Defaults to
            `None`.
        condition_dropout: float. Probability of the null label in training. Defaults
            to `0.1`.
        condition_dim: int or None. Size of the label embedding. Defaults to `None`.
        output_range: pair of floats or None. Decoded samples are clipped to it; None
            for no clipping. Defaults to `(0.0, 1.0)`.
        ema_momentum: float or None. Momentum of the weights' moving average. Defaults
            to `0.999`.
        learning_rate: float. Adam's rate. Defaults to `1e-3`.
        seed: int or None. Seed of the model's random draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> from mp_keras.models import Autoencoder
    >>> x = np.random.default_rng(0).random((64, 8, 8, 1)).astype("float32")
    >>> ae = Autoencoder((8, 8, 1), latent_dim=4, hidden_units=(16,), seed=0)
    >>> model = LatentDiffusion(ae, hidden_units=(16,), timesteps=10, ema_momentum=None,
    ...                         seed=0)
    >>> model.compile()
    >>> sorted(model.fit(x, epochs=1, batch_size=32, verbose=0).history)  # adapts first
    ['loss']
    >>> tuple(model.sample(3, seed=1).shape), model.process_shape
    ((3, 8, 8, 1), (4,))
    """

    def __init__(
        self,
        autoencoder: Any,
        hidden_units: Sequence[int] = (128, 128, 128),
        time_dim: int | None = None,
        schedule: str = "cosine",
        timesteps: int = 1000,
        variance: str = "beta",
        num_classes: int | None = None,
        condition_dropout: float = 0.1,
        condition_dim: int | None = None,
        output_range: Sequence[float] | None = (0.0, 1.0),
        ema_momentum: float | None = 0.999,
        learning_rate: float = 1e-3,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        latent_dim = _latent_dim(owner, autoencoder)
        if output_range is not None:
            output_range = (float(output_range[0]), float(output_range[1]))
            if not output_range[0] < output_range[1]:
                raise ValueError(
                    f"{owner}: output_range must be (lo, hi) with lo < hi, got {output_range!r}."
                )
        super().__init__(
            input_shape=(latent_dim,),
            network="mlp",
            hidden_units=hidden_units,
            time_dim=time_dim,
            schedule=schedule,
            timesteps=timesteps,
            variance=variance,
            num_classes=num_classes,
            condition_dropout=condition_dropout,
            condition_dim=condition_dim,
            data_range=None,
            num_levels=None,
            ema_momentum=ema_momentum,
            learning_rate=learning_rate,
            seed=seed,
            **kwargs,
        )
        # === Config ===
        self.latent_dim = latent_dim
        self.data_shape = tuple(int(d) for d in autoencoder.data_shape)  # images
        self.output_range = output_range

        # === The frozen autoencoder ===
        freeze(autoencoder)
        self.autoencoder = autoencoder
        self.latent_shift = self.add_weight(
            shape=(latent_dim,), initializer="zeros", trainable=False, name="latent_shift"
        )
        self.latent_scale = self.add_weight(
            shape=(latent_dim,), initializer="ones", trainable=False, name="latent_scale"
        )
        self.adapted = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="adapted"
        )

    @property
    def process_shape(self) -> tuple[int, ...]:
        """`(latent_dim,)`: the process runs on the autoencoder's latents."""
        return (self.latent_dim,)

    @property
    def is_adapted(self) -> bool:
        """Whether `adapt` has set the latents' shift and scale."""
        return bool(ops.convert_to_numpy(self.adapted) > 0)

    # === Latents ===

    def latents(self, x: Any) -> Any:
        """The autoencoder's latent of images `x`: E(x), the posterior mean of a VAE."""
        check_shape(type(self).__name__, x, self.data_shape)
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        z = self.autoencoder.encode(x)
        if isinstance(z, (tuple, list)):  # a VAE: (mean, log_var)
            z = z[0]
        return ops.stop_gradient(z)

    def adapt(self, x: Any, batch_size: int = _ADAPT_BATCH) -> None:
        """Sets `latent_shift` and `latent_scale` to the mean and std of the latents of `x`."""
        owner = type(self).__name__
        x = np.asarray(ops.convert_to_numpy(x))
        check_shape(owner, x, self.data_shape)
        check_values(owner, x)
        if len(x) < 2:
            raise ValueError(f"{owner}.adapt needs at least 2 examples; got {len(x)}.")
        batch_size = check_count(owner, "batch_size", batch_size)
        z = np.concatenate(
            [
                np.asarray(ops.convert_to_numpy(self.latents(x[i : i + batch_size])), "float64")
                for i in range(0, len(x), batch_size)
            ]
        )
        self.latent_shift.assign(z.mean(axis=0).astype("float32"))
        self.latent_scale.assign(np.maximum(z.std(axis=0), _MIN_SCALE).astype("float32"))
        self.adapted.assign(1.0)

    def encode_data(self, x: Any) -> Any:
        """Images -> standardised latents (E(x) - shift) / scale, `(batch, latent_dim)`."""
        return (self.latents(x) - self.latent_shift) / self.latent_scale

    def decode_data(self, z: Any) -> Any:
        """Standardised latents -> images D(z * scale + shift), clipped to `output_range`."""
        check_shape(type(self).__name__, z, self.process_shape, what="latents")
        z = ops.convert_to_tensor(z, dtype=self.compute_dtype)
        images = self.autoencoder.decode(z * self.latent_scale + self.latent_shift)
        if self.output_range is not None:
            images = ops.clip(images, *self.output_range)
        return images

    def decode(self, z: Any) -> Any:
        """The `decode` export endpoint: `decode_data` of standardised latents."""
        return self.decode_data(z)

    def sampling_variables(self) -> list[Any]:
        return [*super().sampling_variables(), self.latent_shift, self.latent_scale]

    # === The network ===

    def _guided(self, x_t: Any, t: Any, condition: Any, guidance: Any) -> Any:
        # DDPM's, with rho broadcast over the process shape (not the image's).
        eps = self.network_noise(x_t, t, condition)
        if condition is None or _is_zero(guidance):
            return eps
        unconditional = self.network_noise(x_t, t, self.null_condition(ops.shape(x_t)[0]))
        if not isinstance(guidance, (int, float)):
            guidance = ops.reshape(ops.cast(guidance, eps.dtype), (-1, 1))
        return guided_noise(eps, unconditional, guidance)

    def call(self, inputs: Any, training: bool = False) -> Any:
        """`[z_t, t]` or `[z_t, t, labels]` -> eps_hat on latents; images x alone are read
        as z_1, i.e. `predict_noise(encode_data(x), 1)`, `(batch, latent_dim)`."""
        if isinstance(inputs, (list, tuple)):
            return super().call(inputs, training=training)
        z = self.encode_data(inputs)
        t = ops.ones_like(z[:, 0], dtype="int32")  # (batch,), symbolic batches too
        condition = None
        if self.is_conditional:  # the null label
            condition = self.embed_condition(t * self.num_classes)
        return self.network_noise(z, t, condition, training=training)

    # === Training ===

    def phases(self) -> list[Phase]:
        variables = list(self.network.trainable_variables)
        if self.label_embedding is not None:
            variables += list(self.label_embedding.trainable_variables)
        return [Phase("ddpm", variables, self._loss)]

    def fit(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        """`DDPM.fit`, after `adapt` on the data if the model was never adapted."""
        if not self.is_adapted:
            inputs, _ = _first_batch(x, y)
            if inputs is None:
                raise ValueError(
                    f"{type(self).__name__} standardises the latents with statistics of the "
                    "data, but fit cannot read this data source; call model.adapt(images) "
                    "first."
                )
            self.validate_data(inputs)
            self.adapt(inputs[:_ADAPT_MAX])
        return super().fit(x, y, *args, **kwargs)

    def density_metrics(
        self, x: Any, y: Any = None, batch_size: int = 256, **kwargs: Any
    ) -> dict[str, float]:
        """The DDPM's bounds, renamed: they bound the density of the standardised latents."""
        metrics = super().density_metrics(x, y, batch_size, **kwargs)
        nll = metrics["nll_bound"]
        return {
            "latent_nll_bound": nll,
            "latent_bits_per_dim_bound": float(nll / (self.latent_dim * np.log(2.0))),
        }

    @property
    def num_dims(self) -> int:
        """Dimensions of the modelled variable, the latent (the "dim" of bits/dim)."""
        return self.latent_dim

    # === Export ===

    def export_endpoints(self) -> dict[str, Any]:
        endpoints = dict(super().export_endpoints())
        spec = keras.InputSpec(shape=(None, self.latent_dim), dtype="float32", name="z")
        endpoints["decode"] = (self.decode, [spec])
        return endpoints

    def export_samples(self, name: str, num: int, seed: int) -> list[np.ndarray]:
        if name == "decode":
            rng = np.random.default_rng(seed)
            return [rng.standard_normal((num, self.latent_dim)).astype("float32")]
        return super().export_samples(name, num, seed)

    def export_metadata(self) -> dict[str, Any]:
        metadata = super().export_metadata()
        metadata.update(
            {
                "loop": "z = N(0, I) of shape (n, latent_dim); for t in T..1: "
                "z = denoise_step(z, t, noise ~ N(0, I)); images = decode(z)",
                "latent_dim": self.latent_dim,
                "image_shape": list(self.data_shape),
                "output_range": None if self.output_range is None else list(self.output_range),
            }
        )
        metadata.pop("data_range", None)
        return metadata

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LatentDiffusion:
        config = dict(config)
        config["autoencoder"] = keras.saving.deserialize_keras_object(config["autoencoder"])
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for name in ("input_shape", "network", "filters", "groups", "data_range", "num_levels"):
            config.pop(name, None)
        config.update(
            {
                "autoencoder": nested_config(self.autoencoder),
                "output_range": None if self.output_range is None else list(self.output_range),
            }
        )
        return config
