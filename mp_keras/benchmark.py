"""What the engine costs: VAE training steps per second, engine vs. Keras and plain code.

Three ways to train the same VAE (8x8 binarized digits, latent 4, hidden 256-128, batch
64, Adam 1e-3, Bernoulli decoder, closed-form KL):

- **engine**: `mp_keras.models.VAE` through the engine's `train_step` (`model.fit`);
- **Keras built-in**: the same class with Keras' own `train_step` (`compute_loss`
  overridden), the idiomatic Keras 3 way;
- **plain**: the VAE written directly in the backend's framework, with no Keras at all:
  `torch.nn` modules, `torch.optim.Adam` and a standard loop on PyTorch; `jax.jit` of
  one step with a hand-written Adam (Keras' update rule) on JAX.

Engine and built-in run in one process, alternating timed runs, so that machine noise
hits both alike. The plain version runs in its own process; the command alternates one
Keras process and one plain process per repeat. Medians of the repeats are reported.

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


def compare_trainers(
    steps: int, repeats: int, batch_size: int = 64, jit_compile: bool | str = "auto"
) -> dict[str, Any]:
    """Times the engine and the built-in trainer on the VAE, in this process's backend.

    `jit_compile=True` on PyTorch compiles both trainers' steps with `torch.compile`
    (the warm-up then includes the compilation).
    """
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
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
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


# === Plain implementations (no Keras): the same VAE, the same data, the same Adam ===

_LAYERS = [(64, 256), (256, 128), (128, 8), (4, 128), (128, 256), (256, 64)]  # enc, dec


def _glorot(rng: Any, fan_in: int, fan_out: int) -> Any:

    limit = (6.0 / (fan_in + fan_out)) ** 0.5  # Keras' Dense default
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype("float32")


def _plain_data(batch_size: int) -> Any:
    import numpy as np

    from mp_keras import data as datasets

    x = datasets.load("digits_binarized", "train").x.reshape(-1, 64)
    return x, np.random.default_rng(0), len(x) // batch_size


def time_plain_torch(steps: int, batch_size: int = 64, warmup: int = 20) -> dict[str, Any]:
    """Steps/s of the VAE in plain PyTorch: `torch.nn`, `torch.optim.Adam`, a loop."""
    import torch
    from torch import nn

    x, rng, _ = _plain_data(batch_size)
    torch.manual_seed(0)
    linears = []
    for fan_in, fan_out in _LAYERS:
        layer = nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(_glorot(rng, fan_in, fan_out).T))
            layer.bias.zero_()
        linears.append(layer)
    encoder = nn.Sequential(linears[0], nn.ReLU(), linears[1], nn.ReLU(), linears[2])
    decoder = nn.Sequential(linears[3], nn.ReLU(), linears[4], nn.ReLU(), linears[5])
    params = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3, eps=1e-7)
    data = torch.from_numpy(x)

    def step(batch: Any) -> Any:
        mean, log_var = encoder(batch).chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        logits = decoder(z)
        reconstruction = (nn.functional.softplus(logits) - batch * logits).sum(-1)
        kl = 0.5 * (log_var.exp() + mean.square() - 1.0 - log_var).sum(-1)
        loss = (reconstruction + kl).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    def run(num: int) -> float:
        loss = None
        for _ in range(num):
            index = torch.from_numpy(rng.integers(0, len(x), batch_size))
            loss = step(data[index])
        return float(loss)

    run(warmup)
    start = time.perf_counter()
    loss = run(steps)
    return {"steps_per_second": steps / (time.perf_counter() - start), "final_loss": loss}


def time_plain_jax(steps: int, batch_size: int = 64, warmup: int = 20) -> dict[str, Any]:
    """Steps/s of the VAE in plain JAX: one `jax.jit` step, Adam written out."""
    import jax
    import jax.numpy as jnp

    x, rng, _ = _plain_data(batch_size)
    params = [(jnp.asarray(_glorot(rng, i, o)), jnp.zeros(o)) for i, o in _LAYERS]
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    data = jnp.asarray(x)
    tree_map = jax.tree_util.tree_map

    def mlp(layers: Any, h: Any) -> Any:
        for i, (w, b) in enumerate(layers):
            h = h @ w + b
            h = jax.nn.relu(h) if i < len(layers) - 1 else h
        return h

    def loss_fn(params: Any, batch: Any, key: Any) -> Any:
        mean, log_var = jnp.split(mlp(params[:3], batch), 2, axis=-1)
        z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)
        logits = mlp(params[3:], z)
        reconstruction = (jax.nn.softplus(logits) - batch * logits).sum(-1)
        kl = 0.5 * (jnp.exp(log_var) + mean**2 - 1.0 - log_var).sum(-1)
        return (reconstruction + kl).mean()

    @jax.jit
    def step(state: Any, key: Any, index: Any) -> Any:
        params, m, v, t = state
        key, sub = jax.random.split(key)
        loss, grads = jax.value_and_grad(loss_fn)(params, data[index], sub)
        t = t + 1
        lr = 1e-3 * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)  # Keras' Adam, epsilon 1e-7
        m = tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
        v = tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
        params = tree_map(lambda p, m, v: p - lr * m / (jnp.sqrt(v) + 1e-7), params, m, v)
        return (params, m, v, t), key, loss

    def run(num: int, state: Any, key: Any) -> Any:
        loss = None
        for _ in range(num):
            state, key, loss = step(state, key, rng.integers(0, len(x), batch_size))
        return state, key, float(loss)

    state = (params, zeros, zeros, jnp.zeros((), jnp.float32))
    state, key, _ = run(warmup, state, jax.random.PRNGKey(0))
    start = time.perf_counter()
    state, key, loss = run(steps, state, key)
    return {"steps_per_second": steps / (time.perf_counter() - start), "final_loss": loss}


PLAIN = {"torch": time_plain_torch, "jax": time_plain_jax}


def measure(
    backend: str,
    steps: int = 300,
    repeats: int = 3,
    batch_size: int = 64,
    worker: str = "keras",
    jit_compile: bool = False,
) -> dict:
    """Runs one worker (`keras`: engine and built-in; `plain`) in a subprocess."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    command = [sys.executable, "-m", "mp_keras.benchmark", "--worker", worker]
    command += ["--jit-compile"] if jit_compile else []
    command += ["--steps", str(steps), "--repeats", str(repeats), "--batch-size", str(batch_size)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark on {backend} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_benchmark(
    backends: Sequence[str] = ("tensorflow", "jax", "torch"),
    steps: int = 300,
    repeats: int = 3,
    jit_compile: bool = False,
) -> str:
    """Measures every backend; a Markdown table of steps/s (medians) and ratios.

    Per repeat, one process times the engine and the built-in trainer (one run each),
    then, where the backend has a plain version, another process times it.
    """
    lines = [
        "| backend | engine steps/s | Keras built-in steps/s | plain steps/s "
        "| engine / built-in | engine / plain | last loss, engine / built-in / plain |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend in backends:
        keras_runs, plain_runs = [], []
        for _ in range(repeats):
            # Three alternating runs per process: the first timed run of a process is slower.
            keras_runs.append(measure(backend, steps=steps, repeats=3, jit_compile=jit_compile))
            if backend in PLAIN:
                plain_runs.append(measure(backend, steps=steps, worker="plain"))
        engine = statistics.median(r["steps_per_second"]["engine"] for r in keras_runs)
        builtin = statistics.median(r["steps_per_second"]["keras_builtin"] for r in keras_runs)
        losses = keras_runs[-1]["final_loss"]
        if plain_runs:
            plain = statistics.median(r["steps_per_second"] for r in plain_runs)
            plain_cells = f"{plain:.0f} | {engine / builtin:.3f} | {engine / plain:.3f}"
            plain_loss = f"{plain_runs[-1]['final_loss']:.2f}"
        else:
            plain_cells, plain_loss = f"— | {engine / builtin:.3f} | —", "—"
        lines.append(
            f"| {backend} | {engine:.0f} | {builtin:.0f} | {plain_cells} "
            f"| {losses['engine']:.2f} / {losses['keras_builtin']:.2f} / {plain_loss} |"
        )
    return "\n".join(lines)


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", choices=("keras", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--jit-compile", action="store_true")
    args = parser.parse_args()
    if args.worker == "plain":
        import keras  # only to know the backend asked for

        plain = PLAIN[keras.backend.backend()]
        print(json.dumps(plain(args.steps, args.batch_size)))
    elif args.worker:
        jit = True if args.jit_compile else "auto"
        print(json.dumps(compare_trainers(args.steps, args.repeats, args.batch_size, jit)))
    else:
        backends = args.backends.split(",")
        print(run_benchmark(backends, args.steps, args.repeats, jit_compile=args.jit_compile))


if __name__ == "__main__":
    _main()
