"""RealNVP: affine couplings in a multi-scale architecture, for images (notes, 7.5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from mp_keras.layers.bijectors import (
    AffineCoupling,
    Bijector,
    Chain,
    Squeeze,
    channel_mask,
    checkerboard_mask,
)
from mp_keras.layers.multiscale import FactorOut
from mp_keras.models._checks import check_count
from mp_keras.models.flow import (
    Flow,
    architecture_config,
    discrete_data_end,
    image_flow_arguments,
)


@keras.saving.register_keras_serializable(package="mp_keras")
class RealNVP(Flow):
    """Real-valued non-volume preserving flow of images, in `num_scales` scales.

    Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017, 3.6
    (notes, 7.5). From the data, each scale but the last applies `couplings_per_scale`
    affine couplings x_A * exp(s(x_B)) + t(x_B) with alternating checkerboard masks, a
    `Squeeze` (H, W, C) -> (H/2, W/2, 4C), as many couplings with alternating channel
    masks, then a `FactorOut`: half the channels go to the latent and the rest on to the
    next scale. The last scale applies `couplings_per_scale + 1` checkerboard couplings
    (the paper's four). The latent has the shape after the first squeeze, (H/2, W/2, 4C)
    (the data's shape for one scale). With `num_levels`, the data are discrete images
    k / (num_levels - 1) in [0, 1], dequantised uniformly in training and mapped through
    the logit transform, as in `NICE`.

    Simplified from the paper: s and t come from the plain conv conditioner of
    `AffineCoupling` (3x3 ReLU convs of `hidden_units` filters, a zero-initialised last
    conv) instead of residual networks with batch and weight normalisation, and
    s = scale * tanh(raw) bounds the log-scale.

    Args:
        input_shape: tuple of ints. Shape of one image (H, W, C); H and W divisible by
            2 ** (num_scales - 1). Defaults to `(28, 28, 1)`.
        num_scales: int. Number of scales. Defaults to `2`.
        couplings_per_scale: int. Couplings per mask type and scale. Defaults to `3`.
        hidden_units: tuple of ints. Filters of each conditioner's hidden convs.
            Defaults to `(64, 64)`.
        num_levels: int or None. Values of discrete data (17 for `digits`). Defaults to
            `None` (continuous data, no logit transform).
        scale: float. Bound of |s|. Defaults to `1.0`.
        alpha: float. The logit transform's alpha. Defaults to `0.05`.
        seed: int or None. Seed of the initial weights and of the random draws.
            Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = RealNVP((4, 4, 1), couplings_per_scale=1, hidden_units=(8,), num_levels=17, seed=0)
    >>> x = np.random.default_rng(0).integers(0, 17, (3, 4, 4, 1)).astype("float32") / 16
    >>> tuple(model.log_prob(x).shape), tuple(model.sample(2, seed=1).shape)
    ((3,), (2, 4, 4, 1))
    >>> model.latent_shape
    (2, 2, 4)
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (28, 28, 1),
        num_scales: int = 2,
        couplings_per_scale: int = 3,
        hidden_units: Sequence[int] = (64, 64),
        num_levels: int | None = None,
        scale: float = 1.0,
        alpha: float = 0.05,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        for key in ("bijectors", "data_shape"):
            kwargs.pop(key, None)  # fixed by the architecture (present in a Flow config)

        # === Config ===
        self.num_scales = check_count("RealNVP", "num_scales", num_scales)
        self.couplings_per_scale = check_count(
            "RealNVP", "couplings_per_scale", couplings_per_scale
        )
        shape, self.hidden_units, self.scale = image_flow_arguments(
            "RealNVP", input_shape, hidden_units, scale, squeezes=self.num_scales - 1
        )
        self.alpha = float(alpha)
        self._seed, self._count = seed, 0

        # === Layers ===
        bijectors = self._scale(0, shape) + discrete_data_end(num_levels, self.alpha)
        super().__init__(bijectors, data_shape=shape, num_levels=num_levels, seed=seed, **kwargs)

    def _coupling(self, mask: Any, name: str) -> AffineCoupling:
        seed = None if self._seed is None else self._seed + 100 * self._count
        self._count += 1
        return AffineCoupling(mask, self.hidden_units, scale=self.scale, seed=seed, name=name)

    def _scale(self, s: int, shape: tuple[int, int, int]) -> list[Bijector]:
        """Scale `s` (and those after it) over images of `shape`, latent to data."""
        h, w, c = shape
        n = self.couplings_per_scale
        last = s == self.num_scales - 1
        checkers = [  # data to latent
            self._coupling(checkerboard_mask(h, w, k % 2), f"scale{s}_checkerboard{k}")
            for k in range(n + 1 if last else n)
        ]
        if last:
            return checkers[::-1]
        channels = [
            self._coupling(channel_mask(4 * c, k % 2), f"scale{s}_channel{k}") for k in range(n)
        ]
        # Squeezed to (h/2, w/2, 4c); 2c channels go on to the next scale.
        inner = Chain(self._scale(s + 1, (h // 2, w // 2, 2 * c)), name=f"scale{s + 1}")
        return [
            FactorOut(inner, name=f"scale{s}_factor_out"),
            *channels[::-1],
            Squeeze(name=f"scale{s}_squeeze"),
            *checkers[::-1],
        ]

    def get_config(self) -> dict[str, Any]:
        return architecture_config(
            super().get_config(),
            num_scales=self.num_scales,
            couplings_per_scale=self.couplings_per_scale,
            hidden_units=list(self.hidden_units),
            scale=self.scale,
            alpha=self.alpha,
        )
