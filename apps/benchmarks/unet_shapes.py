"""U-Net mean IoU on the generated `shapes` segmentation data, per decoder upsampling.

Trains `mp_keras.models.unet.UNet(filters=(16, 32, 64))` on the 2,000 training images of
`shapes` (32x32, classes background / circle / square / triangle) with each requested
upsampling, and reports pixel accuracy and mean intersection over union on the 400 held-out
test images; the goal is a test mean IoU of at least 0.9. The first model's predictions on
test images are drawn into `docs/figures/unet_shapes.png`; it is also exported
(SavedModel + TFLite) and the parity differences are reported.

The figures are printed and written into `docs/chapter3.md`, in a block per backend
(replaced when run again); the exit status is 1 if a model misses the goal.

Usage (from the repository root):

    .venv/bin/python apps/benchmarks/unet_shapes.py [--backend tensorflow|jax|torch]
        [--upsampling transposed,nearest,bed_of_nails,max_unpooling] [--epochs 12]
        [--seed 0] [--no-docs]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _docs import write_section  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "chapter3.md"
FIGURE = REPO / "docs" / "figures" / "unet_shapes.png"
GOAL = 0.9
FILTERS = (16, 32, 64)


def train(upsampling: str, epochs: int, batch_size: int, seed: int) -> tuple[Any, dict]:
    import keras

    from mp_keras import data
    from mp_keras.models.unet import UNet

    keras.utils.set_random_seed(seed)
    train_set, test_set = data.load("shapes", "train"), data.load("shapes", "test")
    model = UNet(input_shape=(32, 32, 1), num_classes=4, filters=FILTERS, upsampling=upsampling)
    steps = epochs * -(-len(train_set) // batch_size)
    # Cosine decay: large steps while the shapes are being told apart, small ones at the end
    # so that the batch-normalization statistics settle with the weights.
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, decay_steps=steps, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    start = time.perf_counter()
    model.fit(train_set.x, train_set.y, epochs=epochs, batch_size=batch_size, verbose=2)
    seconds = time.perf_counter() - start
    result = model.evaluate(test_set.x, test_set.y, batch_size=100, verbose=0, return_dict=True)
    return model, {
        "upsampling": upsampling,
        "mean_iou": float(result["mean_iou"]),
        "accuracy": float(result["accuracy"]),
        "params": model.count_params(),
        "seconds": seconds,
    }


def export_diffs(model: Any) -> dict[str, float]:
    from mp_keras.export import export_model

    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "unet.keras")
        manifest = export_model(Path(tmp) / "unet.keras", Path(tmp) / "export")
    return {
        f"{artifact['format']} {name}": entry["max_abs_diff"]
        for artifact in manifest["artifacts"]
        for name, entry in artifact["endpoints"].items()
    }


def save_figure(model: Any) -> None:
    from mp_keras import data
    from mp_keras.plots.segmentation import save_segmentation_figure

    test_set = data.load("shapes", "test")
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    save_segmentation_figure(model, FIGURE, test_set.x, test_set.y, num=8)


def markdown(
    backend: str, command: str, runs: list[dict], epochs: int, seed: int, diffs: dict
) -> str:
    import keras

    today = datetime.date.today().isoformat()
    verdict = "met" if min(run["mean_iou"] for run in runs) >= GOAL else "MISSED"
    lines = [
        f"#### {backend}",
        "",
        f"Command: `{command}`; backend {backend}; {today}; machine: {os.cpu_count()}-core "
        f"{platform.machine()} CPU, no GPU, shared with other jobs; Keras {keras.__version__}; "
        f"seed {seed}; {epochs} epochs of batch 32, Adam with cosine decay from 3e-3.",
        "",
        "| upsampling | test mean IoU | test pixel accuracy | parameters | training time |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| `{run['upsampling']}` | {run['mean_iou']:.3f} | {run['accuracy']:.2%} | "
            f"{run['params']:,} | {run['seconds']:.0f} s |"
            for run in runs
        ),
        "",
        f"The {GOAL} mean-IoU goal (every model): {verdict}. Export of the "
        f"`{runs[0]['upsampling']}` model (`export_model`; largest absolute difference from "
        "the Keras probabilities): " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()) + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--upsampling", default="transposed,nearest,bed_of_nails,max_unpooling")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend  # Keras reads it once, at import
    sys.path.insert(0, str(REPO))

    runs, first = [], None
    for upsampling in args.upsampling.split(","):
        model, run = train(upsampling, args.epochs, args.batch_size, args.seed)
        print(f"{upsampling}: test mean IoU {run['mean_iou']:.4f}, accuracy {run['accuracy']:.4f}")
        runs.append(run)
        if first is None:
            first = model
    diffs = export_diffs(first)

    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--no-docs"]
    if "--backend" not in given:
        given = ["--backend", args.backend, *given]
    command = " ".join([".venv/bin/python", "apps/benchmarks/unet_shapes.py", *given])
    text = markdown(args.backend, command, runs, args.epochs, args.seed, diffs)
    print(text)
    if not args.no_docs:
        save_figure(first)
        write_section(DOCS, "unet_shapes", args.backend, text)
    return 0 if min(run["mean_iou"] for run in runs) >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
