"""CNN accuracy on real MNIST digits and on the embedded 8x8 digits, and its export.

MNIST: the first 8,000 images of `../shared/data/mnist_test.npz` (relative to the
repository root) train `mp_keras.models.cnn.CNN`, the last 2,000 test it; the goal is at
least 98% test accuracy. Digits: the embedded scikit-learn digits (1,500 train / 297 test)
with the settings of the `cnn` recipe. The trained MNIST model is then exported with
`mp_keras.export.export_model` and the manifest's largest differences are reported.

The figures are printed and written into `docs/chapter2.md`, in a block per backend and
conv (replaced when run again); the exit status is 1 if a seed misses the goal.

Usage (from the repository root):

    .venv/bin/python apps/benchmarks/cnn_mnist.py [--backend tensorflow|jax|torch]
        [--conv correlation|convolution] [--seeds 0,1,2] [--epochs 12] [--no-docs]
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
MNIST = REPO.parent / "shared" / "data" / "mnist_test.npz"
DOCS = REPO / "docs" / "chapter2.md"
GOAL = 0.98


def load_mnist() -> tuple[Any, Any, Any, Any]:
    """MNIST test set split 8,000 / 2,000, images in [0, 1] with a channel axis."""
    import numpy as np

    if not MNIST.exists():
        sys.exit(f"{MNIST} not found: this benchmark needs the shared reference data.")
    with np.load(MNIST) as archive:
        x = archive["images"].astype("float32")[..., None] / 255.0  # (10000, 28, 28, 1)
        y = archive["labels"].astype("int32")
    return x[:8000], y[:8000], x[8000:], y[8000:]


def train_mnist(epochs: int, batch_size: int, seed: int, conv: str) -> tuple[Any, dict[str, float]]:
    import keras

    from mp_keras.models.cnn import CNN

    keras.utils.set_random_seed(seed)
    x_train, y_train, x_test, y_test = load_mnist()
    model = CNN(input_shape=(28, 28, 1), filters=(32, 64), dense_units=128, dropout=0.25, conv=conv)
    steps = epochs * -(-len(x_train) // batch_size)
    # Cosine decay: large steps early, small ones to settle at the end.
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=2)
    seconds = time.perf_counter() - start
    result = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    train = model.evaluate(x_train, y_train, verbose=0, return_dict=True)
    return model, {
        "test_accuracy": float(result["accuracy"]),
        "test_loss": float(result["loss"]),
        "train_accuracy": float(train["accuracy"]),
        "seconds": seconds,
    }


def train_digits(seed: int, conv: str) -> dict[str, float]:
    """The `cnn` recipe: default CNN, Adam 2e-3, 15 epochs of batch 128."""
    import keras

    from mp_keras import data
    from mp_keras.models.cnn import CNN

    keras.utils.set_random_seed(seed)
    train, test = data.load("digits", "train"), data.load("digits", "test")
    model = CNN(input_shape=train.info.shape, num_classes=train.info.num_classes, conv=conv)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    start = time.perf_counter()
    model.fit(train.x, train.y, epochs=15, batch_size=128, verbose=0)
    seconds = time.perf_counter() - start
    result = model.evaluate(test.x, test.y, verbose=0, return_dict=True)
    return {"test_accuracy": float(result["accuracy"]), "seconds": seconds}


def export_diffs(model: Any) -> dict[str, float]:
    from mp_keras.export import export_model

    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "cnn.keras")
        manifest = export_model(Path(tmp) / "cnn.keras", Path(tmp) / "export")
    return {
        f"{artifact['format']} {name}": entry["max_abs_diff"]
        for artifact in manifest["artifacts"]
        for name, entry in artifact["endpoints"].items()
    }


def markdown(
    backend: str, command: str, runs: list[dict], conv: str, diffs: dict[str, float]
) -> str:
    import keras
    import numpy as np

    def cell(key: str, data: str) -> str:
        values = [run[data][key] for run in runs]
        each = ", ".join(f"{v:.2%}" for v in values)
        return f"{np.mean(values):.2%} ({each})" if len(values) > 1 else each

    def seconds(data: str) -> str:
        return f"{np.mean([run[data]['seconds'] for run in runs]):.0f} s"

    today = datetime.date.today().isoformat()
    worst = min(run["mnist"]["test_accuracy"] for run in runs)
    verdict = "met" if worst >= GOAL else "MISSED"
    epochs = runs[0]["mnist"]["epochs"]
    lines = [
        f"#### {backend}, conv={conv!r}",
        "",
        f"Command: `{command}`; backend {backend}; {today}; machine: {os.cpu_count()}-core "
        f"{platform.machine()} CPU, no GPU, shared with other jobs; Keras {keras.__version__}; "
        f"seed{'s' if len(runs) > 1 else ''} {', '.join(str(run['seed']) for run in runs)}.",
        "",
        "| data | test accuracy, mean (each seed) | train accuracy | training time per seed |",
        "|---|---:|---:|---:|",
        f"| MNIST, 8,000 train / 2,000 test, {epochs} epochs | {cell('test_accuracy', 'mnist')} "
        f"| {cell('train_accuracy', 'mnist')} | {seconds('mnist')} |",
        f"| embedded digits, 1,500 train / 297 test, 15 epochs | "
        f"{cell('test_accuracy', 'digits')} | | {seconds('digits')} |",
        "",
        f"The {GOAL:.0%} MNIST goal (every seed): {verdict}. Export of the first seed's MNIST "
        "model (`export_model`; largest absolute difference from the Keras logits): "
        + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())
        + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--conv", default="correlation", choices=["correlation", "convolution"])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seeds", default="0", help="comma-separated, e.g. 0,1,2")
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend  # Keras reads it once, at import
    sys.path.insert(0, str(REPO))

    runs, exported = [], None
    for seed in (int(s) for s in args.seeds.split(",")):
        model, mnist = train_mnist(args.epochs, args.batch_size, seed, args.conv)
        mnist["epochs"] = args.epochs
        digits = train_digits(seed, args.conv)
        print(
            f"seed {seed}: MNIST test accuracy {mnist['test_accuracy']:.4f}, digits test "
            f"accuracy {digits['test_accuracy']:.4f}"
        )
        runs.append({"seed": seed, "mnist": mnist, "digits": digits})
        if exported is None:
            exported = model
    diffs = export_diffs(exported)

    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--no-docs"]
    if "--backend" not in given:
        given = ["--backend", args.backend, *given]
    command = " ".join([".venv/bin/python", "apps/benchmarks/cnn_mnist.py", *given])
    text = markdown(args.backend, command, runs, args.conv, diffs)
    print(text)
    if not args.no_docs:
        write_section(DOCS, "cnn_mnist", f"{args.backend} {args.conv}", text)
    worst = min(run["mnist"]["test_accuracy"] for run in runs)
    return 0 if worst >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
