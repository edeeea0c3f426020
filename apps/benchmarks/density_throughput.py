"""Training throughput of MADE and PixelCNN, engine vs plain PyTorch, and sampling speed.

* Training: examples per second of one `model.fit` epoch (after a warm-up epoch that
  compiles) on 28x28 binarized MNIST images, for MADE (one hidden layer of 500 units) and
  PixelCNN (a 7x7 type-A layer, 4 residual 3x3 type-B layers of 32 filters, two 1x1
  layers), with our engine on each backend; and the same architecture written directly
  in PyTorch (`torch.nn` modules with the same masks, `torch.optim.Adam`, a plain loop).
  Batch 100, Adam 1e-3, float32, the CPU threads PyTorch and XLA choose.
  The plain PyTorch PixelCNN is the common form, `conv2d(x, weight * mask)` with the
  whole k x k kernel; a second column runs it with the kernel cropped to its non-zero
  rows, as `mp_keras.layers.MaskedConv2D` does, so each side's share of the speed is
  visible. XLA runs a convolution on one CPU thread, so JAX is also measured with
  `--jax-devices` simulated CPU devices (`mp_keras.distribution.data_parallel`, the
  batch split between them): the whole machine, as PyTorch's threads use it.
* Sampling: PixelCNN samples per second for 28x28 images, `model.sample` (one compiled
  step reused for all 784 pixels) vs calling `model.predict` on the whole image once per
  pixel, the common pattern.

Each measurement runs in its own process (one Keras backend per process); the table is
printed and, unless `--no-docs`, written into `docs/chapter6.md`.

Usage (from the repository root):

    .venv/bin/python apps/benchmarks/density_throughput.py [--backends tensorflow,jax,torch]
        [--jax-devices 2] [--examples 2000] [--samples 8] [--no-docs]
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


def engine_throughput(name: str, examples: int, devices: int = 1) -> float:
    """Examples per second of `fit` with the engine on this process's backend.

    With `devices` > 1 (JAX), the batch is split over that many devices
    (`keras.distribution.DataParallel`); the model is built after the distribution.
    """
    import keras

    from mp_keras.distribution import data_parallel

    data_parallel(devices, BATCH)
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


def _torch_pixelcnn(cropped: bool = False) -> Any:
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
            if not cropped:
                return torch.nn.functional.conv2d(
                    x, self.weight * self.mask, self.bias, padding=self.padding
                )
            rows, side = self.kernel_size[0] // 2 + 1, self.kernel_size[1] // 2
            x = torch.nn.functional.pad(x, (side, side, rows - 1, 0))  # left, right, top
            return torch.nn.functional.conv2d(x, (self.weight * self.mask)[:, :, :rows], self.bias)

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
    """Examples per second of the same architecture in plain PyTorch.

    `name` is "made", "pixelcnn" or "pixelcnn_cropped" (masked kernels cropped to their
    non-zero rows).
    """
    import torch

    x = torch.tensor(_images(examples))
    net = _torch_made() if name == "made" else _torch_pixelcnn(name == "pixelcnn_cropped")
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


def _worker(task: str, examples: int, samples: int, devices: int = 1) -> dict[str, Any]:
    kind, name = task.split(":")
    if kind == "engine":
        return {"examples_per_s": engine_throughput(name, examples, devices)}
    if kind == "torch":
        return {"examples_per_s": torch_throughput(name, examples)}
    return sampling_speed(samples)


def _run(task: str, backend: str, examples: int, samples: int, devices: int = 1) -> dict[str, Any]:
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    if devices > 1:
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    command = [sys.executable, __file__, "--worker", task, "--jax-devices", str(devices)]
    command += ["--examples", str(examples), "--samples", str(samples)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{task} on {backend} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _columns(backends: list[str], jax_devices: int) -> list[tuple[str, str, int]]:
    """(heading, task kind, devices) of every timed column, plain PyTorch first."""
    columns = [("plain PyTorch", "torch", 1), ("plain PyTorch, cropped kernels", "cropped", 1)]
    for backend in backends:
        columns.append((f"engine, {backend}", backend, 1))
        if backend == "jax" and jax_devices > 1:
            columns.append((f"engine, jax on {jax_devices} CPU devices", backend, jax_devices))
    return columns


def _throughput(name: str, kind: str, devices: int, examples: int, samples: int) -> float | None:
    if kind == "cropped":
        if name != "pixelcnn":
            return None
        return _run("torch:pixelcnn_cropped", "torch", examples, samples)["examples_per_s"]
    if kind == "torch":
        return _run(f"torch:{name}", "torch", examples, samples)["examples_per_s"]
    return _run(f"engine:{name}", kind, examples, samples, devices)["examples_per_s"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument(
        "--jax-devices", type=int, default=2, help="simulated CPU devices of the extra JAX column"
    )
    parser.add_argument("--examples", type=int, default=2000, help="timed training examples")
    parser.add_argument(
        "--repeats", type=int, default=2, help="rounds over all columns; each cell keeps its best"
    )
    parser.add_argument("--samples", type=int, default=8, help="PixelCNN samples timed")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.examples, args.samples, args.jax_devices)))
        return 0
    if args.repeats < 1 or args.jax_devices < 1 or BATCH % args.jax_devices:
        parser.error(f"--repeats must be >= 1 and --jax-devices a divisor of the batch {BATCH}")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    columns = _columns(backends, args.jax_devices)
    lines = [
        f"28x28 binarized MNIST, batch {BATCH}, Adam; {platform.machine()} with "
        f"{os.cpu_count()} cores, best of {args.repeats} rounds; rerun with "
        "`apps/benchmarks/density_throughput.py`.",
        "",
        "| model | " + " | ".join(heading for heading, _, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name in ("made", "pixelcnn"):
        best: list[float | None] = [None] * len(columns)
        for _ in range(args.repeats):  # rounds, so that a noisy minute hits every column
            for i, (_, kind, devices) in enumerate(columns):
                rate = _throughput(name, kind, devices, args.examples, args.samples)
                if rate is not None:
                    best[i] = max(rate, best[i] or 0.0)
        plain = best[0]
        cells = ["—" if r is None else f"{r:,.0f} ex/s ({r / plain:.2f}x)" for r in best]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
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
