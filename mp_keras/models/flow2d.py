"""A RealNVP-style flow of 2-D points, for the toy datasets (notes, 7.5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from mp_keras.layers.bijectors import AffineCoupling, alternating_mask
from mp_keras.models._checks import check_count
from mp_keras.models.flow import Flow


@keras.saving.register_keras_serializable(package="mp_keras")
class Flow2D(Flow):
    """Affine couplings over 2-D points, the two coordinates taking turns.

    Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017, on
    the plane (notes, 7.2-7.5): coupling k keeps coordinate k mod 2 and moves the
    other by x_A = z_A exp(s(z_B)) + t(z_B), s and t from one MLP.

    Args:
        num_couplings: int. Number of affine couplings. Defaults to `6`.
        hidden_units: tuple of ints. Hidden ReLU layers of each coupling's MLP.
            Defaults to `(64, 64)`.
        scale: float. Bound of |s| (s = scale * tanh(raw)). Defaults to `2.0`.
        seed: int or None. Seed of the initial weights and of the sampling draws.
            Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = Flow2D(num_couplings=2, hidden_units=(8,), seed=0)
    >>> model.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    >>> history = model.fit(x, epochs=1, batch_size=16, verbose=0)
    >>> tuple(model.log_prob(x[:3]).shape), tuple(model.sample(5, seed=1).shape)
    ((3,), (5, 2))
    """

    def __init__(
        self,
        num_couplings: int = 6,
        hidden_units: Sequence[int] = (64, 64),
        scale: float = 2.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        for key in ("bijectors", "data_shape", "num_levels"):
            kwargs.pop(key, None)  # fixed by the architecture (present in a Flow config)
        self.num_couplings = check_count("Flow2D", "num_couplings", num_couplings)
        if isinstance(hidden_units, int):
            hidden_units = (hidden_units,)
        self.hidden_units = tuple(check_count("Flow2D", "hidden_units", u) for u in hidden_units)
        couplings = [
            AffineCoupling(
                alternating_mask(2, k % 2),
                self.hidden_units,
                scale=scale,
                seed=None if seed is None else seed + 100 * k,
                name=f"coupling_{k}",
            )
            for k in range(self.num_couplings)
        ]
        self.scale = float(scale)
        super().__init__(couplings, data_shape=(2,), seed=seed, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for key in ("bijectors", "data_shape", "num_levels"):
            config.pop(key)
        config.update(
            {
                "num_couplings": self.num_couplings,
                "hidden_units": list(self.hidden_units),
                "scale": self.scale,
            }
        )
        return config
