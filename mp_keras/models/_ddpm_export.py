"""Export of `DDPM` (and its subclasses): one denoising step as the endpoint an app
loops for on-device sampling."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


class DenoiseStepExport:
    """Mixin of `DDPM`: the `denoise_step` endpoint, its metadata and sample inputs.

    Uses the model's `denoise_step`, `process_shape`, `schedule`, `variance`,
    `data_range` and `num_classes`.
    """

    def export_endpoints(self) -> dict[str, Any]:
        specs = [
            keras.InputSpec(shape=(None, *self.process_shape), dtype="float32", name="x_t"),
            keras.InputSpec(shape=(None,), dtype="int32", name="t"),
            keras.InputSpec(shape=(None, *self.process_shape), dtype="float32", name="noise"),
        ]
        if not self.is_conditional:
            return {"denoise_step": (lambda x_t, t, noise: self.denoise_step(x_t, t, noise), specs)}
        specs += [
            keras.InputSpec(shape=(None,), dtype="int32", name="labels"),
            keras.InputSpec(shape=(None,), dtype="float32", name="guidance"),
        ]

        def step(x_t: Any, t: Any, noise: Any, labels: Any, guidance: Any) -> Any:
            return self.denoise_step(x_t, t, noise, labels, guidance)

        return {"denoise_step": (step, specs)}

    def export_metadata(self) -> dict[str, Any]:
        """What an app needs to loop `denoise_step`: T, the shapes and the data mapping."""
        return {
            "loop": "x = N(0, I); for t in T..1: x = denoise_step(x, t, z ~ N(0, I)); "
            "sample = lo + (x + 1) / 2 * (hi - lo) clipped to [lo, hi] (x if no data_range)",
            "timesteps": self.schedule.timesteps,
            "schedule": self.schedule.kind,
            "variance": self.variance,
            "shape": list(self.process_shape),
            "data_range": None if self.data_range is None else list(self.data_range),
            "num_classes": self.num_classes,
        }

    def export_samples(self, name: str, num: int, seed: int) -> list[np.ndarray]:
        """Standard normal x_t and noise, steps in 1..T (and labels, guidance in [0, 3])."""
        del name  # one endpoint
        rng = np.random.default_rng(seed)
        shape = (num, *self.process_shape)
        arrays = [
            rng.standard_normal(shape).astype("float32"),
            rng.integers(1, self.schedule.timesteps + 1, num).astype("int32"),
            rng.standard_normal(shape).astype("float32"),
        ]
        if self.is_conditional:
            arrays.append(rng.integers(0, self.num_classes, num).astype("int32"))
            arrays.append(rng.uniform(0.0, 3.0, num).astype("float32"))
        return arrays
