"""GANs on MNIST: Fréchet and kernel distances and class coverage for a CPU time budget.

Three models are trained on the first 8,000 images of `../shared/data/mnist_test.npz`
(the MNIST test set, 28x28 in [0, 1]) for the same wall-clock budget each
(`--minutes`, which includes the `SampleQuality` callback's FD of 1,000 samples every
`--every` epochs, the "FD during training" column):

* `GAN`: the MLP GAN of Goodfellow et al. (non-saturating generator loss, Adam 2e-4,
  beta_1 0.5), generator 64 -> 256 -> 784 (sigmoid), discriminator 784 -> 256 -> 1
  (with wider or deeper MLPs, 256-512 / 512-256 or 256-512-1024 / 256, seed 0
  collapsed onto one digit within 5 epochs and stayed there for the 20 to 160 epochs
  tried, class coverage 0.1);
* `WGANGP`: the same MLP networks with the Wasserstein loss and gradient penalty
  (Gulrajani et al. 2017; the model's default optimizer and 5 critic steps), so that the
  comparison with `GAN` isolates the loss;
* `DCGAN`: the convolutional networks of Radford et al. 2016 with the GAN loss.

(`WGANGP` and `DCGAN` are used when `mp_keras.models` has them; a missing one is listed
as skipped.) After training, 2,000 samples of each are compared with the last 2,000
images (held out) by `mp_keras.metrics.sample_quality`: FD and KD on the 64 penultimate
features of the project's own CNN trained on the same 8,000 images (3 epochs), and the
share of the 10 classes that CNN assigns to at least one sample. These are *not* the
Inception-based FID/KID of the literature: compare them with each other and with the
real-vs-real floor (8,000 training images against the 2,000 held-out ones, and 2,000
random training images for the same sample size), never with published numbers.

The table is printed as markdown and, unless `--no-docs`, written into `docs/chapter8.md`
between `<!-- gan_mnist BACKEND begin/end -->` markers; the sample grid (16 samples per
model and held-out real images) goes to `docs/figures/chapter8_mnist_samples.png`.

Usage (from the repository root; about 3 x `--minutes` plus a minute for the classifier
and the evaluation):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/gan_mnist.py
        [--minutes 5] [--models GAN,WGANGP,DCGAN] [--every 10] [--seed 0]
        [--classifier PATH] [--no-docs]
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
DATA = REPO.parent / "shared" / "data" / "mnist_test.npz"
DOCS = REPO / "docs" / "chapter8.md"
FIGURE = REPO / "docs" / "figures" / "chapter8_mnist_samples.png"
TRAIN, HELD_OUT = 8000, 2000
LATENT = 64
BATCH = 64
NUM_SAMPLES = 2000
MODELS = ("GAN", "WGANGP", "DCGAN")


def load_mnist(path: Path) -> tuple[Any, Any, Any, Any]:
    """(train images, train labels, held-out images, held-out labels), images (n, 28, 28, 1)."""
    import numpy as np

    with np.load(path) as archive:
        images = archive["images"].astype("float32")[..., None] / 255.0
        labels = archive["labels"].astype("int32")
    return images[:TRAIN], labels[:TRAIN], images[-HELD_OUT:], labels[-HELD_OUT:]


def build(name: str, seed: int) -> Any:
    """A compiled model, or None when this mp_keras has no such class."""
    import keras

    from mp_keras import models

    cls = getattr(models, name, None)
    if cls is None:
        return None
    shape = (28, 28, 1)
    if name == "DCGAN":
        model = cls(data_shape=shape, latent_dim=LATENT, output_activation="sigmoid", seed=seed)
    else:
        model = cls(
            data_shape=shape,
            latent_dim=LATENT,
            generator_units=(256,),
            discriminator_units=(256,),
            output_activation="sigmoid",
            seed=seed,
        )
    if name == "WGANGP":
        model.compile()  # its own default: Adam(1e-4, beta_1=0, beta_2=0.9) per phase
    else:
        adam = lambda: keras.optimizers.Adam(2e-4, beta_1=0.5)  # noqa: E731
        model.compile(optimizer={"discriminator": adam(), "generator": adam()})
    return model


def time_limit(seconds: float) -> Any:
    """A callback that stops `fit` after the batch that passes the budget."""
    import keras

    class TimeLimit(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.start = time.perf_counter()
            self.steps = 0

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.steps += 1
            if time.perf_counter() - self.start > seconds:
                self.model.stop_training = True

    return TimeLimit()


def train_one(name: str, x: Any, minutes: float, seed: int, quality: Any) -> dict[str, Any] | None:
    import keras

    keras.utils.set_random_seed(seed)
    model = build(name, seed)
    if model is None:
        return None
    limit = time_limit(60.0 * minutes)
    start = time.perf_counter()
    quality.history = []
    history = model.fit(x, epochs=10_000, batch_size=BATCH, verbose=0, callbacks=[quality, limit])
    seconds = time.perf_counter() - start
    return {
        "name": name,
        "model": model,
        "seconds": seconds,
        "steps": limit.steps,
        "epochs": len(history.history["loss"]),
        "weights": int(sum(math.prod(v.shape) for v in model.trainable_variables)),
        "last_logs": {k: float(v[-1]) for k, v in history.history.items()},
        "curve": [(h["epoch"] + 1, h["fid"]) for h in quality.history],
    }


def real_floor(extractor: Any, train_x: Any, held_features: Any, seed: int) -> dict[str, Any]:
    """Real-vs-real distances: all training images, and as many as the samples."""
    import numpy as np

    from mp_keras.metrics import class_coverage, frechet_distance, kernel_distance

    subset = np.random.default_rng(seed).choice(len(train_x), NUM_SAMPLES, replace=False)
    rows = {}
    for label, images in (
        (f"real, all {TRAIN:,} train images", train_x),
        (f"real, {NUM_SAMPLES:,} random train images", train_x[subset]),
    ):
        features, probabilities = extractor(images)
        kid, kid_std = kernel_distance(held_features, features, subsets=10, seed=seed)
        rows[label] = {
            "fid": frechet_distance(held_features, features),
            "kid": kid,
            "kid_std": kid_std,
            "class_coverage": class_coverage(probabilities)["coverage"],
        }
    return rows


def curve_text(curve: list[tuple[int, float]], points: int = 6) -> str:
    """At most `points` (epoch, FD) pairs, evenly spread, always with the last."""
    if not curve:
        return "-"
    step = max(1, math.ceil(len(curve) / points))
    picked = curve[::-1][::step][::-1]
    return ", ".join(f"{epoch}: {fid:.1f}" for epoch, fid in picked)


def table(
    results: list[dict[str, Any]],
    floor: dict[str, dict[str, Any]],
    skipped: list[str],
    accuracy: float,
    minutes: float,
    backend: str,
    figure: Path,
) -> str:
    lines = [
        f"GANs on MNIST (`apps/benchmarks/gan_mnist.py`): trained on the first {TRAIN:,} "
        f"images of the MNIST test set for {minutes:g} min each (batch {BATCH}, seed 0), "
        f"backend `{backend}`, {platform.machine()} CPU with {os.cpu_count()} cores. FD and "
        f"KD (mean ± std over 10 subsets of 1,000) between {NUM_SAMPLES:,} samples "
        f"and the {HELD_OUT:,} held-out images, on the 64 penultimate features of the "
        f"project's CNN trained on the same {TRAIN:,} images (held-out accuracy "
        f"{accuracy:.3f}); coverage is the share of the 10 classes that CNN assigns to at "
        "least one sample. Not comparable with Inception-based FID/KID. The floor is not 0: "
        "the MNIST test set's first 5,000 images come from other writers (NIST SD-3) than "
        "its last 5,000 (SD-1), so the held-out images differ a little from the training "
        "ones, and the CNN has seen the training images. Steps are `fit` batches, one "
        "generator update each (WGAN-GP makes 5 critic updates per step); the time includes "
        "compilation and the FD evaluations during training. Figure: "
        f"`{figure.relative_to(REPO) if figure.is_relative_to(REPO) else figure}`.",
        "",
        "| model | weights | train time | steps (epochs) | FD | KD | class coverage "
        "| FD during training (epoch: FD, 1,000 samples) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, row in floor.items():
        lines.append(
            f"| {label} (floor) | - | - | - | {row['fid']:.2f} | "
            f"{row['kid']:.3f} ± {row['kid_std']:.3f} | "
            f"{row['class_coverage']:.1f} | - |"
        )
    for r in results:
        q = r["quality"]
        lines.append(
            f"| `{r['name']}` | {r['weights']:,} | {r['seconds']:.0f} s | {r['steps']:,} "
            f"({r['epochs']}) | {q['fid']:.2f} | {q['kid']:.3f} ± {q['kid_std']:.3f} | "
            f"{q['class_coverage']:.1f} | {curve_text(r['curve'])} |"
        )
    if skipped:
        lines += ["", f"Skipped (not in `mp_keras.models` yet): {', '.join(skipped)}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per model")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=10, help="epochs between FD evaluations")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--classifier", type=Path, default=None, help="a .keras cache of the feature CNN"
    )
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {', '.join(MODELS)}")
    if not args.data.exists():
        parser.error(f"no MNIST at {args.data} (see ../shared/data/README.md)")
    import keras
    import numpy as np

    from mp_keras.metrics import (
        ClassifierFeatures,
        SampleQuality,
        sample_quality,
        train_feature_classifier,
    )
    from mp_keras.plots import save_image_grid

    train_x, train_y, held_x, held_y = load_mnist(args.data)
    start = time.perf_counter()
    classifier = train_feature_classifier(
        train_x, train_y, epochs=3, seed=args.seed, path=args.classifier, batch_size=128
    )
    extractor = ClassifierFeatures(classifier)
    held_features, held_probabilities = extractor(held_x)
    accuracy = float(np.mean(held_probabilities.argmax(axis=1) == held_y))
    print(f"feature CNN: held-out accuracy {accuracy:.3f} ({time.perf_counter() - start:.0f} s)")
    floor = real_floor(extractor, train_x, held_features, args.seed)

    # The callback puts val_fid, val_kid and val_class_coverage in fit's logs.
    quality = SampleQuality(
        held_x, extractor, num_samples=1000, every=args.every, seed=args.seed, kid_subsets=1
    )
    results, skipped = [], []
    for name in names:
        result = train_one(name, train_x, args.minutes, args.seed, quality)
        if result is None:
            skipped.append(name)
            print(f"{name}: not in mp_keras.models, skipped")
            continue
        result["quality"] = sample_quality(
            result["model"], held_x, extractor, num_samples=NUM_SAMPLES, seed=args.seed
        )
        results.append(result)
        q = result["quality"]
        print(
            f"{name}: FD {q['fid']:.2f}, KD {q['kid']:.4f}, coverage {q['class_coverage']:.1f} "
            f"after {result['steps']} steps in {result['seconds']:.0f} s"
        )
    rows = {"real (held out)": held_x[:16]}
    for r in results:
        samples = keras.ops.convert_to_numpy(r["model"].sample(16, seed=args.seed + 1))
        rows[r["name"]] = np.asarray(samples)
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    save_image_grid(rows, args.figure)
    text = table(
        results,
        floor,
        skipped,
        accuracy,
        args.minutes,
        keras.backend.backend(),
        args.figure.resolve(),
    )
    print(text)
    if not args.no_docs:
        write_section(DOCS, "gan_mnist", keras.backend.backend(), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
