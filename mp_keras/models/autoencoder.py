"""Non-linear, denoising and inpainting autoencoders (notes, section 5.2)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import Phase, PhasedModel
from mp_keras.layers.corruption import gaussian_noise, salt_and_pepper, square_mask
from mp_keras.models._checks import check_count, check_shape
from mp_keras.models.linear_autoencoder import AutoencoderMixin, squared_error

ARCHITECTURES = ("mlp", "conv")
CORRUPTIONS = ("none", "noise", "salt_and_pepper", "mask")
RECONSTRUCTIONS = ("mse", "bernoulli")


def psnr(clean: Any, estimate: Any, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio 10 log10(range^2 / MSE), in dB, over whole arrays."""
    clean = np.asarray(ops.convert_to_numpy(clean), dtype="float64")
    estimate = np.asarray(ops.convert_to_numpy(estimate), dtype="float64")
    mse = float(np.mean((clean - estimate) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


@keras.saving.register_keras_serializable(package="mp_keras")
class Autoencoder(AutoencoderMixin, PhasedModel):
    """Autoencoder x -> z = f(x) -> x_hat = g(z), optionally denoising or inpainting.

    Notes, section 5.2: the encoder f and decoder g are neural networks trained on the
    reconstruction error sum_n ||x_n - g(f(x_n))||^2. The latent space is undercomplete
    when `latent_dim` is smaller than the input size, overcomplete when larger.
    Denoising (Vincent et al., "Extracting and composing robust features with denoising
    autoencoders", ICML 2008) and inpainting (Pathak et al., "Context encoders", CVPR
    2016) train on corrupted inputs against clean targets, ||x - g(f(c(x)))||^2, so an
    overcomplete model cannot learn the identity. The corruption c (`corrupt`) is drawn
    afresh at every training step and never applied by `call`, `predict` or `evaluate`:
    those reconstruct the input as given.

    The loss `reconstruction` is per example, summed over every dimension and averaged
    over the batch: the squared error (`"mse"`, linear decoder output) or the binary
    cross-entropy of pixel intensities in [0, 1] (`"bernoulli"`, sigmoid output).

    Args:
        input_shape: tuple of ints. Shape of one example: `(height, width, channels)`
            (needed by `"conv"` and `"mask"`), or `(features,)` for an `"mlp"`.
            Defaults to `(8, 8, 1)`.
        latent_dim: int. Size of z. Defaults to `16`.
        hidden_units: tuple of ints. Widths of the encoder's hidden Dense layers
            (`"mlp"`) or filters of its stride-2 3x3 convolutions (`"conv"`); the
            decoder uses them in reverse. Defaults to `(128,)`.
        architecture: str. `"mlp"` or `"conv"`. Defaults to `"mlp"`.
        corruption: str. `"none"`, `"noise"` (additive Gaussian), `"salt_and_pepper"`
            (a fraction of the values set to 0 or 1, equally likely) or `"mask"` (one
            random square patch per image set to 0). Defaults to `"none"`.
        noise_std: float. Standard deviation of the Gaussian noise. Defaults to `0.3`.
        corruption_rate: float. Fraction of values hit by salt and pepper. Defaults to
            `0.2`.
        mask_size: int or None. Side of the square patch, in pixels; `None` is half the
            smaller image side. Defaults to `None`.
        reconstruction: str. `"mse"` or `"bernoulli"`. Defaults to `"mse"`.
        seed: int or None. Seed of the initial weights and corruption draws. Defaults
            to `None`.

    Example:
    >>> import keras
    >>> import numpy as np
    >>> model = Autoencoder((8, 8, 1), latent_dim=4, hidden_units=(16,), corruption="mask",
    ...                     mask_size=3, seed=0)
    >>> masked = model.corrupt(np.ones((1, 8, 8, 1), "float32"), seed=1)
    >>> int((keras.ops.convert_to_numpy(masked) == 0).sum())  # one 3x3 patch
    9
    >>> x = np.random.default_rng(0).random((32, 8, 8, 1)).astype("float32")
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(x, epochs=1, batch_size=16, verbose=0)
    >>> sorted(history.history), tuple(model(x[:2]).shape)
    (['loss', 'reconstruction'], (2, 8, 8, 1))
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (8, 8, 1),
        latent_dim: int = 16,
        hidden_units: Sequence[int] = (128,),
        architecture: str = "mlp",
        corruption: str = "none",
        noise_std: float = 0.3,
        corruption_rate: float = 0.2,
        mask_size: int | None = None,
        reconstruction: str = "mse",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        data_shape = tuple(int(d) for d in input_shape)
        if not data_shape or min(data_shape) < 1:
            raise ValueError(f"input_shape must be positive sizes, got {tuple(input_shape)}.")
        for name, value, options in [
            ("architecture", architecture, ARCHITECTURES),
            ("corruption", corruption, CORRUPTIONS),
            ("reconstruction", reconstruction, RECONSTRUCTIONS),
        ]:
            if value not in options:
                raise ValueError(f"{owner}: {name} must be one of {options}, got {value!r}.")
        images = len(data_shape) == 3
        if (architecture == "conv" or corruption == "mask") and not images:
            raise ValueError(
                f"{owner}: architecture={architecture!r} with corruption={corruption!r} needs "
                f"images, input_shape (height, width, channels); got {data_shape}."
            )
        if noise_std <= 0:
            raise ValueError(f"{owner}: noise_std must be > 0, got {noise_std!r}.")
        if not 0 < corruption_rate <= 1:
            raise ValueError(
                f"{owner}: corruption_rate must be in (0, 1], got {corruption_rate!r}."
            )
        if mask_size is None:
            mask_size = max(1, min(data_shape[:2]) // 2) if images else 1
        mask_size = check_count(owner, "mask_size", mask_size)
        if images and mask_size > min(data_shape[:2]):
            raise ValueError(
                f"{owner}: mask_size {mask_size} does not fit in images of {data_shape[:2]}."
            )
        super().__init__(**kwargs)

        # === Config ===
        self.data_shape = data_shape
        self.latent_dim = check_count(owner, "latent_dim", latent_dim)
        self.hidden_units = tuple(check_count(owner, "hidden_units", u) for u in hidden_units)
        self.architecture = architecture
        self.corruption = corruption
        self.noise_std = float(noise_std)
        self.corruption_rate = float(corruption_rate)
        self.mask_size = mask_size
        self.reconstruction = reconstruction
        self.seed = seed

        # === Layers ===
        seeds = iter(range(seed or 0, (seed or 0) + 1000))

        def seeded(layer: type, *args: Any, **layer_kwargs: Any) -> keras.layers.Layer:
            init = keras.initializers.GlorotUniform(None if seed is None else next(seeds))
            return layer(*args, kernel_initializer=init, **layer_kwargs)

        build = self._mlp if architecture == "mlp" else self._conv
        self.encoder, self.decoder = build(seeded)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.track("reconstruction")
        self.built = True

    def _mlp(self, seeded: Any) -> tuple[keras.Sequential, keras.Sequential]:
        dense = keras.layers.Dense
        encoder = keras.Sequential(
            [keras.Input(self.data_shape), keras.layers.Flatten()]
            + [seeded(dense, u, activation="relu") for u in self.hidden_units]
            + [seeded(dense, self.latent_dim)],
            name="encoder",
        )
        decoder = keras.Sequential(
            [keras.Input((self.latent_dim,))]
            + [seeded(dense, u, activation="relu") for u in reversed(self.hidden_units)]
            + [seeded(dense, math.prod(self.data_shape)), keras.layers.Reshape(self.data_shape)],
            name="decoder",
        )
        return encoder, decoder

    def _conv(self, seeded: Any) -> tuple[keras.Sequential, keras.Sequential]:
        height, width, channels = self.data_shape
        # Each stride-2 "same" convolution halves the size, rounding up; the decoder's
        # transposed convolutions double it, and a crop removes what rounding added.
        small = [height, width]
        for _ in self.hidden_units:
            small = [-(-s // 2) for s in small]
        scale = 2 ** len(self.hidden_units)
        crop = ((0, small[0] * scale - height), (0, small[1] * scale - width))
        last = self.hidden_units[-1] if self.hidden_units else channels
        layers = keras.layers
        conv = dict(kernel_size=3, padding="same")
        down = dict(strides=2, activation="relu", **conv)
        encoder = keras.Sequential(
            [keras.Input(self.data_shape)]  # (batch, height, width, channels)
            + [seeded(layers.Conv2D, f, **down) for f in self.hidden_units]
            + [layers.Flatten(), seeded(layers.Dense, self.latent_dim)],
            name="encoder",
        )
        decoder = keras.Sequential(
            [keras.Input((self.latent_dim,))]
            + [seeded(layers.Dense, small[0] * small[1] * last, activation="relu")]
            + [layers.Reshape((small[0], small[1], last))]  # (batch, h / 2^L, w / 2^L, last)
            + [seeded(layers.Conv2DTranspose, f, **down) for f in reversed(self.hidden_units)]
            + [layers.Cropping2D(crop), seeded(layers.Conv2D, channels, **conv)],
            name="decoder",
        )
        return encoder, decoder

    # === Corruption ===

    def corrupt(self, x: Any, seed: Any = None) -> Any:
        """The corrupted input c(x) that training reconstructs x from, shape `x.shape`.

        `seed` is an int (the same seed gives the same corruption) or `None` (the
        model's `SeedGenerator`, a new draw each call). With `corruption="none"`, x.
        """
        check_shape(type(self).__name__, x, self.data_shape)
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        seed = self.seed_generator if seed is None else seed
        if self.corruption == "noise":
            return gaussian_noise(x, self.noise_std, seed)
        if self.corruption == "salt_and_pepper":
            return salt_and_pepper(x, self.corruption_rate, seed)
        if self.corruption == "mask":
            height, width = self.data_shape[:2]
            mask = square_mask(ops.shape(x)[0], height, width, self.mask_size, seed, x.dtype)
            return x * (1.0 - mask)
        return x

    # === Autoencoder ===

    def encode(self, x: Any, training: bool = False) -> Any:
        """z = f(x), shape `(batch, latent_dim)`."""
        check_shape(type(self).__name__, x, self.data_shape)
        return self.encoder(x, training=training)

    def decode(self, z: Any, training: bool = False) -> Any:
        """x_hat = g(z), shape `(batch, *input_shape)` (probabilities if `"bernoulli"`)."""
        check_shape(type(self).__name__, z, (self.latent_dim,), what="latents")
        out = self.decoder(z, training=training)
        return ops.sigmoid(out) if self.reconstruction == "bernoulli" else out

    def call(self, inputs: Any, training: bool = False) -> Any:
        """The reconstruction g(f(inputs)) of the input as given (never corrupted)."""
        return self.decode(self.encode(inputs, training=training), training=training)

    def figure_rows(self, x: Any, seed: int = 0) -> dict[str, np.ndarray]:
        """Rows of a figure: corrupted inputs (if any), their reconstructions, clean x.

        In [0, 1] for `mp_keras.plots.save_image_grid(model.figure_rows(x), path)`.
        """
        x = np.asarray(ops.convert_to_numpy(x), dtype="float32")
        rows = {}
        if self.corruption != "none":
            x_in = ops.convert_to_numpy(self.corrupt(x, seed=seed))
            rows["corrupted"] = np.clip(x_in, 0.0, 1.0)
        else:
            x_in = x
        rows["reconstructed"] = np.clip(ops.convert_to_numpy(self(x_in)), 0.0, 1.0)
        rows["clean"] = x
        return rows

    # === Training ===

    def phases(self) -> list[Phase]:
        return [Phase("reconstruction", self.trainable_variables, self._loss)]

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        x_in = self.corrupt(x) if training else x
        out = self.decoder(self.encode(x_in, training=training), training=training)
        if self.reconstruction == "bernoulli":
            # -[x log s(l) + (1-x) log(1-s(l))] = softplus(l) - x l, stable for any logit.
            per_dim = ops.reshape(ops.softplus(out) - x * out, (ops.shape(x)[0], -1))
            per_example = ops.sum(per_dim, axis=-1)
        else:
            per_example = squared_error(x, out)
        reconstruction = ops.mean(per_example)
        return reconstruction, {"reconstruction": reconstruction}

    # === Checks ===

    def validate_data(self, x: np.ndarray) -> None:
        super().validate_data(x)
        if self.reconstruction == "bernoulli" and (np.min(x) < 0 or np.max(x) > 1):
            raise ValueError(
                f"{type(self).__name__} with reconstruction='bernoulli' expects values in "
                f"[0, 1]; got values in [{np.min(x):g}, {np.max(x):g}]. Rescale the data or "
                "use reconstruction='mse'."
            )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "input_shape": list(self.data_shape),
                "latent_dim": self.latent_dim,
                "hidden_units": list(self.hidden_units),
                "architecture": self.architecture,
                "corruption": self.corruption,
                "noise_std": self.noise_std,
                "corruption_rate": self.corruption_rate,
                "mask_size": self.mask_size,
                "reconstruction": self.reconstruction,
                "seed": self.seed,
            }
        )
        return config
