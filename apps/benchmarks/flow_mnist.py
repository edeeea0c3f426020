"""MNIST bits per dimension of RealNVP and Glow at a CPU budget, next to the papers.

The MNIST test set of `../shared/data/mnist_test.npz` (10,000 digits, 256 grey levels,
the only MNIST images on this offline machine) is split into 7,000 training, 1,000
validation and 2,000 test images (the first 7,000 / next 1,000 / last 2,000). Each model
is trained with Adam for a wall-clock budget of `--minutes` (whole epochs; the epoch with
the best validation bits/dim is kept, and after two epochs without improvement training
resumes from it at 0.3 times the learning rate; four such decays in a row without a
gain of 0.001 bits/dim end training early), with uniform dequantisation and the logit
transform; its bits/dim on the test images is that of the discrete data, the standard
bound (NLL of x + u, u uniform over one grey level, plus D log 256, over D ln 2; one
seeded draw of u). Published (full 60,000-image training set, GPU days): RealNVP 1.06,
Glow 1.05 bits/dim. The CPU configurations are small; `--recipe paper` builds the papers'
sizes (RealNVP: 3 scales, 64-channel conditioners; Glow: K = 32 steps per level, 512
channels; for a GPU, with `--minutes` in the hundreds) - MNIST's 28 x 28 allows two
squeezes, so Glow has L = 2 levels here rather than the paper's 3 on 32 x 32 padded digits.

Figures (`--figure`, default docs/figures/chapter7_mnist_flows.png): samples of each model
at temperatures 0.5, 0.7 and 1.0, and a latent interpolation between two test digits
(z = f^-1(x) of each, then f of the points on the great circle through them, which keeps
the latents' norm typical). The table is printed and written into docs/chapter7.md
(one block per backend) unless `--no-docs`; each model's result is kept in
`runs/flow_mnist/BACKEND/NAME.json`.

Usage (from the repository root):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/flow_mnist.py [--minutes 10]
        [--models realnvp,glow] [--recipe cpu|paper] [--no-docs]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from pathlib import Path
from typing import Any

from _docs import write_section  # benchmarks/ is on sys.path when run as a script
from _training import train_for_minutes

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs" / "chapter7.md"
RESULTS = REPO / "runs" / "flow_mnist"
MNIST = REPO.parent / "shared" / "data" / "mnist_test.npz"
FIGURE = REPO / "docs" / "figures" / "chapter7_mnist_flows.png"
TEMPERATURES = (0.5, 0.7, 1.0)

PUBLISHED = {  # MNIST bits/dim, as tabulated by Grathwohl et al. 2019 (FFJORD), table 2
    "realnvp": "1.06 (Dinh et al. 2017)",
    "glow": "1.05 (Kingma & Dhariwal 2018)",
}
# The CPU configurations: name -> (class, constructor arguments, learning rate, batch size).
# `--recipe paper` builds the registry's paper recipes instead (`mp-keras train NAME
# --recipe paper`), with their optimizer and batch size.
CPU: dict[str, tuple[str, dict[str, Any], float, int]] = {
    "realnvp": ("RealNVP", {"num_scales": 2, "hidden_units": (32, 32)}, 1e-3, 64),
    "glow": ("Glow", {"num_scales": 2, "steps_per_scale": 4, "hidden_units": (32, 32)}, 1e-3, 64),
}


def load_mnist() -> tuple[Any, Any, Any]:
    """Train, validation and test images k / 255, shape (n, 28, 28, 1)."""
    import numpy as np

    with np.load(MNIST) as archive:
        x = (archive["images"][..., None] / 255.0).astype("float32")
    return x[:7000], x[7000:8000], x[8000:]


def run_model(name: str, recipe: str, minutes: float, data: tuple, seed: int) -> tuple[dict, Any]:
    """Trains one flow for `minutes` and measures its test bits/dim."""
    import keras

    from mp_keras import models

    train, valid, test = data
    keras.utils.set_random_seed(seed)
    if recipe == "paper":
        from mp_keras.data.embedded import DatasetInfo
        from mp_keras.registry import get_recipe

        paper = get_recipe(name, "paper")
        info = DatasetInfo("mnist", train.shape[1:], 10, False, (0.0, 1.0), "MNIST digits")
        model, optimizer, batch_size = paper.build(info, seed), paper.optimizer(), paper.batch_size
        cls_name, kwargs = type(model).__name__, {"recipe": "paper"}
    else:
        cls_name, kwargs, rate, batch_size = CPU[name]
        model = getattr(models, cls_name)(
            input_shape=train.shape[1:], num_levels=256, seed=seed, **kwargs
        )
        optimizer = keras.optimizers.Adam(rate)
    model.compile(optimizer=optimizer)
    best, epochs, seconds = train_for_minutes(
        model,
        optimizer,
        train,
        lambda: model.density_metrics(valid, batch_size=250)["bits_per_dim"],
        minutes,
        batch_size,
        name,
        min_gain=1e-3,  # bits/dim: a gain below this is no progress
    )
    metrics = model.density_metrics(test, batch_size=250)
    result = {
        "model": name,
        "class": cls_name,
        "recipe": recipe,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
        "parameters": int(sum(math.prod(w.shape) for w in model.trainable_weights)),
        "epochs": epochs,
        "train_seconds": round(seconds, 1),
        "learning_rate": float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
        "batch_size": batch_size,
        "valid_bits_per_dim": round(best, 3),
        "test_bits_per_dim": round(metrics["bits_per_dim"], 3),
        "test_nll_nats": round(metrics["nll"], 1),
        "published": PUBLISHED[name],
    }
    return result, model


def figure(trained: dict[str, Any], test: Any, path: Path, seed: int) -> None:
    """Samples at each temperature and a latent interpolation, one row each per model."""
    import numpy as np
    from keras import ops

    from mp_keras.plots import save_image_grid

    rows = {}
    for name, model in trained.items():
        for t in TEMPERATURES:
            rows[f"{name} T={t}"] = ops.convert_to_numpy(model.sample(10, seed=seed, temperature=t))
        z = ops.convert_to_numpy(model(test[:2])).reshape(2, -1)
        # The great circle through the two latents, at the mean of their norms.
        norm = np.linalg.norm(z, axis=1).mean()
        a, b = z[0] / np.linalg.norm(z[0]), z[1] / np.linalg.norm(z[1])
        angle = np.arccos(np.clip(a @ b, -1.0, 1.0))
        steps = np.linspace(0.0, 1.0, 10)
        path_z = np.stack(
            [np.sin((1 - s) * angle) * a + np.sin(s * angle) * b for s in steps]
        ) / max(np.sin(angle), 1e-6)
        latents = (norm * path_z).reshape(10, *model.latent_shape).astype("float32")
        rows[f"{name} interp."] = ops.convert_to_numpy(model.decode(latents))
    save_image_grid({k: np.clip(v, 0.0, 1.0) for k, v in rows.items()}, path)


def table(results: list[dict], backend: str) -> str:
    lines = [
        "MNIST (7,000 training images of the test set, 2,000 held-out test images), "
        f"bits/dim of the 256-level data, backend `{backend}`, "
        f"{platform.processor() or platform.machine()} with {os.cpu_count()} cores; rerun "
        "with `apps/benchmarks/flow_mnist.py`.",
        "",
        "| model | configuration | parameters | epochs | train time | test bits/dim | published |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        config = ", ".join(f"{k}={v}" for k, v in r["config"].items())
        lines.append(
            f"| {r['model']} ({r['recipe']}) | {r['class']}({config}) | {r['parameters']:,} "
            f"| {r['epochs']} | {r['train_seconds'] / 60:.1f} min | {r['test_bits_per_dim']:.3f} "
            f"| {r['published']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="realnvp,glow", help="comma-separated names")
    parser.add_argument("--recipe", choices=("cpu", "paper"), default="cpu")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CPU))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {sorted(CPU)}")
    if not MNIST.is_file():
        print(f"skipped: no MNIST archive at {MNIST} (the shared reference data)")
        return 0

    import keras

    from mp_keras import io

    backend = keras.backend.backend()
    folder = RESULTS / backend
    folder.mkdir(parents=True, exist_ok=True)
    data = load_mnist()
    trained = {}
    for name in names:
        print(f"{name} ({args.recipe}): training for {args.minutes} min", flush=True)
        result, trained[name] = run_model(name, args.recipe, args.minutes, data, args.seed)
        io.write_json(folder / f"{name}_{args.recipe}.json", result)
        print(json.dumps(result), flush=True)
    figure(trained, data[2], args.figure, args.seed)
    print(f"figure: {args.figure}")
    results = [
        json.loads(path.read_text()) for path in sorted(folder.glob("*.json")) if path.is_file()
    ]
    text = table(results, backend)
    print(text)
    if not args.no_docs:
        write_section(DOCS, "flow-mnist", backend, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
