"""What the engine costs: VAE training steps per second, engine vs. Keras' own trainer.

Both trainers run the same VAE (same networks, same loss, same logged values) on the
same data in the same process, alternating timed runs so that machine noise hits both
alike. The baseline is the idiomatic Keras 3 way to train a custom model without a
custom `train_step`: `call` returns what the loss needs and `compute_loss` is
overridden; Keras' built-in `train_step` of the backend does the rest. Each backend
runs in its own subprocess (Keras picks its backend once per process).

Run with `mp-keras benchmark` (or `python -m mp_keras.benchmark`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any


def compare_trainers(steps: int, repeats: int, batch_size: int = 64) -> dict[str, Any]:
    """Times the engine and the built-in trainer on the VAE, in this process's backend."""
    import keras
    from keras import ops

    from mp_keras import data as datasets
    from mp_keras.models import VAE

    class BuiltinTrainerVAE(VAE):
        """The same VAE trained by Keras' built-in train_step via compute_loss."""

        train_step = keras.Model.train_step
        test_step = keras.Model.test_step

        def compile(self, optimizer: Any = None, **kwargs: Any) -> None:
            keras.Model.compile(self, optimizer=optimizer, **kwargs)

        def call(self, inputs: Any, training: bool = False) -> Any:
            mean, log_var = self.encode(inputs, training=training)
            z = self.reparameterize(mean, log_var)
            return mean, log_var, self.decoder(z, training=training)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            mean, log_var, decoded = y_pred
            reconstruction = self.negative_log_likelihood(x, decoded)
            kl = self.kl_divergence(mean, log_var)
            trackers = {t.name: t for t in self._log_trackers}
            trackers["reconstruction"].update_state(ops.mean(reconstruction))
            trackers["kl"].update_state(ops.mean(kl))
            trackers["elbo"].update_state(-ops.mean(reconstruction + kl))
            return ops.mean(reconstruction + self.beta * kl)

    x = datasets.load("digits_binarized", "train").x
    data = datasets.pipeline(x, batch_size=batch_size, shuffle=True, seed=0, repeat=True)

    def make(cls: type) -> Any:
        keras.utils.set_random_seed(0)
        model = cls(input_shape=x.shape[1:], latent_dim=4, hidden_units=(256, 128), seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        model.fit(data, epochs=1, steps_per_epoch=20, shuffle=False, verbose=0)  # warm-up
        return model

    models = {"engine": make(VAE), "keras_builtin": make(BuiltinTrainerVAE)}
    rates: dict[str, list[float]] = {name: [] for name in models}
    losses: dict[str, float] = {}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            history = model.fit(data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
            rates[name].append(steps / (time.perf_counter() - start))
            losses[name] = float(history.history["loss"][-1])
    return {
        "backend": keras.backend.backend(),
        "steps": steps,
        "repeats": repeats,
        "batch_size": batch_size,
        "steps_per_second": {name: statistics.median(r) for name, r in rates.items()},
        "all_runs": rates,
        "final_loss": losses,
    }


def measure(backend: str, steps: int = 300, repeats: int = 3, batch_size: int = 64) -> dict:
    """Runs the comparison for one backend in a subprocess and returns its figures."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    command = [sys.executable, "-m", "mp_keras.benchmark", "--worker"]
    command += ["--steps", str(steps), "--repeats", str(repeats), "--batch-size", str(batch_size)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark on {backend} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_benchmark(
    backends: Sequence[str] = ("tensorflow", "jax", "torch"), steps: int = 300, repeats: int = 3
) -> str:
    """Measures every backend and returns a Markdown table of steps/s and the ratio."""
    lines = [
        "| backend | engine steps/s | Keras built-in steps/s | engine / built-in "
        "| last-epoch loss, engine / built-in |",
        "|---|---:|---:|---:|---:|",
    ]
    for backend in backends:
        figures = measure(backend, steps=steps, repeats=repeats)
        rates = figures["steps_per_second"]
        ratio = rates["engine"] / rates["keras_builtin"]
        losses = figures["final_loss"]
        lines.append(
            f"| {backend} | {rates['engine']:.0f} | {rates['keras_builtin']:.0f} | {ratio:.3f} "
            f"| {losses['engine']:.2f} / {losses['keras_builtin']:.2f} |"
        )
    return "\n".join(lines)


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(compare_trainers(args.steps, args.repeats, args.batch_size)))
    else:
        print(run_benchmark(args.backends.split(","), steps=args.steps, repeats=args.repeats))


if __name__ == "__main__":
    _main()
