"""GAN training throughput: our engine on each backend against a plain PyTorch loop.

One training step is one discriminator update (k = 1) and one generator update of the
vanilla `GAN` (non-saturating loss, MLP networks: latent 8, two hidden layers of 128
units each side, Adam for each phase) on batches of 256 points of `ring`. Each backend
runs `model.fit` in its own subprocess; the reference is a hand-written PyTorch loop of
the same networks (`torch.nn`, two `torch.optim.Adam`, the same losses). Steps per second
are measured after a warm-up epoch (which includes compilation), and the ratios to the
PyTorch loop are printed and, unless `--no-docs`, written into `docs/chapter8.md`
between `<!-- gan_throughput all begin/end -->` markers. It also times one forward pass of
the discriminator on the torch backend three ways (Keras `Sequential`, its layers in a
Python loop, `torch.nn.Sequential`), which shows where the engine's torch step spends
its time.

Usage (from the repository root; about 2 minutes on a 2-core machine):

    .venv/bin/python apps/benchmarks/gan_throughput.py [--steps 300] [--no-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _docs import write_section  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "chapter8.md"
BACKENDS = ("tensorflow", "jax", "torch")
BATCH = 256
LATENT, UNITS = 8, 128


def engine_rate(steps: int) -> float:
    """Steps per second of `GAN.fit` on the current backend (after a warm-up epoch)."""
    sys.path.insert(0, str(REPO))
    import keras
    import numpy as np

    from mp_keras import data
    from mp_keras.models import GAN

    keras.utils.set_random_seed(0)
    x = data.load("ring", "train").x
    x = x[np.random.default_rng(0).integers(0, len(x), size=steps * BATCH)]
    model = GAN(
        latent_dim=LATENT,
        generator_units=(UNITS, UNITS),
        discriminator_units=(UNITS, UNITS),
        seed=0,
    )
    model.compile(optimizer="adam")
    model.fit(x[: 20 * BATCH], epochs=1, batch_size=BATCH, verbose=0)  # compile
    start = time.perf_counter()
    model.fit(x, epochs=1, batch_size=BATCH, shuffle=False, verbose=0)
    return steps / (time.perf_counter() - start)


def torch_rate(steps: int) -> float:
    """Steps per second of a plain PyTorch loop of the same GAN."""
    sys.path.insert(0, str(REPO))
    import numpy as np
    import torch
    from torch import nn

    from mp_keras import data

    torch.manual_seed(0)
    x = torch.as_tensor(data.load("ring", "train").x, dtype=torch.float32)
    gen = nn.Sequential(
        nn.Linear(LATENT, UNITS), nn.ReLU(), nn.Linear(UNITS, UNITS), nn.ReLU(), nn.Linear(UNITS, 2)
    )
    disc = nn.Sequential(
        nn.Linear(2, UNITS),
        nn.LeakyReLU(0.2),
        nn.Linear(UNITS, UNITS),
        nn.LeakyReLU(0.2),
        nn.Linear(UNITS, 1),
    )
    g_opt, d_opt = (
        torch.optim.Adam(gen.parameters(), 1e-3),
        torch.optim.Adam(disc.parameters(), 1e-3),
    )
    softplus = nn.functional.softplus
    index = np.random.default_rng(0).integers(0, len(x), size=(steps + 20, BATCH))

    def step(i: int) -> None:
        real = x[index[i]]
        fake = gen(torch.randn(BATCH, LATENT)).detach()
        d_loss = softplus(-disc(real)).mean() + softplus(disc(fake)).mean()
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        g_loss = softplus(-disc(gen(torch.randn(BATCH, LATENT)))).mean()
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()

    for i in range(20):
        step(i)
    start = time.perf_counter()
    for i in range(20, steps + 20):
        step(i)
    return steps / (time.perf_counter() - start)


def forward_rate(calls: int) -> dict[str, float]:
    """Microseconds of one forward pass of the GAN's discriminator on a batch, torch backend.

    The same network as Keras `Sequential` (as `GAN` builds it), as a Python loop over its
    layers (no functional graph) and as `torch.nn.Sequential`: where the time of the
    engine's torch step goes, which makes five such calls per step.
    """
    sys.path.insert(0, str(REPO))
    import keras
    import torch
    from torch import nn

    from mp_keras.models import GAN

    if keras.backend.backend() != "torch":
        raise RuntimeError("forward_rate times the torch backend; set KERAS_BACKEND=torch.")
    model = GAN(latent_dim=LATENT, discriminator_units=(UNITS, UNITS), seed=0)
    net = model.discriminator
    plain = nn.Sequential(
        nn.Linear(2, UNITS), nn.LeakyReLU(0.2), nn.Linear(UNITS, UNITS), nn.LeakyReLU(0.2),
        nn.Linear(UNITS, 1),
    )  # fmt: skip
    x = torch.randn(BATCH, 2)

    def layer_loop() -> Any:
        h = x
        for layer in net.layers:
            h = layer(h)
        return h

    ways = {"keras Sequential": lambda: net(x), "layer loop": layer_loop, "torch": lambda: plain(x)}
    result = {}
    for name, call in ways.items():
        for _ in range(20):
            call()
        start = time.perf_counter()
        for _ in range(calls):
            call()
        result[name] = (time.perf_counter() - start) / calls * 1e6
    return result


def run_worker(backend: str, kind: str, steps: int) -> Any:
    env = dict(os.environ, KERAS_BACKEND=backend if kind == "engine" else "torch")
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "import gan_throughput as g; import json; "
        f"print('RESULT', json.dumps(g.{kind}_rate({steps})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.split("RESULT", 1)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    reference = run_worker("torch", "torch", args.steps)
    lines = [
        f"GAN step (k = 1, MLP {UNITS}x2, batch {BATCH}, ring), {args.steps} timed steps; "
        f"{platform.machine()} with {os.cpu_count()} cores.",
        "",
        "| trainer | steps/s | ratio to the PyTorch loop |",
        "|---|---|---|",
        f"| plain PyTorch loop | {reference:.0f} | 1.00 |",
    ]
    for backend in args.backends.split(","):
        rate = run_worker(backend, "engine", args.steps)
        print(f"{backend}: {rate:.0f} steps/s ({rate / reference:.2f} x torch loop)", flush=True)
        lines.append(f"| mp_keras `fit`, {backend} | {rate:.0f} | {rate / reference:.2f} |")
    forward = run_worker("torch", "forward", 10 * args.steps)
    lines += [
        "",
        f"One forward pass of the discriminator (batch {BATCH}), torch backend: Keras "
        f"`Sequential` {forward['keras Sequential']:.0f} µs, its layers called in a Python "
        f"loop {forward['layer loop']:.0f} µs, `torch.nn.Sequential` {forward['torch']:.0f} µs.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_docs:
        write_section(DOCS, "gan_throughput", "all", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
