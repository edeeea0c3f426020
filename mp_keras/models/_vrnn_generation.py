"""The VRNN's generation: one step with explicit noise, sampling from the prior, the
training figure and the exported step. `VRNNGeneration` is a mixin of
`mp_keras.models.VRNN`, kept in its own file."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.models._checks import check_count


class VRNNGeneration:
    """Generation and export of `VRNN` (see its docstring); reads the model's cell."""

    # === Generation ===

    def generate_step(
        self, state: Any, z_noise: Any, x_noise: Any, labels: Any = None, use_mean: bool = False
    ) -> dict[str, Any]:
        """One generation step with explicit noise: `{"x", "mean", "state"}` (see VRNNCell)."""
        return self.vrnn_cell.generate(
            state,
            z_noise,
            x_noise,
            labels,
            use_mean=use_mean,
            recurrence_latent=self.recurrence_latent,
        )

    def sample(
        self,
        num: int,
        seed: int | None = None,
        *,
        length: int | None = None,
        condition: Any = None,
        use_mean: bool = False,
        temperature: float = 1.0,
    ) -> Any:
        """Sequences `(num, length, features)` from the generative model (prior only).

        At each step z_t ~ p(z_t | h_{t-1}), x_t ~ p(x_t | z_t, h_{t-1}) (its mean with
        `use_mean`), then h_t; one compiled step is reused for every t (and every call),
        and all noise is drawn up front from `seed`, so a seed gives the same sequences.
        `length` defaults to `sequence_length` and may differ. Conditional models need
        `condition`: `num` labels (or one, for all). `(num, seed)` come first, as for
        every sampler of the collection. `temperature` scales the standard deviations of
        the prior and of a Gaussian decoder (1: the model; below 1: steadier sequences).
        """
        owner = type(self).__name__
        num = check_count(owner, "num", num)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ValueError(f"{owner}: temperature must be a number, got {temperature!r}.")
        if not 0 < temperature <= 10:
            raise ValueError(f"{owner}: temperature must be in (0, 10], got {temperature!r}.")
        if temperature != 1 and self.likelihood != "gaussian":
            raise ValueError(f"{owner}: temperature needs a Gaussian decoder, not Bernoulli.")
        length = self.sequence_length if length is None else check_count(owner, "length", length)
        labels = self._sampling_labels(num, condition)
        generator = self.seed_generator if seed is None else keras.random.SeedGenerator(seed)
        dtype = self.compute_dtype
        z_noise = keras.random.normal((length, num, self.latent_dim), dtype=dtype, seed=generator)
        x_shape = (length, num, self.features)
        if self.likelihood == "gaussian":
            x_noise = keras.random.normal(x_shape, dtype=dtype, seed=generator)
        else:
            x_noise = keras.random.uniform(x_shape, dtype=dtype, seed=generator)
        if temperature != 1:  # z = mu + (T sigma) eps, x = mean + (T sigma) eps
            z_noise, x_noise = z_noise * temperature, x_noise * temperature

        def step(state: Any, z: Any, u: Any, *labels: Any) -> tuple[Any, Any]:
            out = self.generate_step(state, z, u, *labels, use_mean=use_mean)
            return out["state"], out["x"]

        run = self._compiled(("step", bool(use_mean)), step)
        state = ops.zeros((num, self.vrnn_cell.state_size), dtype=dtype)
        extra = () if labels is None else (labels,)
        xs = []
        for t in range(length):
            state, x = run(state, z_noise[t], x_noise[t], *extra)
            xs.append(x)
        return ops.stack(xs, axis=1)

    def figure_rows(self, x: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
        """Rows of pictures for `mp-keras train`'s figure: samples, inputs, reconstructions.

        Two features are drawn as pen paths (`mp_keras.data.strokes.render_strokes`),
        other sequences as `(T, features)` images. A conditional model samples the
        classes in turn and shows no reconstructions (it would need the labels).
        """
        from mp_keras.data.strokes import render_strokes

        def picture(v: Any) -> np.ndarray:
            v = np.asarray(ops.convert_to_numpy(v))
            return render_strokes(v) if self.features == 2 else v

        num = len(x)
        labels = None if self.num_classes is None else np.arange(num) % self.num_classes
        rows = {"samples": picture(self.sample(num, seed, condition=labels))}
        if labels is None:
            rows.update(inputs=picture(x), reconstructions=picture(self(x)))
        return rows

    # === Export ===

    def export_endpoints(self) -> dict[str, Any]:
        specs = [
            keras.InputSpec(shape=(None, self.vrnn_cell.state_size), dtype="float32"),
            keras.InputSpec(shape=(None, self.latent_dim), dtype="float32"),
            keras.InputSpec(shape=(None, self.features), dtype="float32"),
        ]
        if self.num_classes is not None:
            specs.append(keras.InputSpec(shape=(None,), dtype="int32"))
        return {"generate_step": (self.generate_step, specs)}

    def export_samples(self, name: str, num: int, seed: int) -> list[np.ndarray]:
        """A random state, standard normal z noise, x noise (uniform if Bernoulli), labels."""
        rng = np.random.default_rng(seed)
        state = rng.uniform(-1.0, 1.0, (num, self.vrnn_cell.state_size))
        z_noise = rng.standard_normal((num, self.latent_dim))
        shape = (num, self.features)
        gaussian = self.likelihood == "gaussian"
        x_noise = rng.standard_normal(shape) if gaussian else rng.uniform(size=shape)
        arrays = [a.astype("float32") for a in (state, z_noise, x_noise)]
        if self.num_classes is not None:
            arrays.append(rng.integers(0, self.num_classes, num).astype("int32"))
        return arrays
