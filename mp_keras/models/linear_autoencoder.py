"""Linear autoencoder and its closed-form optimum, PCA (notes, section 5.1)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import Phase, PhasedModel
from mp_keras.models._checks import check_count, check_no_targets, check_shape, check_values


def squared_error(x: Any, reconstruction: Any) -> Any:
    """||x - x_hat||^2 per example (summed over every dimension), shape `(batch,)`."""
    x = ops.cast(x, reconstruction.dtype)
    diff = ops.reshape(x - reconstruction, (ops.shape(x)[0], -1))
    return ops.sum(ops.square(diff), axis=-1)


class AutoencoderMixin:
    """What the autoencoders share: input checks, `reconstruction_error`, export.

    Subclasses define `data_shape`, `latent_dim`, `encode`, `decode` and `call`; they
    learn from x alone (targets are refused).
    """

    data_shape: tuple[int, ...]
    latent_dim: int

    def reconstruction_error(self, x: Any, batch_size: int = 256) -> float:
        """Mean over the examples of `x` of ||x - model(x)||^2, as a Python float."""
        x = np.asarray(ops.convert_to_numpy(x), dtype="float32")
        total = 0.0
        for start in range(0, len(x), batch_size):
            part = x[start : start + batch_size]
            errors = ops.convert_to_numpy(squared_error(part, self(part)))
            total += float(np.sum(errors, dtype=np.float64))
        return total / max(len(x), 1)

    def validate_data(self, x: np.ndarray) -> None:
        check_shape(type(self).__name__, x, self.data_shape)
        check_values(type(self).__name__, x)

    def validate_inputs(self, x: np.ndarray) -> None:
        AutoencoderMixin.validate_data(self, x)  # any finite values (noisy inputs too)

    def validate_targets(self, y: np.ndarray | None) -> None:
        check_no_targets(type(self).__name__, y)

    def export_endpoints(self) -> dict[str, Any]:
        x_spec = keras.InputSpec(shape=(None, *self.data_shape), dtype="float32")
        z_spec = keras.InputSpec(shape=(None, self.latent_dim), dtype="float32")
        return {
            "reconstruct": (lambda x: self.call(x), [x_spec]),
            "encode": (lambda x: self.encode(x), [x_spec]),
            "decode": (lambda z: self.decode(z), [z_spec]),
        }


@keras.saving.register_keras_serializable(package="mp_keras")
class LinearAutoencoder(AutoencoderMixin, PhasedModel):
    """Linear autoencoder: z = W_e (x - b), x_hat = W_d z + b (notes, section 5.1).

    Baldi & Hornik, "Neural networks and principal component analysis", 1989. With a
    linear encoder f and decoder g, the minimiser of the reconstruction error
    sum_n ||x_n - g(f(x_n))||^2 is the projection of principal component analysis: the
    decoder's columns span the top-`latent_dim` principal subspace of the data, and the
    error is the sum of the discarded eigenvalues of the data's scatter matrix. W_e is
    `(latent_dim, n)` and W_d `(n, latent_dim)` for n = prod(input_shape), two Dense
    layers without bias or activation; the bias b is shared by encoder and decoder
    (centring, then un-centring). `from_pca` builds that optimum in closed form
    (W_e = U_k^T, W_d = U_k, b = mean); `fit` finds it by gradient descent.

    Training minimises `reconstruction`, the squared error summed over the dimensions of
    an example and averaged over the batch (logged under that name; it is also `loss`).

    Args:
        input_shape: tuple of ints. Shape of one example, e.g. `(8, 8, 1)` or `(64,)`;
            examples are flattened to vectors of `prod(input_shape)` values.
        latent_dim: int. Size of z, the number of principal components kept.
            Defaults to `2`.
        seed: int or None. Seed of the initial weights. Defaults to `None`.

    Example:
    >>> import keras
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(100, 6)).astype("float32")
    >>> pca = LinearAutoencoder.from_pca(x, latent_dim=6)  # every component: exact
    >>> bool(np.allclose(keras.ops.convert_to_numpy(pca(x)), x, atol=1e-4))
    True
    >>> model = LinearAutoencoder(input_shape=(6,), latent_dim=2, seed=0)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(x, epochs=1, batch_size=50, verbose=0)
    >>> sorted(history.history), tuple(model.encode(x[:3]).shape)
    (['loss', 'reconstruction'], (3, 2))
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (8, 8, 1),
        latent_dim: int = 2,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        data_shape = tuple(int(d) for d in input_shape)
        if not data_shape or min(data_shape) < 1:
            raise ValueError(f"input_shape must be positive sizes, got {tuple(input_shape)}.")
        latent_dim = check_count("LinearAutoencoder", "latent_dim", latent_dim)
        super().__init__(**kwargs)

        # === Config ===
        self.data_shape = data_shape
        self.latent_dim = latent_dim
        self.seed = seed
        n = math.prod(self.data_shape)

        # === Layers ===
        decoder_seed = None if seed is None else seed + 1
        self.encoder = keras.layers.Dense(
            self.latent_dim,
            use_bias=False,
            kernel_initializer=keras.initializers.GlorotUniform(seed),
        )
        self.decoder = keras.layers.Dense(
            n, use_bias=False, kernel_initializer=keras.initializers.GlorotUniform(decoder_seed)
        )
        self.encoder.build((None, n))  # kernel (n, latent_dim) = W_e^T
        self.decoder.build((None, self.latent_dim))  # kernel (latent_dim, n) = W_d^T
        self.bias = self.add_weight(shape=(n,), initializer="zeros", name="bias")
        self.track("reconstruction")
        self.built = True

    @classmethod
    def from_pca(cls, x: Any, latent_dim: int, **kwargs: Any) -> LinearAutoencoder:
        """The optimal linear autoencoder of `x`, in closed form (no training).

        With the centred data as columns, X - mean = U S V^T, the top `latent_dim` left
        singular vectors U_k are the principal directions: W_e = U_k^T, W_d = U_k and
        b = mean, so x_hat is the orthogonal projection of x - mean onto the principal
        subspace, plus the mean. `kwargs` go to the constructor (e.g. `seed`).
        """
        x = np.asarray(ops.convert_to_numpy(x), dtype="float64")
        if x.ndim < 2 or len(x) < 1:
            raise ValueError(f"from_pca expects a batch of examples (N, ...), got {x.shape}.")
        model = cls(input_shape=x.shape[1:], latent_dim=latent_dim, **kwargs)
        n = math.prod(model.data_shape)
        if model.latent_dim > n:
            raise ValueError(
                f"from_pca keeps at most {n} components (the input size); "
                f"got latent_dim={model.latent_dim}."
            )
        flat = x.reshape(len(x), n)
        mean = flat.mean(axis=0)
        # Rows are examples here, so the left singular vectors of the columns-as-examples
        # matrix are the right singular vectors of this one. With fewer examples than
        # dimensions, full_matrices completes the basis (directions of zero variance).
        _, _, vt = np.linalg.svd(flat - mean, full_matrices=len(flat) < n)
        components = vt[: model.latent_dim].T  # U_k: (n, latent_dim), orthonormal columns
        model.encoder.kernel.assign(components.astype("float32"))
        model.decoder.kernel.assign(components.T.astype("float32"))
        model.bias.assign(mean.astype("float32"))
        return model

    # === Autoencoder ===

    def encode(self, x: Any) -> Any:
        """z = W_e (x - b), shape `(batch, latent_dim)`."""
        check_shape(type(self).__name__, x, self.data_shape)
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        flat = ops.reshape(x, (-1, math.prod(self.data_shape)))  # (batch, n)
        return self.encoder(flat - self.bias)

    def decode(self, z: Any) -> Any:
        """x_hat = W_d z + b, shape `(batch, *input_shape)`."""
        check_shape(type(self).__name__, z, (self.latent_dim,), what="latents")
        flat = self.decoder(z) + self.bias
        return ops.reshape(flat, (-1, *self.data_shape))

    def call(self, inputs: Any, training: bool = False) -> Any:
        """The reconstruction decode(encode(inputs)), shape `inputs.shape`."""
        return self.decode(self.encode(inputs))

    def decoder_basis(self) -> np.ndarray:
        """The decoder's columns W_d, shape `(prod(input_shape), latent_dim)`."""
        return np.asarray(ops.convert_to_numpy(self.decoder.kernel)).T

    def figure_rows(self, x: Any, seed: int = 0) -> dict[str, np.ndarray]:
        """Rows of a figure, reconstructions over the inputs (`seed` is unused)."""
        x = np.asarray(ops.convert_to_numpy(x), dtype="float32")
        return {"reconstructed": np.asarray(ops.convert_to_numpy(self(x))), "clean": x}

    # === Training ===

    def phases(self) -> list[Phase]:
        return [Phase("reconstruction", self.trainable_variables, self._loss)]

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        reconstruction = ops.mean(squared_error(x, self(x, training=training)))
        return reconstruction, {"reconstruction": reconstruction}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "input_shape": list(self.data_shape),
                "latent_dim": self.latent_dim,
                "seed": self.seed,
            }
        )
        return config
