"""Flow2D densities on the 2-D toy sets: data, exp(log p) on a grid, and samples.

`mp_keras.models.Flow2D` (RealNVP affine couplings, alternating coordinates; notes, 7.5)
is trained by maximum likelihood with `model.fit` on `moons`, `ring` and `checkerboard`
(each with its own size and number of epochs, below; the sharp modes of `ring` and the
edges of `checkerboard` need more couplings and units than `moons`), with Adam and a
cosine-decayed learning rate. One figure, `docs/figures/chapter7_flow2d_density.png`
(`--figure`), has a row per dataset and three columns: the test points, the density
exp(log_prob) on a grid over the data's value range, and samples at temperature 1.

The table (dataset, test NLL in nats per point, the best possible NLL where it is known,
train seconds, epochs) is printed as markdown and, unless `--no-docs`, written into
`docs/chapter7.md` between `<!-- flow2d-density BACKEND begin/end -->` markers.

Usage (from the repository root; the defaults take about 3 minutes on JAX on a 2-core
machine; `--epochs-scale 0.5` halves that):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/flow2d_density.py
        [--datasets moons,ring,checkerboard] [--epochs-scale 1.0] [--seed 0] [--no-docs]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _docs import write_section  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs" / "chapter7.md"
FIGURE = REPO / "docs" / "figures" / "chapter7_flow2d_density.png"
GRID = 200  # grid points per axis of the heat map

# Per dataset: Flow2D size, training-set size, epochs, batch and peak learning rate.
# 16,384 training points rather than the default 4,096: with as many weights as these
# flows have, 4,096 moons over-fit into spiky densities (test NLL 1.42 against 1.18).
CONFIGS: dict[str, dict[str, Any]] = {
    "moons": dict(num_couplings=8, hidden=128, scale=2.0, train=16384, epochs=80, rate=2e-3),
    # std-0.02 modes: |log-det| up to about 2 log(1 / 0.02) = 7.8 per point, hence scale 3.
    "ring": dict(num_couplings=16, hidden=128, scale=3.0, train=16384, epochs=100, rate=1e-3),
    "checkerboard": dict(
        num_couplings=16, hidden=128, scale=2.0, train=16384, epochs=100, rate=1e-3
    ),
}
BATCH = 256


def best_nll() -> dict[str, float]:
    """The exact NLL of the data's own density, where it has a closed form (nats per point),
    from the datasets' own constants."""
    from mp_keras.data import embedded as toys

    square = (2 * toys.CHECKERBOARD_HALF_WIDTH / toys.CHECKERBOARD_SIZE) ** 2
    black = toys.CHECKERBOARD_SIZE**2 // 2
    return {
        # Uniform on the black squares: log of their total area.
        "checkerboard": math.log(black * square),
        # Well-separated Gaussian modes: log of their count plus the entropy of one.
        "ring": math.log(toys.RING_NUM_MODES) + math.log(2.0 * math.pi * math.e * toys.RING_STD**2),
    }


def train_one(name: str, config: dict[str, Any], epochs: int, seed: int) -> dict[str, Any]:
    """Trains one Flow2D; returns it with its test NLL, train seconds and the data."""
    import keras

    from mp_keras import data
    from mp_keras.models import Flow2D

    train = data.load(name, "train", seed=seed, num_examples=config["train"])
    test = data.load(name, "test", seed=seed)
    keras.utils.set_random_seed(seed)
    model = Flow2D(
        num_couplings=config["num_couplings"],
        hidden_units=(config["hidden"],) * 2,
        scale=config["scale"],
        seed=seed,
    )
    steps = epochs * (len(train) // BATCH)
    schedule = keras.optimizers.schedules.CosineDecay(config["rate"], steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    start = time.perf_counter()
    history = model.fit(train.x, epochs=epochs, batch_size=BATCH, verbose=0, shuffle=True)
    seconds = time.perf_counter() - start
    return {
        "name": name,
        "model": model,
        "test": test,
        "config": config,
        "epochs": epochs,
        "steps": steps,
        "seconds": seconds,
        "train_nll": float(history.history["loss"][-1]),
        "test_nll": model.nll(test.x),
        "weights": int(sum(math.prod(v.shape) for v in model.trainable_variables)),
    }


def density_grid(model: Any, low: float, high: float) -> Any:
    """exp(log_prob) on a GRID x GRID grid over [low, high]^2, rows = second coordinate."""
    import keras
    import numpy as np

    axis = np.linspace(low, high, GRID, dtype="float32")
    xs, ys = np.meshgrid(axis, axis)
    points = np.stack([xs.ravel(), ys.ravel()], axis=1)
    log_p = np.concatenate(
        [
            keras.ops.convert_to_numpy(model.log_prob(points[i : i + 4096]))
            for i in range(0, len(points), 4096)
        ]
    )
    return np.exp(log_p).reshape(GRID, GRID)


def save_figure(results: list[dict[str, Any]], path: Path, seed: int) -> None:
    import keras
    import numpy as np
    from matplotlib.colors import PowerNorm

    from mp_keras.plots import _pyplot, write_figure

    plt = _pyplot()
    fig, axes = plt.subplots(len(results), 3, figsize=(9, 3 * len(results)), squeeze=False)
    for row, result in zip(axes, results):
        low, high = result["test"].info.value_range
        pad = 0.1 * (high - low)
        low, high = low - pad, high + pad
        samples = np.asarray(keras.ops.convert_to_numpy(result["model"].sample(2000, seed=seed)))
        points = result["test"].x
        row[0].scatter(points[:, 0], points[:, 1], s=1, c="0.2")
        row[0].set_ylabel(result["name"])
        # A square-root colour scale: the ring's narrow peaks would leave the rest black.
        row[1].imshow(
            density_grid(result["model"], low, high),
            origin="lower",
            extent=(low, high, low, high),
            cmap="magma",
            norm=PowerNorm(0.5),
        )
        row[2].scatter(samples[:, 0], samples[:, 1], s=1, c="tab:red")
        titles = (
            "data (test)",
            f"exp(log p) (sqrt scale), NLL {result['test_nll']:.2f}",
            "samples, T = 1",
        )
        for ax, title in zip(row, titles):
            ax.set_xlim(low, high)
            ax.set_ylim(low, high)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_figure(fig, path, dpi=110)


def table(results: list[dict[str, Any]], backend: str, figure: Path) -> str:
    lines = [
        f"`Flow2D` on the 2-D toy sets: Adam (cosine decay), batch {BATCH}, seed 0, 1,024 "
        f"test points; backend `{backend}`, {platform.machine()} with {os.cpu_count()} cores; "
        f"rerun with `apps/benchmarks/flow2d_density.py`. Figure: "
        f"`{figure.relative_to(REPO) if figure.is_relative_to(REPO) else figure}`.",
        "",
        "| dataset | Flow2D size | train points | epochs (steps) | test NLL (nats/point) "
        "| best possible | train time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c = r["config"]
        best = best_nll().get(r["name"])
        lines.append(
            f"| `{r['name']}` | {c['num_couplings']} couplings, MLP 2x{c['hidden']}, scale "
            f"{c['scale']:g} ({r['weights']:,} weights) | {c['train']:,} | {r['epochs']} "
            f"({r['steps']:,}) | {r['test_nll']:.3f} | "
            f"{'-' if best is None else f'{best:.3f}'} | {r['seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(CONFIGS))
    parser.add_argument(
        "--epochs-scale", type=float, default=1.0, help="multiplies every dataset's epochs"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    import keras

    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown datasets {unknown}; choose from {', '.join(CONFIGS)}")
    results = []
    for name in names:
        epochs = max(1, round(CONFIGS[name]["epochs"] * args.epochs_scale))
        results.append(train_one(name, CONFIGS[name], epochs, args.seed))
        print(f"{name}: test NLL {results[-1]['test_nll']:.3f} in {results[-1]['seconds']:.0f} s")
    save_figure(results, args.figure, args.seed)
    text = table(results, keras.backend.backend(), args.figure.resolve())
    print(text)
    if not args.no_docs:
        write_section(DOCS, "flow2d-density", keras.backend.backend(), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
