"""Glow: ActNorm, invertible 1x1 convolutions and affine couplings, multi-scale (notes, 7.5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from mp_keras.layers.actnorm import ActNorm
from mp_keras.layers.bijectors import (
    AffineCoupling,
    Chain,
    Squeeze,
    channel_mask,
)
from mp_keras.layers.invertible_conv import Invertible1x1Conv
from mp_keras.layers.multiscale import FactorOut
from mp_keras.models._checks import check_count
from mp_keras.models.flow import (
    Flow,
    architecture_config,
    discrete_data_end,
    image_flow_arguments,
)


@keras.saving.register_keras_serializable(package="mp_keras")
class Glow(Flow):
    """Generative flow with invertible 1x1 convolutions, over images.

    Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions",
    NeurIPS 2018 (notes, 7.5). From the data, each of the `num_scales` levels is a
    `Squeeze` (H, W, C) -> (H/2, W/2, 4C) and `steps_per_scale` steps of flow, each
    `ActNorm` (per-channel affine, initialised from the first training batch) ->
    `Invertible1x1Conv` (a learned channel mixing; LU-parametrised with `lu`) ->
    `AffineCoupling` along the channels (the first half conditions a small conv net
    that scales and shifts the second half). Every level but the last then splits: a
    learned prior N(mu(h), sigma(h)) of the first half of the channels given the second
    half h (an `AffineCoupling` with `channel_mask(C, 1)` and a zero-initialised
    conditioner, so it starts as N(0, I)) and a `FactorOut` sends that first half to the
    latent, the second half going on to the next level and its latent coming back in the
    second half's shape, so the latent, under the single standard-normal base of `Flow`,
    has the shape (H/2, W/2, 4C) of the first squeeze. With `num_levels`, the data are
    discrete images k / (num_levels - 1) in [0, 1], dequantised uniformly in training and
    mapped through a logit transform, exactly as in `NICE`.

    Simplifications: the conditioners are `hidden_units` 3x3 ReLU convolutions (the
    paper's: 3x3, 1x1, 512 channels) and the coupling's log-scale is bounded as
    `scale * tanh` (the paper: a sigmoid); no learned prior at the top level.

    Args:
        input_shape: tuple of 3 ints. Shape of one image (H, W, C); H and W must be
            divisible by 2 ** num_scales. Defaults to `(32, 32, 3)`.
        num_scales: int. Levels L (each begins with a squeeze). Defaults to `3`.
        steps_per_scale: int. Steps of flow K per level. Defaults to `32` (the paper's
            CIFAR-10 L = 3, K = 32).
        hidden_units: tuple of ints. Channels of the hidden 3x3 ReLU convolutions of
            each coupling's conditioner. Defaults to `(512, 512)`.
        lu: bool. LU-decomposed 1x1 convolutions. Defaults to `True`.
        num_levels: int or None. Values of discrete data (17 for `digits`). Defaults to
            `None` (continuous data, no logit transform).
        scale: float. Bound of each coupling's |log-scale|. Defaults to `1.0`.
        alpha: float. The logit transform's alpha. Defaults to `0.05`.
        seed: int or None. Seed of the initial weights and of the random draws.
            Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = Glow((4, 4, 1), num_scales=2, steps_per_scale=1, hidden_units=(8,),
    ...              num_levels=17, seed=0)
    >>> x = np.random.default_rng(0).integers(0, 17, (3, 4, 4, 1)).astype("float32") / 16
    >>> tuple(model.log_prob(x).shape), tuple(model.sample(2, seed=1).shape)
    ((3,), (2, 4, 4, 1))
    >>> model.latent_shape
    (2, 2, 4)
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (32, 32, 3),
        num_scales: int = 3,
        steps_per_scale: int = 32,
        hidden_units: Sequence[int] = (512, 512),
        lu: bool = True,
        num_levels: int | None = None,
        scale: float = 1.0,
        alpha: float = 0.05,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        for key in ("bijectors", "data_shape"):
            kwargs.pop(key, None)  # fixed by the architecture (present in a Flow config)
        # === Config ===
        self.num_scales = check_count("Glow", "num_scales", num_scales)
        self.steps_per_scale = check_count("Glow", "steps_per_scale", steps_per_scale)
        if not isinstance(lu, bool):
            raise ValueError(f"Glow: lu must be True or False; got {lu!r}.")
        self.lu = lu
        shape, self.hidden_units, self.scale = image_flow_arguments(
            "Glow", input_shape, hidden_units, scale, squeezes=self.num_scales
        )
        self.alpha = float(alpha)
        self._seed = seed

        # === Layers ===
        bijectors = self._level(0, shape) + discrete_data_end(num_levels, self.alpha)
        super().__init__(bijectors, data_shape=shape, num_levels=num_levels, seed=seed, **kwargs)

    def _seed_of(self, level: int, step: int, part: int) -> int | None:
        return None if self._seed is None else self._seed + 1000 * level + 10 * step + part

    def _level(self, level: int, shape: tuple[int, ...]) -> list[Any]:
        """Levels `level`, ... as bijectors in the latent-to-data order.

        `shape` is (H, W, C) of the level's input on the data side.
        """
        h, w, c = shape[0] // 2, shape[1] // 2, 4 * shape[2]  # after the squeeze
        coupling = dict(hidden_units=self.hidden_units, scale=self.scale, conditioner="conv")
        data_to_latent: list[Any] = [Squeeze(name=f"squeeze_{level}")]
        for k in range(self.steps_per_scale):
            data_to_latent += [
                ActNorm(name=f"actnorm_{level}_{k}"),
                Invertible1x1Conv(self.lu, self._seed_of(level, k, 1), name=f"conv_{level}_{k}"),
                AffineCoupling(
                    channel_mask(c, 0),
                    seed=self._seed_of(level, k, 2),
                    name=f"coupling_{level}_{k}",
                    **coupling,
                ),
            ]
        if level < self.num_scales - 1:
            # The learned prior of the factored-out first half given the second half.
            prior = AffineCoupling(
                channel_mask(c, 1),
                seed=self._seed_of(level, self.steps_per_scale, 3),
                name=f"prior_{level}",
                **coupling,
            )
            inner = Chain(self._level(level + 1, (h, w, c // 2)), name=f"level_{level + 1}")
            data_to_latent += [prior, FactorOut(inner, name=f"split_{level}")]
        return data_to_latent[::-1]

    def get_config(self) -> dict[str, Any]:
        return architecture_config(
            super().get_config(),
            num_scales=self.num_scales,
            steps_per_scale=self.steps_per_scale,
            hidden_units=list(self.hidden_units),
            lu=self.lu,
            scale=self.scale,
            alpha=self.alpha,
        )
