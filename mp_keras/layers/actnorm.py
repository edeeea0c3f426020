"""Glow's activation normalisation: a per-channel affine bijector initialised from data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from mp_keras.layers._bijector import Bijector, per_example_sum


@keras.saving.register_keras_serializable(package="mp_keras")
class ActNorm(Bijector):
    """Activation normalisation: x = z * exp(log_scale) + loc, one pair per channel.

    Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions",
    NeurIPS 2018, section 3.1 (notes, 7.5). Data to latent (`inverse`),
    z = (x - loc) * exp(-log_scale), the same for every position of an image, so
    log|det df/dz| = H * W * sum_c log_scale_c (H * W = the number of positions; 1 for
    vectors) and `inverse` returns its negative.

    Data-dependent initialisation: the first `inverse` call made in training (inside
    `fit`; `Flow` passes `training` down the chain) sets `loc` and `log_scale` to the mean
    and the log standard deviation of that batch per channel (over the batch and the
    positions), so its latents have zero mean and unit variance per channel. Before that
    the layer is the identity, and inference calls (`log_prob`, `sample`, `evaluate`) and
    `forward` never initialise it, so they do not depend on the batch. The statistics are
    non-trainable variables (`init_loc`, `init_log_scale`, set once, through `ops.where` on the
    non-trainable flag `initialized`: no Python branch on tensor values, so the step
    traces under `tf.function` and `jax.jit`, and JAX's stateless step returns the new
    values); the trainable `loc_offset` and `log_scale_offset` start at zero and are added
    to them: loc = init_loc + loc_offset, log_scale = init_log_scale + log_scale_offset.

    Args:
        epsilon: float. Added to the batch variance before its square root. Defaults
            to `1e-6`.

    Example:
    >>> import numpy as np
    >>> layer = ActNorm()
    >>> x = 3.0 + 2.0 * np.random.default_rng(0).normal(size=(64, 2, 2, 3)).astype("float32")
    >>> z, log_det = layer.inverse(x, training=True)  # initialises from this batch
    >>> z = ops.convert_to_numpy(z)
    >>> bool(abs(z.mean()) < 1e-4), bool(abs(z.std() - 1.0) < 1e-3)
    (True, True)
    >>> int(ops.convert_to_numpy(layer.initialized))
    1
    """

    def __init__(self, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not float(epsilon) > 0:
            raise ValueError(f"ActNorm: epsilon must be positive; got {epsilon!r}.")
        self.epsilon = float(epsilon)

    def build(self, input_shape: Sequence[int | None]) -> None:
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                f"ActNorm takes (batch, ..., channels) with a known channel count; got "
                f"shape {tuple(input_shape)}."
            )
        channels = (int(input_shape[-1]),)
        self.initialized = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="initialized"
        )
        self.init_loc = self.add_weight(
            shape=channels, initializer="zeros", trainable=False, name="init_loc"
        )
        self.init_log_scale = self.add_weight(
            shape=channels, initializer="zeros", trainable=False, name="init_log_scale"
        )
        self.loc_offset = self.add_weight(shape=channels, initializer="zeros", name="loc_offset")
        self.log_scale_offset = self.add_weight(
            shape=channels, initializer="zeros", name="log_scale_offset"
        )

    @property
    def loc(self) -> Any:
        return self.init_loc + self.loc_offset

    @property
    def log_scale(self) -> Any:
        return self.init_log_scale + self.log_scale_offset

    def call(
        self, inputs: Any, inverse: bool = False, training: bool | None = None
    ) -> tuple[Any, Any]:
        if inverse:
            return self._inverse(inputs, initialise=bool(training))
        return self._forward(inputs)

    def _forward(self, z: Any) -> tuple[Any, Any]:
        log_scale = self.log_scale
        return z * ops.exp(log_scale) + self.loc, per_example_sum(ops.zeros_like(z) + log_scale)

    def _inverse(self, x: Any, initialise: bool = False) -> tuple[Any, Any]:
        init_loc = ops.convert_to_tensor(self.init_loc)
        init_log_scale = ops.convert_to_tensor(self.init_log_scale)
        if initialise:
            axes = tuple(range(len(x.shape) - 1))
            mean = ops.stop_gradient(ops.mean(x, axis=axes))
            variance = ops.stop_gradient(ops.var(x, axis=axes))
            log_std = 0.5 * ops.log(variance + self.epsilon)
            done = ops.convert_to_tensor(self.initialized) > 0.5
            init_loc = ops.where(done, init_loc, ops.cast(mean, init_loc.dtype))
            init_log_scale = ops.where(done, init_log_scale, ops.cast(log_std, init_loc.dtype))
            # Assigned every training step, a no-op once initialised; the tensors, not the
            # variables, are used below (PyTorch assigns in place).
            self.init_loc.assign(init_loc)
            self.init_log_scale.assign(init_log_scale)
            self.initialized.assign(1.0)
        loc = init_loc + self.loc_offset
        log_scale = init_log_scale + self.log_scale_offset
        return (x - loc) * ops.exp(-log_scale), -per_example_sum(ops.zeros_like(x) + log_scale)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}
