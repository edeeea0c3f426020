"""Training throughput of MADE and PixelCNN, engine vs plain PyTorch, and sampling speed.

* Training: examples per second of one `model.fit` epoch (after a warm-up epoch that
  compiles) on 28x28 binarized MNIST images, for MADE (one hidden layer of 500 units) and
  PixelCNN (a 7x7 type-A layer, 4 residual 3x3 type-B layers of 32 filters, two 1x1
  layers), with our engine on each backend; and the same architecture written directly
  in PyTorch (`torch.nn` modules with the same masks, `torch.optim.Adam`, a plain loop).
  Batch 100, Adam 1e-3, float32, the CPU threads PyTorch and XLA choose.
* Sampling: PixelCNN samples per second for 28x28 images, `model.sample` (one compiled
  step reused for all 784 pixels) vs calling `model.predict` on the whole image once per
  pixel, the common pattern.

Each measurement runs in its own process (one Keras backend per process); the table is
printed and, unless `--no-docs`, written into `docs/chapter6.md`.

Usage (from the repository root):

    .venv/bin/python apps/benchmarks/density_throughput.py [--backends tensorflow,jax,torch]
        [--examples 2000] [--samples 8] [--no-docs]
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
DOCS = REPO / "docs" / "chapter6.md"
DATA = REPO.parent / "shared" / "data" / "binarized_mnist.npz"
BATCH = 100
PIXELCNN = {"filters": 32, "num_layers": 4, "first_kernel_size": 7, "kernel_size": 3}


def _images(num: int) -> Any:
    import numpy as np

    if DATA.is_file():
        from mp_keras.data import load_binarized_mnist

        return load_binarized_mnist(DATA, "train", num_examples=num).x
    rng = np.random.default_rng(0)  # the same shapes and sparsity, if the file is absent
    return (rng.random((num, 28, 28, 1)) < 0.13).astype("float32")


def _build(name: str) -> Any:
    from mp_keras.models import MADE, PixelCNN

    if name == "made":
        return MADE(input_shape=(28, 28, 1), hidden_units=(500,), seed=0)
    return PixelCNN(input_shape=(28, 28, 1), seed=0, **PIXELCNN)


def engine_throughput(name: str, examples: int) -> float:
    """Examples per second of `fit` with the engine on this process's backend."""
    import keras

    x = _images(examples)
    model = _build(name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x[: 2 * BATCH], epochs=1, batch_size=BATCH, verbose=0)  # compiles
    start = time.perf_counter()
    model.fit(x, epochs=1, batch_size=BATCH, verbose=0)
    return len(x) // BATCH * BATCH / (time.perf_counter() - start)


def _torch_made() -> Any:
    import torch

    masks = [torch.tensor(m) for m in _build("made").masks(0)]

    class MaskedLinear(torch.nn.Module):
        def __init__(self, mask: Any) -> None:
            super().__init__()
            self.register_buffer("mask", mask)
            self.weight = torch.nn.Parameter(torch.randn(mask.shape) * 0.05)
            self.bias = torch.nn.Parameter(torch.zeros(mask.shape[1]))

        def forward(self, x: Any) -> Any:
            return x @ (self.weight * self.mask) + self.bias

    class Made(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = MaskedLinear(masks[0])
            self.out = MaskedLinear(masks[1])

        def forward(self, x: Any) -> Any:
            flat = x.reshape(len(x), -1)
            return self.out(torch.relu(self.hidden(flat))).reshape(x.shape)

    return Made()


def _torch_pixelcnn() -> Any:
    import torch

    def mask(size: int, kind: str) -> Any:
        m = torch.zeros(size, size)
        centre = size // 2
        m[:centre] = 1
        m[centre, : centre + (kind == "B")] = 1
        return m

    class MaskedConv(torch.nn.Conv2d):
        def __init__(self, cin: int, cout: int, size: int, kind: str) -> None:
            super().__init__(cin, cout, size, padding=size // 2)
            self.register_buffer("mask", mask(size, kind))

        def forward(self, x: Any) -> Any:
            return torch.nn.functional.conv2d(
                x, self.weight * self.mask, self.bias, padding=self.padding
            )

    filters, layers = PIXELCNN["filters"], PIXELCNN["num_layers"]

    class PixelCnn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = MaskedConv(1, filters, PIXELCNN["first_kernel_size"], "A")
            self.hidden = torch.nn.ModuleList(
                MaskedConv(filters, filters, PIXELCNN["kernel_size"], "B") for _ in range(layers)
            )
            self.head = torch.nn.Conv2d(filters, filters, 1)
            self.logits = torch.nn.Conv2d(filters, 1, 1)

        def forward(self, x: Any) -> Any:
            h = self.first(x.permute(0, 3, 1, 2))
            for layer in self.hidden:
                h = h + layer(torch.relu(h))
            out = self.logits(torch.relu(self.head(torch.relu(h))))
            return out.permute(0, 2, 3, 1)

    return PixelCnn()


def torch_throughput(name: str, examples: int) -> float:
    """Examples per second of the same architecture in plain PyTorch."""
    import torch

    x = torch.tensor(_images(examples))
    net = _torch_made() if name == "made" else _torch_pixelcnn()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def epoch(data: Any) -> None:
        for start in range(0, len(data) - BATCH + 1, BATCH):
            batch = data[start : start + BATCH]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(batch), batch, reduction="sum"
            ) / len(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    epoch(x[: 2 * BATCH])
    start = time.perf_counter()
    epoch(x)
    return len(x) // BATCH * BATCH / (time.perf_counter() - start)


def sampling_speed(num: int) -> dict[str, float]:
    """PixelCNN samples/s: compiled step vs `predict` on the whole image per pixel."""
    import numpy as np

    model = _build("pixelcnn")
    model.sample(num, seed=0)  # traces the step
    start = time.perf_counter()
    model.sample(num, seed=1)
    compiled = num / (time.perf_counter() - start)

    rng = np.random.default_rng(1)
    x = np.zeros((num, 28, 28, 1), "float32")
    model.predict(x, verbose=0)  # compiles
    start = time.perf_counter()
    for row in range(28):
        for col in range(28):
            p = model.predict(x, verbose=0, batch_size=num)[:, row, col, 0]
            x[:, row, col, 0] = rng.random(num) < p
    naive = num / (time.perf_counter() - start)
    return {"compiled": compiled, "predict_per_pixel": naive}


def _worker(task: str, examples: int, samples: int) -> dict[str, Any]:
    kind, name = task.split(":")
    if kind == "engine":
        return {"examples_per_s": engine_throughput(name, examples)}
    if kind == "torch":
        return {"examples_per_s": torch_throughput(name, examples)}
    return sampling_speed(samples)


def _run(task: str, backend: str, examples: int, samples: int) -> dict[str, Any]:
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, __file__, "--worker", task]
    command += ["--examples", str(examples), "--samples", str(samples)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{task} on {backend} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--examples", type=int, default=2000, help="timed training examples")
    parser.add_argument("--samples", type=int, default=8, help="PixelCNN samples timed")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.examples, args.samples)))
        return 0
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    lines = [
        f"28x28 binarized MNIST, batch {BATCH}, Adam; {platform.machine()} with "
        f"{os.cpu_count()} cores; rerun with `apps/benchmarks/density_throughput.py`.",
        "",
        "| model | plain PyTorch | " + " | ".join(f"engine, {b}" for b in backends) + " |",
        "|---|---|" + "---|" * len(backends),
    ]
    for name in ("made", "pixelcnn"):
        plain = _run(f"torch:{name}", "torch", args.examples, args.samples)["examples_per_s"]
        cells = []
        for backend in backends:
            ours = _run(f"engine:{name}", backend, args.examples, args.samples)["examples_per_s"]
            cells.append(f"{ours:,.0f} ex/s ({ours / plain:.2f}x)")
        lines.append(f"| {name} | {plain:,.0f} ex/s (1.00x) | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"PixelCNN sampling, {args.samples} images of 28x28 (784 sequential steps):",
        "",
        "| backend | compiled step (`sample`) | `predict` per pixel | speed-up |",
        "|---|---|---|---|",
    ]
    for backend in backends:
        speed = _run("sample:pixelcnn", backend, args.examples, args.samples)
        lines.append(
            f"| {backend} | {speed['compiled']:.2f} samples/s | "
            f"{speed['predict_per_pixel']:.2f} samples/s | "
            f"{speed['compiled'] / speed['predict_per_pixel']:.1f}x |"
        )
    text = "\n".join(lines)
    print(text)
    if not args.no_docs:
        write_section(DOCS, "density-throughput", "all", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
