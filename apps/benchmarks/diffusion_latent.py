"""Latent vs pixel diffusion on MNIST 28x28 (notes, section 9.5; Rombach et al. 2022).

The same data and the same wall-clock budget for two DDPMs:

1. **Latent**: a Gaussian `VAE` (MLP, `--latent-dim` 16) is trained first for
   `--ae-minutes`, then frozen; a `LatentDiffusion` (an MLP denoiser on its standardised
   posterior means) trains for `--minutes`; a sample is the VAE decoder's mean of the
   sampled latent.
2. **Pixel**: a `DDPM` with a small U-Net on the 28x28 pixels trains for `--minutes`.

Data: the MNIST test set of `../shared/data/mnist_test.npz` (10,000 digits, see
`/work/shared/data/README.md`): the first 9,000 train, the last 1,000 are the reference
set of the metrics. Both DDPMs use T = `--timesteps` (linear schedule, see
`diffusion_guidance.py` for why) and Algorithm 3 (T network calls per sample, the same
number of steps for both). Reported: training seconds per 1,000 examples (after the first
batch, which traces the step), sampling seconds per sample (`--samples` drawn at once, the
first trace included; samples clipped to [0, 1]), and the classifier-feature FID and
KID of `mp_keras.metrics` (`train_feature_classifier`, the project's CNN trained on
the 9,000 training digits; `sample_quality` against the 1,000 held-out digits; *not*
Inception FID), with the VAE's own prior samples and real training digits as
references. A training run is one `fit` stopped by a timer after the batch that crosses
its budget.

The table is printed as markdown and, unless `--no-docs`, written into `docs/chapter9.md`
between `<!-- diffusion-latent BACKEND begin/end -->` markers; samples of both go to
`docs/figures/chapter9_latent_samples.png`.

Usage (from the repository root; about `--ae-minutes` + 2 x `--minutes` + 3 minutes of
classifier training, sampling and evaluation on a 2-core CPU):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/diffusion_latent.py
        [--minutes 2] [--ae-minutes 1] [--timesteps 200] [--samples 200] [--seed 0]
        [--no-docs]
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
FIGURE = REPO / "docs" / "figures" / "chapter9_latent_samples.png"
MNIST = REPO.parent / "shared" / "data" / "mnist_test.npz"
NUM_TRAIN = 9000
BATCH = 128


def load_mnist(path: Path) -> tuple[Any, Any, Any, Any]:
    """MNIST test digits in [0, 1], `(N, 28, 28, 1)`: the first 9,000 and the rest."""
    import numpy as np

    with np.load(path) as archive:
        images = archive["images"].astype("float32")[..., None] / 255.0
        labels = archive["labels"].astype("int32")
    return images[:NUM_TRAIN], labels[:NUM_TRAIN], images[NUM_TRAIN:], labels[NUM_TRAIN:]


def train(model: Any, x: Any, minutes: float, name: str) -> dict[str, Any]:
    """One `fit` until `minutes` have passed (checked after each batch)."""
    import keras

    class Stop(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.start, self.batches, self.first = time.perf_counter(), 0, None

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.batches += 1
            if self.first is None:  # the first batch traces and compiles the step
                self.first = time.perf_counter()
            if time.perf_counter() - self.start > 60 * minutes:
                self.model.stop_training = True

    stop = Stop()
    start = time.perf_counter()
    history = model.fit(x, batch_size=BATCH, epochs=100_000, verbose=0, callbacks=[stop])
    seconds = time.perf_counter() - start
    examples = stop.batches * BATCH
    steady = (start + seconds - stop.first) / max(examples - BATCH, 1)  # after the trace
    loss = history.history["loss"][-1]
    print(
        f"{name}: {stop.batches} batches ({examples} examples) in {seconds:.0f} s, first "
        f"batch {stop.first - start:.1f} s, last epoch loss {loss:.4f}",
        flush=True,
    )
    return {"seconds": seconds, "examples": examples, "per_1000": 1000 * steady}


def count(variables: Any) -> str:
    """Number of parameters in `variables`, with thousands separators."""
    import numpy as np

    return f"{sum(int(np.prod(v.shape)) for v in variables):,}"


class Timed:
    """`model.sample` with its wall-clock time recorded (for `sample_quality`), clipped to
    the data's [0, 1] (the DDPMs clip already; the Gaussian VAE's decoder means do not)."""

    def __init__(self, model: Any) -> None:
        self.model, self.seconds, self.samples = model, 0.0, None

    def sample(self, num: int, seed: int | None = None) -> Any:
        import keras
        import numpy as np

        start = time.perf_counter()
        samples = keras.ops.convert_to_numpy(self.model.sample(num, seed=seed))
        self.samples = np.clip(np.asarray(samples), 0.0, 1.0)  # the VAE's means are not
        self.seconds = time.perf_counter() - start
        return self.samples


class Reals:
    """Real training digits posing as samples: the metrics' floor."""

    def __init__(self, x: Any) -> None:
        self.x = x

    def sample(self, num: int, seed: int | None = None) -> Any:
        import numpy as np

        rng = np.random.default_rng(seed)
        return self.x[rng.choice(len(self.x), size=num, replace=False)]


def table(rows: list[dict[str, Any]], facts: dict[str, Any], backend: str) -> str:
    lines = [
        f"Latent vs pixel diffusion on MNIST 28x28 ({backend}, CPU, T = {facts['timesteps']}, "
        f"linear schedule, Algorithm 3 for both, {facts['samples']} samples, seed "
        f"{facts['seed']}; `apps/benchmarks/diffusion_latent.py`). Data: the MNIST test set, "
        f"{NUM_TRAIN:,} digits to train, 1,000 held out. The VAE (latent {facts['latent_dim']}) "
        f"trained {facts['vae']['seconds']:.0f} s first; each DDPM trained for "
        f"{facts['minutes']:g} minutes. FID / KID: features of the project's CNN "
        f"(test accuracy {facts['judge_accuracy']:.3f} on the held-out digits), samples vs "
        "the 1,000 held-out digits (not Inception FID).",
        "",
        "| model | parameters trained | training s / 1,000 examples | examples seen | "
        "sampling s / sample (trace included) | FID | KID |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['params']} | {r['per_1000']} | {r['examples']} | "
            f"{r['per_sample']} | {r['fid']:.2f} | {r['kid']:.4f} |"
        )
    lines += [
        "",
        "Latent diffusion spends its budget on 16-dimensional vectors instead of 784 pixels: "
        "many more examples per second and far cheaper sampling steps, at the price of the "
        "autoencoder's reconstruction error (its samples cannot be sharper than the VAE's "
        "decoder means).",
        "",
        f"![latent and pixel diffusion samples](figures/{facts['figure']})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="training budget per DDPM")
    parser.add_argument("--ae-minutes", type=float, default=1.0, help="the VAE's budget")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--timesteps", type=int, default=200)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=MNIST)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    import keras
    import numpy as np

    from mp_keras.metrics import ClassifierFeatures, sample_quality, train_feature_classifier
    from mp_keras.models.ddpm import DDPM
    from mp_keras.models.latent_diffusion import LatentDiffusion
    from mp_keras.models.vae import VAE
    from mp_keras.plots import save_image_grid

    begin = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    x, y, x_eval, y_eval = load_mnist(args.data)
    judge_cnn = train_feature_classifier(x, y, epochs=2, seed=args.seed, batch_size=BATCH)
    extractor = ClassifierFeatures(judge_cnn)
    accuracy = float(np.mean(extractor(x_eval)[1].argmax(1) == y_eval))
    print(f"judge CNN: held-out accuracy {accuracy:.3f} ({time.perf_counter() - begin:.0f} s)")
    facts: dict[str, Any] = {
        "timesteps": args.timesteps,
        "samples": args.samples,
        "seed": args.seed,
        "minutes": args.minutes,
        "latent_dim": args.latent_dim,
        "judge_accuracy": accuracy,
        "figure": args.figure.name,
    }
    quality = dict(kid_subsets=10, kid_subset_size=args.samples // 2, seed=args.seed)

    def evaluate(name: str, model: Any, params: str, run: dict[str, Any] | None) -> Any:
        timed = Timed(model)
        result = sample_quality(timed, x_eval, extractor, args.samples, **quality)
        rows.append(
            {
                "name": name,
                "params": params,
                "per_1000": "-" if run is None else f"{run['per_1000']:.2f}",
                "examples": "-" if run is None else f"{run['examples']:,}",
                "per_sample": f"{timed.seconds / args.samples:.4f}",
                "fid": result["fid"],
                "kid": result["kid"],
            }
        )
        print(f"  {rows[-1]} ({timed.seconds:.0f} s sampling)", flush=True)
        return timed.samples

    rows: list[dict[str, Any]] = []
    real = sample_quality(Reals(x), x_eval, extractor, args.samples, **quality)
    rows.append(
        {
            "name": "real training digits (floor)",
            "params": "-",
            "per_1000": "-",
            "examples": "-",
            "per_sample": "-",
            "fid": real["fid"],
            "kid": real["kid"],
        }
    )

    # (1) The autoencoder, then the latent DDPM on its frozen latents.
    vae = VAE(
        (28, 28, 1),
        args.latent_dim,
        hidden_units=(512, 256),
        likelihood="gaussian",
        observation_std=0.1,
        seed=args.seed,
    )
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    facts["vae"] = train(vae, x, args.ae_minutes, "VAE")
    vae_params = count(vae.trainable_variables)  # before LatentDiffusion freezes it
    common = dict(timesteps=args.timesteps, schedule="linear", ema_momentum=0.995, seed=args.seed)
    latent = LatentDiffusion(vae, hidden_units=(256, 256, 256), time_dim=32, **common)
    latent.compile()
    latent.adapt(x)
    latent_run = train(latent, x, args.minutes, "latent DDPM")
    figure = {"real": x_eval[:10]}
    figure["VAE prior"] = evaluate(
        f"VAE alone (prior samples, {facts['vae']['seconds']:.0f} s)", vae, vae_params, facts["vae"]
    )[:10]
    figure["latent DDPM"] = evaluate(
        "latent DDPM (VAE frozen)", latent, count(latent.phases()[0].variables), latent_run
    )[:10]

    # (2) The pixel DDPM, U-Net, same budget.
    pixel = DDPM((28, 28, 1), filters=(16, 32), time_dim=32, groups=8, num_levels=256, **common)
    pixel.compile()
    pixel_run = train(pixel, x, args.minutes, "pixel DDPM")
    figure["pixel DDPM"] = evaluate(
        "pixel DDPM (U-Net)", pixel, count(pixel.phases()[0].variables), pixel_run
    )[:10]

    args.figure.parent.mkdir(parents=True, exist_ok=True)
    save_image_grid(figure, args.figure)
    text = table(rows, facts, keras.backend.backend())
    print(text)
    print(f"total {time.perf_counter() - begin:.0f} s")
    if not args.no_docs:
        write_section(DOCS, "diffusion-latent", keras.backend.backend(), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
