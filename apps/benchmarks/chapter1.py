"""Chapter 1 figures: perceptron convergence, XOR (perceptron vs. MLP), universal approximation.

* `separable` (1,000 train points, the 1,024-point test split): the perceptron trained by
  the online rule (batch size 1, shuffled) until an epoch makes no mistake; epochs and
  updates needed, Novikoff's bound (R / gamma)^2 on the updates, test accuracy.
* `xor` (400 train points, the 1,024-point test split): the perceptron for 20 epochs (best
  epoch's online accuracy, final train and test accuracy), against `MLP` with one hidden
  layer of 8 tanh units (Adam 0.05, 60 epochs).
* universal approximation: `run_universal_approximation` with its defaults; the figure
  goes to `runs/chapter1/universal_approximation.png`.

The figures are printed and written into `docs/chapter1.md`, in a block per backend
(replaced when run again). The exit status is 1 if the perceptron fails to converge on
`separable`, reaches 100% on XOR, or the MLP does not.

Usage (from the repository root):

    .venv/bin/python apps/benchmarks/chapter1.py [--backend tensorflow|jax|torch]
        [--seeds 0,1,2,3,4] [--no-docs]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _docs import write_section  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "chapter1.md"
FIGURE = REPO / "runs" / "chapter1" / "universal_approximation.png"
MAX_EPOCHS = 100


def separable_run(seed: int) -> dict[str, Any]:
    import keras
    import numpy as np

    from mp_keras import data
    from mp_keras.data.toys import SEPARABLE_MARGIN, separable_hyperplane
    from mp_keras.models.perceptron import Perceptron

    class StopWhenNoMistakes(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if logs["error_rate"] == 0.0:
                self.model.stop_training = True

    keras.utils.set_random_seed(seed)
    train = data.load("separable", "train", seed=seed, num_examples=1000)
    test = data.load("separable", "test", seed=seed)
    model = Perceptron(num_features=2)
    model.compile()
    start = time.perf_counter()
    history = model.fit(
        train.x,
        train.y,
        batch_size=1,
        epochs=MAX_EPOCHS,
        verbose=0,
        callbacks=[StopWhenNoMistakes()],
    )
    errors = history.history["error_rate"]
    _, b = separable_hyperplane(seed)
    radius = np.sqrt((train.x.astype("float64") ** 2).sum(1).max() + 1.0)
    gamma = SEPARABLE_MARGIN / np.sqrt(1.0 + b**2)
    return {
        "converged": errors[-1] == 0.0,
        "epochs": len(errors),
        "updates": round(sum(errors) * len(train)),
        "bound": (radius / gamma) ** 2,
        "test_accuracy": model.evaluate(test.x, test.y, verbose=0, return_dict=True)["accuracy"],
        "seconds": time.perf_counter() - start,
    }


def xor_run(seed: int) -> dict[str, Any]:
    import keras

    from mp_keras import data
    from mp_keras.models.mlp import MLP
    from mp_keras.models.perceptron import Perceptron

    keras.utils.set_random_seed(seed)
    train = data.load("xor", "train", seed=seed, num_examples=400)
    test = data.load("xor", "test", seed=seed)
    perceptron = Perceptron(num_features=2)
    perceptron.compile()
    history = perceptron.fit(train.x, train.y, batch_size=1, epochs=20, verbose=0)
    mlp = MLP(input_shape=(2,), num_classes=2, hidden_units=(8,), activation="tanh")
    mlp.compile(optimizer=keras.optimizers.Adam(0.05))
    mlp.fit(train.x, train.y, batch_size=32, epochs=60, verbose=0)

    def accuracy(model: Any, ds: Any) -> float:
        return float(model.evaluate(ds.x, ds.y, verbose=0, return_dict=True)["accuracy"])

    return {
        "perceptron_best_epoch": 1.0 - min(history.history["error_rate"]),
        "perceptron_train": accuracy(perceptron, train),
        "perceptron_test": accuracy(perceptron, test),
        "mlp_train": accuracy(mlp, train),
        "mlp_test": accuracy(mlp, test),
    }


def approximation_run() -> tuple[dict[int, float], float]:
    from mp_keras.tools.universal_approximation import run_universal_approximation

    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    errors = run_universal_approximation(FIGURE)
    return errors, time.perf_counter() - start


def markdown(
    backend: str,
    command: str,
    separable: list[dict],
    xor: list[dict],
    errors: dict[int, float],
    seconds: float,
) -> str:
    import keras
    import numpy as np

    def each(runs: list[dict], key: str, fmt: str) -> str:
        values = [run[key] for run in runs]
        spread = ", ".join(format(v, fmt) for v in values)
        return f"{format(float(np.mean(values)), fmt)} ({spread})"

    today = datetime.date.today().isoformat()
    seeds = ", ".join(str(run["seed"]) for run in separable)
    lines = [
        f"#### {backend}",
        "",
        f"Command: `{command}`; backend {backend}; {today}; machine: {os.cpu_count()}-core "
        f"{platform.machine()} CPU, no GPU, shared with other jobs; Keras {keras.__version__}; "
        f"seeds {seeds}. Mean (each seed).",
        "",
        "| perceptron on `separable` (1,000 train points, batch size 1) | |",
        "|---|---:|",
        f"| converged (an epoch without mistakes) | "
        f"{sum(r['converged'] for r in separable)} of {len(separable)} seeds |",
        f"| epochs, the last one without mistakes | {each(separable, 'epochs', '.1f')} |",
        f"| updates (mistakes) in all | {each(separable, 'updates', '.0f')} |",
        f"| Novikoff bound (R / gamma)^2 | {each(separable, 'bound', '.0f')} |",
        f"| test accuracy (1,024 points) | {each(separable, 'test_accuracy', '.2%')} |",
        f"| training time | {each(separable, 'seconds', '.1f')} s |",
        "",
        "| XOR (400 train / 1,024 test points) | train accuracy | test accuracy |",
        "|---|---:|---:|",
        f"| perceptron, 20 epochs | {each(xor, 'perceptron_train', '.1%')} "
        f"| {each(xor, 'perceptron_test', '.1%')} |",
        f"| perceptron, best epoch (online) | {each(xor, 'perceptron_best_epoch', '.1%')} | |",
        f"| MLP, 8 tanh units, 60 epochs | {each(xor, 'mlp_train', '.1%')} "
        f"| {each(xor, 'mlp_test', '.1%')} |",
        "",
        f"Universal approximation (`run_universal_approximation()` defaults, seed 0, "
        f"{seconds:.0f} s):",
        "",
        "| hidden units W | " + " | ".join(str(w) for w in errors) + " |",
        "|---|" + "---:|" * len(errors),
        "| max abs error | " + " | ".join(f"{e:.3f}" for e in errors.values()) + " |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated")
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend  # Keras reads it once, at import
    sys.path.insert(0, str(REPO))

    seeds = [int(s) for s in args.seeds.split(",")]
    separable = [{"seed": seed, **separable_run(seed)} for seed in seeds]
    xor = [{"seed": seed, **xor_run(seed)} for seed in seeds[:3]]
    errors, seconds = approximation_run()

    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--no-docs"]
    if "--backend" not in given:
        given = ["--backend", args.backend, *given]
    command = " ".join([".venv/bin/python", "apps/benchmarks/chapter1.py", *given])
    if os.environ.get("OMP_NUM_THREADS"):
        command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} {command}"
    text = markdown(args.backend, command, separable, xor, errors, seconds)
    print(text)
    if not args.no_docs:
        write_section(DOCS, "chapter1", args.backend, text)
    ok = (
        all(run["converged"] for run in separable)
        and all(run["perceptron_best_epoch"] < 1.0 for run in xor)
        and all(run["mlp_train"] == 1.0 for run in xor)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
