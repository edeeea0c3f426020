"""Chapter 4 figures: the four sequence models on their tasks, and gradient flow through time.

* Each model of `mp_keras.models.sequence` / `seq2seq` trains on its generated task (4,096
  train / 1,024 test examples, seed 0, Adam 0.01 with the notes' clipping rule,
  `global_clipnorm=1`, batch size 64) with an LSTM cell and with an Elman cell. Reported on
  the test split: per-token accuracy and exact-match accuracy (every token of the sequence
  right; for the decoders, what greedy decoding produces on its own), and training time.
* Gradient flow: `run_gradient_flow` with its defaults (16 units, t - k up to 50, seed 0);
  the spectral norm of dh(t)/ds(k) at t - k = 1, 10, 30, 50 for each setting, and the
  figure `docs/figures/gradient_flow.png`. A figure of test predictions of `Seq2Seq` on
  `reverse` goes to `docs/figures/sequence_seq2seq_reverse.png`. The figures are written by
  the TensorFlow run only, so that the docs show one backend's.

The figures are printed and written into `docs/chapter4.md`, in a block per backend
(replaced when run again). The exit status is 1 if a model stays near chance (per-token
accuracy below 0.6 with the LSTM cell) or the gradient-flow curves do not show vanishing
(Elman, small weights), growth (Elman, large weights) and a slow decay (LSTM).

Usage (from the repository root):

    .venv/bin/python apps/benchmarks/sequence_tasks.py [--backend tensorflow|jax|torch]
        [--epochs-scale 1.0] [--no-docs] [--no-figures]
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
DOCS = REPO / "docs" / "chapter4.md"
FIGURES = REPO / "docs" / "figures"
DISTANCES = (1, 10, 30, 50)

# (model, task, epochs, units)
RUNS: tuple[tuple[str, str, int, int], ...] = (
    ("SequenceTagger", "tagging", 10, 32),
    ("SequenceClassifier", "majority", 15, 32),
    ("SequenceGenerator", "counting", 5, 32),
    ("Seq2Seq", "reverse", 30, 64),
    ("Seq2Seq", "sort", 30, 64),
)


def build(model_name: str, task: str, cell: str, units: int) -> Any:
    from mp_keras import data
    from mp_keras.data.sequences import num_tokens, target_length
    from mp_keras.models.seq2seq import Seq2Seq, SequenceGenerator
    from mp_keras.models.sequence import SequenceClassifier, SequenceTagger

    info = data.load(task, "test", num_examples=1).info
    common = {"num_tokens": num_tokens(info), "num_classes": info.num_classes}
    common.update(cell=cell, units=units)
    if model_name == "SequenceTagger":
        return SequenceTagger(sequence_length=info.shape[0], **common)
    if model_name == "SequenceClassifier":
        return SequenceClassifier(sequence_length=info.shape[0], **common)
    if model_name == "SequenceGenerator":
        return SequenceGenerator(output_length=target_length(info), **common)
    return Seq2Seq(input_length=info.shape[0], output_length=target_length(info), **common)


def train_and_score(
    model_name: str, task: str, cell: str, epochs: int, units: int, figure: Path | None
) -> dict[str, Any]:
    import keras
    import numpy as np

    from mp_keras import data

    keras.utils.set_random_seed(0)
    train, test = data.load(task, "train"), data.load(task, "test")
    model = build(model_name, task, cell, units)
    model.compile(optimizer=keras.optimizers.Adam(1e-2, global_clipnorm=1.0))
    start = time.perf_counter()
    model.fit(train.x, train.y, epochs=epochs, batch_size=64, verbose=0)
    seconds = time.perf_counter() - start
    predicted = model.predict(test.x, batch_size=256, verbose=0).argmax(axis=-1)
    predicted = predicted.reshape(len(test), -1)
    truth = test.y.reshape(len(test), -1)
    if figure is not None:
        from mp_keras.plots.sequences import save_sequence_figure

        save_sequence_figure(model, figure, test.x, test.y)
    return {
        "model": model_name,
        "task": task,
        "cell": cell,
        "epochs": epochs,
        "units": units,
        "token_accuracy": float(np.mean(predicted == truth)),
        "sequence_accuracy": float(np.mean(np.all(predicted == truth, axis=1))),
        "seconds": seconds,
    }


def gradient_flow(figure: Path | None) -> dict[str, Any]:
    from mp_keras.tools.gradient_flow import run_gradient_flow

    start = time.perf_counter()
    curves = run_gradient_flow(figure)
    return {"curves": curves, "seconds": time.perf_counter() - start}


def markdown(backend: str, runs: list[dict[str, Any]], flow: dict[str, Any], args: Any) -> str:
    import keras

    command = f"`.venv/bin/python apps/benchmarks/sequence_tasks.py --backend {backend}`"
    if args.epochs_scale != 1.0:
        command = command[:-1] + f" --epochs-scale {args.epochs_scale}`"
    threads = " (`OMP_NUM_THREADS=1`)" if os.environ.get("OMP_NUM_THREADS") == "1" else ""
    lines = [
        f"#### {backend}",
        "",
        f"Command: {command}{threads}; backend {backend}; {datetime.date.today().isoformat()}; "
        f"machine: 2-core {platform.machine()} CPU, no GPU, shared with other jobs; "
        f"Keras {keras.__version__}; seed 0.",
        "",
        "| model | task | cell | epochs | units | per-token accuracy | exact-match accuracy "
        "| training time |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| `{run['model']}` | `{run['task']}` | {run['cell']} | {run['epochs']} | "
            f"{run['units']} | {100 * run['token_accuracy']:.1f}% | "
            f"{100 * run['sequence_accuracy']:.1f}% | {run['seconds']:.0f} s |"
        )
    lines += [
        "",
        f"Gradient flow (`run_gradient_flow()` defaults, {flow['seconds']:.1f} s): spectral "
        "norm of dh(t)/ds(k).",
        "",
        "| setting | " + " | ".join(f"t - k = {d}" for d in DISTANCES) + " |",
        "|---|" + "---:|" * len(DISTANCES),
    ]
    for label, norms in flow["curves"].items():
        values = " | ".join(f"{norms[d - 1]:.2e}" for d in DISTANCES if d <= len(norms))
        lines.append(f"| {label} | {values} |")
    return "\n".join(lines)


def failures(runs: list[dict[str, Any]], curves: dict[str, Any]) -> list[str]:
    problems = [
        f"{run['model']} on {run['task']} ({run['cell']}): per-token accuracy "
        f"{run['token_accuracy']:.3f}"
        for run in runs
        if run["cell"] == "lstm" and run["token_accuracy"] < 0.6
    ]
    small, large, lstm = curves.values()
    if not small[29] < 1e-3 * small[0]:
        problems.append("Elman with small weights: no vanishing at t - k = 30")
    if not large[29] > 10 * large[0]:
        problems.append("Elman with large weights: no growth at t - k = 30")
    if not lstm[29] > 1e3 * small[29]:
        problems.append("LSTM: not orders of magnitude above the Elman cell at t - k = 30")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"))
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="multiplies epochs")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/chapter4.md")
    parser.add_argument(
        "--no-figures", action="store_true", help="do not write the PNGs (TensorFlow run only)"
    )
    args = parser.parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    sys.path.insert(0, str(REPO))
    import keras

    backend = keras.backend.backend()
    args.no_figures = args.no_figures or backend != "tensorflow"
    if not args.no_figures:
        FIGURES.mkdir(parents=True, exist_ok=True)
    runs = []
    for model_name, task, epochs, units in RUNS:
        for cell in ("lstm", "elman"):
            figure = None
            if not args.no_figures and (model_name, task, cell) == ("Seq2Seq", "reverse", "lstm"):
                figure = FIGURES / "sequence_seq2seq_reverse.png"
            scaled = max(1, round(epochs * args.epochs_scale))
            run = train_and_score(model_name, task, cell, scaled, units, figure)
            print(
                f"{model_name:<19} {task:<9} {cell:<6} per-token {run['token_accuracy']:.3f}  "
                f"exact {run['sequence_accuracy']:.3f}  ({run['seconds']:.0f} s)",
                flush=True,
            )
            runs.append(run)
    flow = gradient_flow(None if args.no_figures else FIGURES / "gradient_flow.png")
    for label, norms in flow["curves"].items():
        print(f"{label:<32} " + "  ".join(f"{norms[d - 1]:.2e}" for d in DISTANCES))
    text = markdown(backend, runs, flow, args)
    if not args.no_docs:
        write_section(DOCS, "chapter4", backend, text)
    problems = failures(runs, flow["curves"])
    for problem in problems:
        print("FAILED:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
