"""NICE: additive couplings and a diagonal scaling (notes, 7.5)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras

from mp_keras.layers.bijectors import (
    AdditiveCoupling,
    Scaling,
    alternating_mask,
)
from mp_keras.models._checks import check_count
from mp_keras.models.flow import Flow, architecture_config, discrete_data_end


@keras.saving.register_keras_serializable(package="mp_keras")
class NICE(Flow):
    """Non-linear independent components estimation: a volume-preserving flow.

    Dinh, Krueger & Bengio, "NICE: Non-linear Independent Components Estimation",
    ICLR 2015 workshop (notes, 7.5). From the data: `num_couplings` additive couplings
    y_A = x_A + m(x_B) over the flattened example, alternating between the odd and the
    even dimensions, then a diagonal scaling, the only term of the log-det (the couplings
    preserve volume): with x = f(z) and `Scaling`'s z -> z * s on the latent side,
    log p(x) = log N(z; 0, I) - sum log s. m is an MLP (`hidden_units`). With
    `num_levels`, the data are discrete images k / (num_levels - 1) in [0, 1],
    dequantised uniformly in training and mapped through a logit transform (RealNVP's,
    instead of the paper's logistic prior).

    Args:
        input_shape: tuple of ints. Shape of one example, e.g. `(8, 8, 1)` or `(64,)`.
        num_couplings: int. Number of additive couplings. Defaults to `4` (the paper's).
        hidden_units: tuple of ints. Hidden ReLU layers of each m. Defaults to
            `(1000,) * 5`, the paper's MNIST network.
        num_levels: int or None. Values of discrete data (17 for `digits`). Defaults to
            `None` (continuous data, no logit transform).
        alpha: float. The logit transform's alpha. Defaults to `0.05`.
        seed: int or None. Seed of the initial weights and of the random draws.
            Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = NICE(input_shape=(4, 4, 1), hidden_units=(16,), num_levels=17, seed=0)
    >>> x = np.random.default_rng(0).integers(0, 17, (3, 4, 4, 1)).astype("float32") / 16
    >>> tuple(model.log_prob(x).shape), tuple(model.sample(2, seed=1).shape)
    ((3,), (2, 4, 4, 1))
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (28, 28, 1),
        num_couplings: int = 4,
        hidden_units: Sequence[int] = (1000,) * 5,
        num_levels: int | None = None,
        alpha: float = 0.05,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        for key in ("bijectors", "data_shape"):
            kwargs.pop(key, None)  # fixed by the architecture (present in a Flow config)
        shape = tuple(check_count("NICE", "input_shape", d) for d in input_shape)
        self.num_couplings = check_count("NICE", "num_couplings", num_couplings)
        if isinstance(hidden_units, int):
            hidden_units = (hidden_units,)
        self.hidden_units = tuple(check_count("NICE", "hidden_units", u) for u in hidden_units)
        self.alpha = float(alpha)
        dims = math.prod(shape)
        # Latent to data: the scaling, the couplings from last to first, then the data map.
        couplings = [
            AdditiveCoupling(
                alternating_mask(dims, k % 2).reshape(shape),
                self.hidden_units,
                conditioner="mlp",
                seed=None if seed is None else seed + 100 * k,
                name=f"coupling_{k}",
            )
            for k in range(self.num_couplings)
        ]
        bijectors = [Scaling(name="scaling"), *reversed(couplings)]
        bijectors += discrete_data_end(num_levels, self.alpha)
        super().__init__(bijectors, data_shape=shape, num_levels=num_levels, seed=seed, **kwargs)

    def get_config(self) -> dict[str, Any]:
        return architecture_config(
            super().get_config(),
            num_couplings=self.num_couplings,
            hidden_units=list(self.hidden_units),
            alpha=self.alpha,
        )
