"""WaveNet (notes, section 6.5): fast vs naive generation, and a conditional model on tones.

* Generation speed: samples per second of `WaveNet.sample` with `method="fast"` (one
  compiled `generation_step` per sample, the queues of Paine et al. 2016) and
  `method="naive"` (the whole network re-run over the last R samples per sample), for
  receptive fields R = 256, 1024 and 4096 (one block of dilations 1 .. 128 / 512 / 2048
  after a 1 x 1 input layer; 16 residual and gate channels, 32 skip channels, 256
  μ-law classes; random weights, since speed does not depend on them). `num` sequences of
  R samples each; steady-state rate = num x (R - 1) / (time of all steps but the first),
  the first step's time (tracing and compiling) is shown apart. Both methods draw
  identical samples from one seed, which the table confirms.
* Quality: a class-conditional WaveNet (R = 257: a 2-tap causal convolution and
  dilations 1 .. 128; 32 channels, 64 skip channels) trained on the generated clips of
  `mp_keras.data.audio` (tone, chord, chirp, noise burst; 8 kHz), reported as test NLL in
  bits per sample on held-out clips next to two baselines (uniform over 256 classes, and
  the training set's histogram of classes), then asked for samples of each class. A
  small classifier (a 1-D CNN over the log spectra of each half of a clip, trained on
  other real clips, half of them with added noise) labels the samples; its accuracy per
  requested class says whether the condition was obeyed.

Each backend runs in its own process (one Keras backend per process); PyTorch uses one
thread, as in the tests (its spinning worker threads are slow on few shared cores). The
tables are printed; the figure of real clips and samples is written to
`docs/figures/wavenet_tones_samples.png` (`--figures`), and, with `--write-docs`, the
tables into `docs/chapter6.md`.

Usage (from the repository root):

    .venv/bin/python apps/benchmarks/wavenet_generation.py [--backends jax,tensorflow]
        [--fields 256,1024,4096] [--num 4] [--epochs 30] [--train-backend jax]
        [--figures docs/figures] [--write-docs] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
DOCS = REPO / "docs" / "chapter6.md"
FIGURES = REPO / "docs" / "figures"

SPEED = {"residual_channels": 16, "dilation_channels": 16, "skip_channels": 32}
QUALITY = {"residual_channels": 32, "dilation_channels": 32, "skip_channels": 64}
FULL = {"clips": 256, "duration": 0.25, "epochs": 30, "per_class": 8, "layers": 8}
QUICK = {"clips": 16, "duration": 0.03, "epochs": 1, "per_class": 2, "layers": 3}


def _backend() -> str:
    import keras

    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(1)
    return keras.backend.backend()


def generation_speed(field: int, num: int, seed: int = 0) -> dict[str, Any]:
    """Steady-state samples/s of both methods at receptive field `field` (a power of 2)."""
    import numpy as np

    from mp_keras.models.wavenet import WaveNet

    layers = round(math.log2(field))
    model = WaveNet(
        num_blocks=1, dilations_per_block=layers, initial_kernel_size=1, seed=0, **SPEED
    )
    assert model.receptive_field == field, model.receptive_field
    result: dict[str, Any] = {"field": field, "layers": layers}
    drawn = {}
    for method in ("fast", "naive"):
        drawn[method] = np.asarray(model.sample(num, length=field, seed=seed, method=method))
        timing = model.last_sample_timing
        steps_s = timing["total_s"] - timing["first_step_s"]
        result[method] = {
            "samples_per_s": num * (field - 1) / steps_s,
            "first_step_s": timing["first_step_s"],
            "total_s": timing["total_s"],
        }
    result["identical"] = bool(np.array_equal(drawn["fast"], drawn["naive"]))
    result["speedup"] = result["fast"]["samples_per_s"] / result["naive"]["samples_per_s"]
    return result


def _features(waveforms: Any) -> Any:
    """Log spectra of each half of every clip, `(clips, bins, 2)`, on a common scale."""
    from mp_keras.data.audio import log_spectrum

    features = log_spectrum(waveforms, parts=2)
    return (features - 0.2) / 0.5  # about zero mean and unit spread for these clips


def spectrum_classifier(num_classes: int, seed: int) -> Any:
    """A tiny 1-D CNN over frequency: shift-invariant, as the clips' pitch is random."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, 2))  # (bins, halves of the clip)
    h = keras.layers.Conv1D(16, 9, activation="relu", padding="same")(inputs)
    h = keras.layers.Conv1D(16, 9, activation="relu", padding="same")(h)
    pooled = [keras.layers.GlobalMaxPooling1D()(h), keras.layers.GlobalAveragePooling1D()(h)]
    logits = keras.layers.Dense(num_classes)(keras.layers.Concatenate()(pooled))
    model = keras.Model(inputs, logits, name="spectrum_classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def conditional_quality(settings: dict[str, Any], figures: Path | None, seed: int = 0) -> dict:
    """Trains the conditional WaveNet and the spectrum classifier; scores the samples."""
    import keras
    import numpy as np

    from mp_keras.data.audio import CLIP_TYPES, audio_clips, mu_law_decode
    from mp_keras.models.wavenet import WaveNet

    clips, duration = settings["clips"], settings["duration"]
    train = audio_clips("train", seed=seed, num_examples=clips, duration=duration)
    test = audio_clips("test", seed=seed, num_examples=max(clips // 4, 8), duration=duration)
    x_train, x_test = train.classes(), test.classes()
    keras.utils.set_random_seed(seed)  # the initial weights
    model = WaveNet(
        num_blocks=1,
        dilations_per_block=settings["layers"],
        num_conditions=len(CLIP_TYPES),
        seed=seed,
        **QUALITY,
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    start = time.perf_counter()
    history = model.fit(x_train, train.labels, epochs=settings["epochs"], batch_size=8, verbose=0)
    train_s = time.perf_counter() - start
    test_bits = model.bits_per_dim(x_test, batch_size=32, condition=test.labels)
    counts = np.bincount(x_train.reshape(-1), minlength=256) + 1.0  # add-one smoothing
    histogram_bits = float(-np.log2(counts / counts.sum())[x_test.reshape(-1)].mean())

    # Samples of each class, labelled by a classifier of real clips' spectra.
    wanted = np.repeat(np.arange(len(CLIP_TYPES)), settings["per_class"]).astype("int32")
    start = time.perf_counter()
    drawn = np.asarray(
        model.sample(len(wanted), length=x_test.shape[1], seed=seed + 1, condition=wanted)
    )
    sample_s = time.perf_counter() - start
    waveforms = mu_law_decode(drawn)
    real = audio_clips("train", seed=seed + 1, num_examples=2 * clips, duration=duration)
    # Half of them with a random gain and added white noise: samples are noisier than the
    # generated clips, and the classifier should judge their spectral shape, not that.
    rng = np.random.default_rng(seed)
    n = len(real.waveforms)
    noisy = real.waveforms * rng.uniform(0.5, 1.5, (n, 1))
    noisy += rng.normal(size=noisy.shape) * rng.uniform(0.0, 0.15, (n, 1))
    x_real = np.concatenate([real.waveforms, np.clip(noisy, -1.0, 1.0)])
    classifier = spectrum_classifier(len(CLIP_TYPES), seed)
    classifier.fit(_features(x_real), np.tile(real.labels, 2), epochs=40, batch_size=32, verbose=0)

    def predict(w: Any) -> Any:
        return np.asarray(classifier.predict(_features(w), verbose=0)).argmax(-1)

    real_accuracy = float((predict(test.waveforms) == test.labels).mean())
    predicted = predict(waveforms)
    per_class = {
        name: float((predicted[wanted == k] == k).mean()) for k, name in enumerate(CLIP_TYPES)
    }
    if figures is not None:
        from mp_keras.plots.audio import save_audio_figure

        figures.mkdir(parents=True, exist_ok=True)
        rows, titles = [], []
        for k, name in enumerate(CLIP_TYPES):
            rows += [test.waveforms[test.labels == k][0], waveforms[wanted == k][0]]
            titles += [f"real {name}", f"sampled {name}"]
        save_audio_figure(np.stack(rows), figures / "wavenet_tones_samples.png", test.rate, titles)
    return {
        "train_clips": len(x_train),
        "test_clips": len(x_test),
        "samples_per_clip": int(x_test.shape[1]),
        "receptive_field": model.receptive_field,
        "epochs": settings["epochs"],
        "train_s": train_s,
        "train_bits": float(history.history["bits_per_dim"][-1]),
        "test_bits": float(test_bits),
        "histogram_bits": histogram_bits,
        "real_accuracy": real_accuracy,
        "sample_accuracy": per_class,
        "sample_s": sample_s,
        "num_samples": len(wanted),
    }


def _worker(task: str, args: argparse.Namespace) -> dict[str, Any]:
    backend = _backend()
    if task == "generation":
        fields = [int(f) for f in args.fields.split(",")]
        return {"backend": backend, "rows": [generation_speed(f, args.num) for f in fields]}
    figures = None if args.figures == "none" else Path(args.figures)
    settings = dict(QUICK if args.quick else FULL)
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    return {"backend": backend, "quality": conditional_quality(settings, figures)}


def _run(task: str, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    import keras

    if backend == keras.backend.backend():  # this process already runs that backend
        return _worker(task, args)
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, __file__, "--worker", task, *args.passthrough]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{task} on {backend} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def tables(speeds: list[dict[str, Any]], quality: dict[str, Any] | None, num: int) -> str:
    lines = []
    if speeds:
        lines += [
            f"WaveNet generation, {num} sequences of R samples, 256 classes, 16 channels; "
            f"{platform.machine()} with {os.cpu_count()} cores; rerun with "
            "`apps/benchmarks/wavenet_generation.py`.",
            "",
            "| backend | R | layers | fast (queues) | naive (re-run over R) | speed-up | "
            "first step fast / naive | same samples |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for speed in speeds:
        for row in speed["rows"]:
            fast, naive = row["fast"], row["naive"]
            lines.append(
                f"| {speed['backend']} | {row['field']} | {row['layers']} | "
                f"{fast['samples_per_s']:,.0f} samples/s | {naive['samples_per_s']:,.0f} "
                f"samples/s | {row['speedup']:.1f}x | {fast['first_step_s']:.1f} s / "
                f"{naive['first_step_s']:.1f} s | {'yes' if row['identical'] else 'NO'} |"
            )
    if quality is not None:
        q = quality["quality"]
        accuracy = ", ".join(f"{name} {acc:.0%}" for name, acc in q["sample_accuracy"].items())
        lines += [
            *([""] if lines else []),
            f"Conditional WaveNet (R = {q['receptive_field']}) on the generated tones "
            f"({quality['backend']}): {q['train_clips']} training clips of "
            f"{q['samples_per_clip']} samples, {q['epochs']} epochs in {q['train_s']:.0f} s.",
            "",
            "| model | test NLL (bits per sample) |",
            "|---|---|",
            "| uniform over 256 μ-law classes | 8.00 |",
            f"| histogram of the training classes (i.i.d.) | {q['histogram_bits']:.2f} |",
            f"| conditional WaveNet (train: {q['train_bits']:.2f}) | {q['test_bits']:.2f} |",
            "",
            f"Spectrum classifier: {q['real_accuracy']:.0%} on {q['test_clips']} real test "
            f"clips; on {q['num_samples']} conditional samples (drawn in "
            f"{q['sample_s']:.1f} s), per requested class: {accuracy}.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=None, help="default: $KERAS_BACKEND")
    parser.add_argument(
        "--fields", default="256,1024,4096", help="receptive fields (powers of 2), or 'none'"
    )
    parser.add_argument("--num", type=int, default=4, help="sequences generated at once")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs")
    parser.add_argument("--train-backend", default=None, help="default: the first backend")
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--figures", default=str(FIGURES), help="folder, or 'none'")
    parser.add_argument("--write-docs", action="store_true", help=f"write into {DOCS.name}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick and args.fields == "256,1024,4096":
        args.fields = "16,32"
    args.passthrough = ["--fields", args.fields, "--num", str(args.num), "--figures", args.figures]
    args.passthrough += ["--quick"] if args.quick else []
    args.passthrough += [] if args.epochs is None else ["--epochs", str(args.epochs)]
    if args.worker:
        print(json.dumps(_worker(args.worker, args)))
        return 0
    import keras

    backends = (args.backends or keras.backend.backend()).split(",")
    backends = [b.strip() for b in backends if b.strip()]
    speeds = [] if args.fields == "none" else [_run("generation", b, args) for b in backends]
    quality = None
    if not args.no_training:
        quality = _run("quality", args.train_backend or backends[0], args)
    text = tables(speeds, quality, args.num)
    print(text)
    if args.write_docs:
        from _docs import write_section

        write_section(DOCS, "wavenet-generation", "all", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
