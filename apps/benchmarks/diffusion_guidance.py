"""Guidance on 8x8 digits: classifier-free guidance vs classifier guidance (notes, 9.4).

Two ways to steer a diffusion model to a class y, on the embedded `digits` (1,500
training / 297 test images, 8x8 in [0, 1], 17 grey levels), both sampled with the
notes' Algorithm 3 (the DDPM sampler, T steps; no DDIM, so that both rows use the same
sampler), with the linear schedule by default (see below):

1. **Classifier-free guidance** (Ho & Salimans 2022): a class-conditional `DDPM` (small
   U-Net, condition dropout 0.1, so the same network also learns eps(x; t) under the
   null label) sampled with eps* = (1 + rho) eps(x, y; t) - rho eps(x; t), rho in
   {0, 0.5, 1, 2, 4};
2. **Classifier guidance** (Dhariwal & Nichol 2021): an unconditional `DDPM` of the same
   size plus a `NoisyClassifier` p(y | x_t, t) trained on inputs noised by the same
   schedule; each reverse step's mean moves by sigma_t^2 * s * grad log p(y | x_t),
   s in {0, 1, 2, 4, 8} (s = 0 is the unconditional model: the requested class is hit
   by chance, about 10%).

Each DDPM trains for `--minutes` of wall clock (one `fit`, stopped by a timer), the noisy
classifier for `--classifier-minutes`. For every rho (or s), `--per-class` samples of
each of the 10 classes are drawn and judged by the project's CNN (trained on the training
images, `mp_keras.metrics.train_feature_classifier`): **hit rate**, the share of samples
the CNN assigns to the requested class; **spread**, the within-class spread of the CNN's
64 penultimate features (the root mean squared distance of a class's samples to their
class mean, averaged over classes; a measure of diversity); and **FD**, the Fréchet
distance of those features between all samples and the 297 test images (the
classifier-feature FID; *not* the Inception FID of the literature). The test set's own
spread and the FD of as many training images to the test set are the floors.

The table is printed as markdown and, unless `--no-docs`, written into `docs/chapter9.md`
between `<!-- diffusion_guidance BACKEND begin/end -->` markers; one sample per class per
rho (and per s) goes to `docs/figures/chapter9_guidance_samples.png`.

Why linear: the cosine schedule's beta_T is clipped at 0.999, so Algorithm 3's first step
divides by sqrt(alpha_T) = 0.03 and multiplies the network's error at x_T about 30-fold;
with a few minutes of training many samples end saturated (`--schedule cosine` shows it).
The linear schedule scaled to T = 200 (beta from 5e-4 to 0.1) has no such step.

Usage (from the repository root; about 2 x `--minutes` + `--classifier-minutes` plus
two minutes of sampling and evaluation on a laptop CPU):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/diffusion_guidance.py
        [--minutes 2.5] [--classifier-minutes 1] [--timesteps 200] [--schedule linear]
        [--per-class 20]
        [--seed 0] [--no-docs]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from _docs import write_section  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs" / "chapter9.md"
FIGURE = REPO / "docs" / "figures" / "chapter9_guidance_samples.png"
RHOS = (0.0, 0.5, 1.0, 2.0, 4.0)
SCALES = (0.0, 1.0, 2.0, 4.0, 8.0)
CLASSES = 10
BATCH = 64
RHO = "\u03c1"  # the notes' symbol of the classifier-free guidance strength


class _Timer:
    """A `keras.callbacks.Callback` (made lazily) that stops `fit` after `seconds`."""

    @staticmethod
    def make(seconds: float) -> Any:
        import keras

        class Stop(keras.callbacks.Callback):
            def on_train_begin(self, logs: Any = None) -> None:
                self.start, self.epochs = time.perf_counter(), 0

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self.epochs = epoch + 1
                if time.perf_counter() - self.start > seconds:
                    self.model.stop_training = True

        return Stop()


def train(model: Any, x: Any, y: Any, minutes: float, name: str) -> dict[str, Any]:
    """One `fit` of whole epochs until `minutes` have passed; returns the run's facts."""
    timer = _Timer.make(60 * minutes)
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=BATCH, epochs=100_000, verbose=0, callbacks=[timer])
    seconds = time.perf_counter() - start
    loss = history.history["loss"][-1]
    print(f"{name}: {timer.epochs} epochs in {seconds:.0f} s, last loss {loss:.4f}", flush=True)
    return {"epochs": timer.epochs, "seconds": seconds, "loss": loss}


def judge(extractor: Any, samples: Any, labels: Any, test_features: Any) -> dict[str, float]:
    """Hit rate, within-class feature spread and FD to the test set of labelled samples."""
    import numpy as np

    from mp_keras.metrics import frechet_distance

    features, probabilities = extractor(samples)
    return {
        "hit": float(np.mean(probabilities.argmax(axis=1) == labels)),
        "spread": spread(features, labels),
        "fd": frechet_distance(features, test_features),
    }


def spread(features: Any, labels: Any) -> float:
    """Root mean squared distance of each class's features to their mean, class average."""
    import numpy as np

    values = []
    for k in np.unique(labels):
        f = features[labels == k]
        values.append(float(np.sqrt(np.mean(np.sum((f - f.mean(0)) ** 2, axis=1)))))
    return float(np.mean(values))


def table(rows: list[dict[str, Any]], facts: dict[str, Any], backend: str) -> str:
    lines = [
        f"Guidance on 8x8 `digits` ({backend}, T = {facts['timesteps']}, {facts['schedule']} "
        "schedule, "
        f"Algorithm 3 sampling, {facts['per_class']} samples per class and setting, seed "
        f"{facts['seed']}; `apps/benchmarks/diffusion_guidance.py`). Conditional DDPM: "
        f"{facts['cond']['epochs']} epochs in {facts['cond']['seconds']:.0f} s; "
        f"unconditional DDPM: {facts['uncond']['epochs']} epochs in "
        f"{facts['uncond']['seconds']:.0f} s; NoisyClassifier: "
        f"{facts['noisy']['epochs']} epochs in {facts['noisy']['seconds']:.0f} s, test accuracy "
        + ", ".join(f"{a:.2f} at t = {t}" for t, a in facts["noisy_accuracy"].items())
        + f". Judge: the project's CNN (test accuracy {facts['judge_accuracy']:.3f}); spread "
        "and FD on its 64 penultimate features.",
        "",
        "| guidance | strength | hit rate (requested class) | within-class spread | FD to test |",
        "|---|---|---|---|---|",
        f"| real test images (floor) | - | {facts['judge_accuracy']:.2f} | "
        f"{facts['real_spread']:.2f} | {facts['real_fd']:.2f} |",
    ]
    for r in rows:
        lines.append(
            f"| {r['kind']} | {r['symbol']} = {r['strength']:g} | {r['hit']:.2f} | "
            f"{r['spread']:.2f} | {r['fd']:.2f} |"
        )
    lines += [
        "",
        "The real-image floor: the CNN's accuracy on the test set, the test set's own spread, "
        "and the FD of as many training images as samples to the test set.",
        "",
        f"![samples per class and guidance strength](figures/{facts['figure']})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.5, help="training budget per DDPM")
    parser.add_argument("--classifier-minutes", type=float, default=1.0)
    parser.add_argument("--timesteps", type=int, default=200)
    parser.add_argument("--schedule", default="linear", choices=("linear", "cosine"))
    parser.add_argument("--per-class", type=int, default=20, help="samples per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    import keras
    import numpy as np

    from mp_keras.data import load
    from mp_keras.metrics import ClassifierFeatures, frechet_distance, train_feature_classifier
    from mp_keras.models.ddpm import DDPM
    from mp_keras.models.noisy_classifier import NoisyClassifier, classifier_guided_sample
    from mp_keras.plots import save_image_grid

    keras.utils.set_random_seed(args.seed)
    train_set, test_set = load("digits", "train"), load("digits", "test")
    x, y = train_set.x, train_set.y.astype("int32")
    judge_cnn = train_feature_classifier(x, y, epochs=30, seed=args.seed)
    extractor = ClassifierFeatures(judge_cnn)
    test_features, test_probabilities = extractor(test_set.x)
    facts: dict[str, Any] = {
        "timesteps": args.timesteps,
        "schedule": args.schedule,
        "per_class": args.per_class,
        "seed": args.seed,
        "figure": args.figure.name,
        "judge_accuracy": float(np.mean(test_probabilities.argmax(1) == test_set.y)),
        "real_spread": spread(test_features, test_set.y),
    }
    num = CLASSES * args.per_class
    rng = np.random.default_rng(args.seed)
    reference = x[rng.choice(len(x), size=min(num, len(x)), replace=False)]
    facts["real_fd"] = frechet_distance(extractor(reference)[0], test_features)
    print(f"judge CNN: test accuracy {facts['judge_accuracy']:.3f}", flush=True)

    common = dict(
        input_shape=(8, 8, 1),
        filters=(32, 64),
        time_dim=32,
        timesteps=args.timesteps,
        schedule=args.schedule,
        num_levels=17,
        ema_momentum=0.995,
        seed=args.seed,
    )
    labels = np.repeat(np.arange(CLASSES), args.per_class).astype("int32")
    figure_rows: dict[str, Any] = {"real": _one_per_class(test_set.x, test_set.y)}
    rows = []

    # (1) Classifier-free guidance.
    cond = DDPM(num_classes=CLASSES, condition_dropout=0.1, **common)
    cond.compile()
    facts["cond"] = train(cond, x, y, args.minutes, "conditional DDPM")
    for rho in RHOS:
        start = time.perf_counter()
        samples = np.asarray(
            keras.ops.convert_to_numpy(
                cond.sample(num, seed=args.seed, labels=labels, guidance=rho)
            )
        )
        row = {"kind": "classifier-free", "symbol": RHO, "strength": rho}
        row.update(judge(extractor, samples, labels, test_features))
        rows.append(row)
        figure_rows[f"{RHO} = {rho:g}"] = _one_per_class(samples, labels)
        print(f"  rho {rho:g}: {row} ({time.perf_counter() - start:.0f} s)", flush=True)

    # (2) Classifier guidance: an unconditional DDPM and a noisy classifier.
    uncond = DDPM(**common)
    uncond.compile()
    facts["uncond"] = train(uncond, x, None, args.minutes, "unconditional DDPM")
    noisy = NoisyClassifier(
        (8, 8, 1),
        CLASSES,
        schedule=args.schedule,
        timesteps=args.timesteps,
        filters=(32, 64),
        time_dim=32,
        data_range=(0.0, 1.0),
        seed=args.seed,
    )
    noisy.compile()
    facts["noisy"] = train(noisy, x, y, args.classifier_minutes, "NoisyClassifier")
    probe = sorted({1, args.timesteps // 4, args.timesteps // 2, args.timesteps})
    facts["noisy_accuracy"] = noisy.accuracy_by_timestep(test_set.x, test_set.y, probe)
    print(f"  noisy classifier accuracy by t: {facts['noisy_accuracy']}", flush=True)
    for scale in SCALES:
        start = time.perf_counter()
        samples = np.asarray(
            keras.ops.convert_to_numpy(
                classifier_guided_sample(uncond, noisy, num, labels, scale, seed=args.seed)
            )
        )
        row = {"kind": "classifier", "symbol": "s", "strength": scale}
        row.update(judge(extractor, samples, labels, test_features))
        rows.append(row)
        figure_rows[f"s = {scale:g}"] = _one_per_class(samples, labels)
        print(f"  s {scale:g}: {row} ({time.perf_counter() - start:.0f} s)", flush=True)

    args.figure.parent.mkdir(parents=True, exist_ok=True)
    titles = {name: [str(k) for k in range(CLASSES)] for name in figure_rows}
    save_image_grid(figure_rows, args.figure, titles)
    text = table(rows, facts, keras.backend.backend())
    print(text)
    if not args.no_docs:
        write_section(DOCS, "diffusion_guidance", keras.backend.backend(), text)
    return 0


def _one_per_class(images: Any, labels: Any) -> Any:
    """The first image of each class 0..9, `(10, 8, 8, 1)`."""
    import numpy as np

    return np.stack([images[np.flatnonzero(labels == k)[0]] for k in range(CLASSES)])


if __name__ == "__main__":
    sys.exit(main())
