"""Flow2D against two PyTorch flow libraries, zuko and normflows, on 2-D moons.

The same RealNVP-style flow in each: 6 affine couplings, the two coordinates taking
turns, each coupling's shift and log-scale from an MLP with two hidden ReLU layers of 64
units, a standard normal base; trained by maximum likelihood on the same 4,096 `moons`
training points with batch 128, Adam 1e-3 (constant) and the same number of steps
(`--steps`, rounded to whole epochs), then evaluated on the same 1,024 test points; one
run per seed of `--seeds` (0, 1, 2 by default: the seed draws the data and the weights).

* ours: `mp_keras.models.Flow2D(num_couplings=6, hidden_units=(64, 64))` trained with
  `model.fit`, on each backend of `--backends` (each in its own process) and for each
  `steps_per_execution` of `--steps-per-execution` (1 = Keras' default: one compiled step
  per Python call; PyTorch takes only 1).
* zuko (`zuko.flows.RealNVP(2, transforms=6, hidden_features=(64, 64))`) and normflows
  (`AffineCouplingBlock(MLP([1, 64, 64, 2], init_zeros=True))` and a swap `Permute`,
  six times, as in its 2-D examples), each with a plain PyTorch loop: shuffle, then per
  batch `-log_prob(x).mean()`, `backward()`, `Adam.step()`. Both are optional: each is
  imported lazily and skipped with a message when it is not installed
  (`.venv/bin/pip install zuko normflows`).

How throughput is measured: every run records the wall time at the end of each epoch;
training steps per second are the steps of epochs 2..E over the time from the end of
epoch 1 to the end of epoch E, so the first epoch (JIT compilation and tracing on
TensorFlow and JAX, warm-up for PyTorch) is left out. Differences of the scale bound (ours
s = 2 tanh(raw); zuko's soft clip at |s| < 6.9; normflows' unbounded exp) and of the
initialisation (zuko's last layer is not zero-initialised) are those of the libraries'
defaults.

The table is printed and, unless `--no-docs`, written into `docs/chapter7.md` between
`<!-- flow-peers all begin/end -->` markers.

Usage (from the repository root; about 3 minutes on a 2-core machine):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/flow_peers.py
        [--backends tensorflow,jax,torch] [--steps-per-execution 1,32] [--steps 6400]
        [--peers zuko,normflows] [--torch-threads 1] [--no-docs]

PyTorch runs (our torch backend and both peers) use `--torch-threads` threads (1 by
default: on this shared 2-core machine PyTorch's own choice ran up to 6x slower).
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
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs" / "chapter7.md"
COUPLINGS, HIDDEN = 6, (64, 64)
TRAIN, BATCH, RATE = 4096, 128, 1e-3
PEERS = ("zuko", "normflows")


def _moons(seed: int) -> tuple[Any, Any]:
    from mp_keras import data

    return (
        data.load("moons", "train", seed=seed, num_examples=TRAIN).x,
        data.load("moons", "test", seed=seed).x,
    )


def _epochs(steps: int) -> int:
    return max(2, -(-steps // (TRAIN // BATCH)))


def _rate(ends: list[float], start: float, epochs: int) -> dict[str, float]:
    """Steady steps/s (epochs 2..E) and the first epoch's seconds from `ends`."""
    per_epoch = TRAIN // BATCH
    return {
        "steps_per_s": (epochs - 1) * per_epoch / (ends[-1] - ends[0]),
        "first_epoch_s": ends[0] - start,
        "train_s": ends[-1] - start,
        "steps": epochs * per_epoch,
    }


def ours(steps: int, steps_per_execution: int, seed: int) -> dict[str, Any]:
    """Flow2D with `model.fit` on this process's Keras backend."""
    import keras

    from mp_keras.models import Flow2D

    x, x_test = _moons(seed)
    keras.utils.set_random_seed(seed)
    model = Flow2D(num_couplings=COUPLINGS, hidden_units=HIDDEN, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(RATE), steps_per_execution=steps_per_execution)
    ends: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter())
    )
    epochs = _epochs(steps)
    start = time.perf_counter()
    model.fit(x, epochs=epochs, batch_size=BATCH, shuffle=True, verbose=0, callbacks=[timer])
    result = _rate(ends, start, epochs)
    weights = sum(int(keras.ops.size(v)) for v in model.trainable_variables)
    return {**result, "test_nll": model.nll(x_test), "weights": weights}


def _zuko() -> tuple[Any, Any]:
    import zuko

    flow = zuko.flows.RealNVP(2, transforms=COUPLINGS, hidden_features=HIDDEN)
    return flow, lambda x: flow().log_prob(x)


def _normflows() -> tuple[Any, Any]:
    import normflows

    layers = []
    for _ in range(COUPLINGS):
        net = normflows.nets.MLP([1, *HIDDEN, 2], init_zeros=True)
        layers += [normflows.flows.AffineCouplingBlock(net), normflows.flows.Permute(2, "swap")]
    flow = normflows.NormalizingFlow(normflows.distributions.DiagGaussian(2), layers)
    return flow, flow.log_prob


def peer(name: str, steps: int, seed: int) -> dict[str, Any]:
    """A peer library's flow trained with a plain PyTorch loop."""
    import numpy as np
    import torch

    x, x_test = _moons(seed)
    torch.manual_seed(seed)
    flow, log_prob = _zuko() if name == "zuko" else _normflows()
    optimizer = torch.optim.Adam(flow.parameters(), lr=RATE)
    data = torch.from_numpy(x)
    rng = np.random.default_rng(seed)
    epochs = _epochs(steps)
    ends: list[float] = []
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(data)))
        for first in range(0, len(data), BATCH):
            loss = -log_prob(data[order[first : first + BATCH]]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        ends.append(time.perf_counter())
    result = _rate(ends, start, epochs)
    with torch.no_grad():
        nll = -float(log_prob(torch.from_numpy(x_test)).mean())
    weights = sum(p.numel() for p in flow.parameters() if p.requires_grad)
    return {**result, "test_nll": nll, "weights": weights}


def _worker(task: str, steps: int, seed: int, torch_threads: int) -> dict[str, Any]:
    if torch_threads and os.environ.get("KERAS_BACKEND") == "torch":
        # On a few shared cores PyTorch's spinning worker threads cost more than they give.
        import torch

        torch.set_num_threads(torch_threads)
    kind, _, arg = task.partition(":")
    if kind == "ours":
        return ours(steps, int(arg), seed)
    return peer(kind, steps, seed)


def _run_once(task: str, backend: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, __file__, "--worker", task, "--steps", str(args.steps)]
    command += ["--seed", str(seed), "--torch-threads", str(args.torch_threads)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{task} on {backend} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run(task: str, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """One run per seed of `--seeds`: the median steps/s and times, the NLLs of each seed."""
    import numpy as np

    runs = [_run_once(task, backend, args, seed) for seed in args.seeds]
    summary = {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
    summary.update(steps=runs[0]["steps"], weights=runs[0]["weights"])  # the same in each
    nlls = [r["test_nll"] for r in runs]
    return {**summary, "test_nll": float(np.mean(nlls)), "test_nlls": nlls}


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=os.environ.get("KERAS_BACKEND", "jax"))
    parser.add_argument("--steps-per-execution", default="1", help="comma-separated values")
    parser.add_argument("--steps", type=int, default=6400, help="training steps (whole epochs)")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)  # a worker's
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated; one run per seed")
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="PyTorch threads (0: PyTorch's choice)"
    )
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.steps, args.seed, args.torch_threads)))
        return 0

    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    spes = [int(s) for s in args.steps_per_execution.split(",") if s.strip()]
    rows: list[tuple[str, dict[str, Any]]] = []
    for backend in backends:
        # Keras runs one step per call on PyTorch (steps_per_execution must be 1 there).
        for spe in [1] if backend == "torch" else spes:
            label = f"ours, `Flow2D` + `fit`, {backend}, steps_per_execution={spe}"
            rows.append((label, _run(f"ours:{spe}", backend, args)))
            print(label, rows[-1][1], flush=True)
    skipped = []
    for name in [p.strip() for p in args.peers.split(",") if p.strip()]:
        if name not in PEERS:
            parser.error(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")
        if not _installed(name):
            print(f"skipping {name}: not installed (.venv/bin/pip install {name})")
            skipped.append(name)
            continue
        rows.append((f"{name} (PyTorch loop)", _run(name, "torch", args)))
        print(name, rows[-1][1], flush=True)

    peers = [r for label, r in rows if not label.startswith("ours")]
    fastest_peer = max((r["steps_per_s"] for r in peers), default=None)
    threads = args.torch_threads or "PyTorch's default"
    lines = [
        f"RealNVP-style flow on `moons` ({TRAIN:,} train / 1,024 test points; seeds "
        f"{', '.join(map(str, args.seeds))} of the data and the weights, one run each): "
        f"{COUPLINGS} affine couplings, MLP 2x{HIDDEN[0]}, batch {BATCH}, Adam "
        f"{RATE:g}, {rows[0][1]['steps']:,} steps; steps/s over epochs 2..E (the first "
        f"epoch, with compilation, left out); {platform.machine()} with {os.cpu_count()} "
        f"cores, PyTorch threads: {threads}; rerun with `apps/benchmarks/flow_peers.py`.",
        "",
        "| implementation | weights | train steps/s (median) | vs fastest peer | first epoch "
        "| train time | test NLL (nats/point): mean (per seed) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in rows:
        ratio = "-" if fastest_peer is None else f"{r['steps_per_s'] / fastest_peer:.2f}x"
        lines.append(
            f"| {label} | {r['weights']:,} | {r['steps_per_s']:,.0f} | {ratio} | "
            f"{r['first_epoch_s']:.1f} s | {r['train_s']:.1f} s | {r['test_nll']:.3f} "
            f"({', '.join(f'{v:.3f}' for v in r['test_nlls'])}) |"
        )
    if skipped:
        lines += ["", f"Not installed, skipped: {', '.join(skipped)}."]
    text = "\n".join(lines)
    print(text)
    if not args.no_docs:
        write_section(DOCS, "flow-peers", "all", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
