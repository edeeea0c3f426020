"""Chapter 5 figures: denoising and inpainting autoencoders, and the linear AE against PCA.

* Denoising (`Autoencoder`, corruption `noise` with std 0.3 and `salt_and_pepper` at
  rate 0.2) and inpainting (`mask`, one square of half the image side set to 0), each
  trained on clean targets. On the held-out split, every image is corrupted once with a
  fixed seed; the table gives the PSNR of the corrupted input (clipped to [0, 1], which
  any denoiser could do) and of the reconstruction, and their margin. For inpainting it
  also gives the mean squared error per pixel inside the patch (input, which is 0 there,
  and output) and outside it.
* `LinearAutoencoder` trained by full-batch Adam (1,000 steps, cosine decay from 0.05)
  against `LinearAutoencoder.from_pca` of the same images (all digits; 2,000 of the MNIST
  training images): test and training reconstruction error (squared error per image)
  and the largest principal angle between the decoder's column space and the top
  principal components (large when eigenvalues near the cut are close: the error, not
  the basis, is then what gradient descent recovers).

Data: the embedded 8x8 `digits` (1,500 train / 297 test), and with `--mnist` the 28x28
images of `../shared/data/mnist_test.npz` (first 8,000 train, last 2,000 test). The table
is printed and written into `docs/chapter5.md` in a block per backend (replaced when run
again; not with `--no-docs` or `--quick`). `--figures DIR` writes one PNG per autoencoder
(rows: corrupted, reconstructed, clean test images). The exit status is 1 if a denoiser
does not beat its corrupted input, inpainting does not lower the error inside the patch,
or gradient descent ends more than 1% above the PCA error.

Usage (from the repository root):

    .venv/bin/python apps/benchmarks/chapter5_autoencoders.py [--backend jax]
        [--mnist] [--architecture mlp|conv] [--epochs 60] [--seed 0]
        [--tasks noise,salt_and_pepper,mask] [--figures DIR] [--no-docs] [--quick]
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

REPO = Path(__file__).resolve().parents[2]
MNIST = REPO.parent / "shared" / "data" / "mnist_test.npz"
DOCS = REPO / "docs" / "chapter5.md"
TASKS = {
    "noise": "denoising, Gaussian std 0.3",
    "salt_and_pepper": "denoising, salt and pepper 20%",
    "mask": "inpainting, square of half the side",
}


def load_digits(quick: bool) -> tuple[Any, Any]:
    from mp_keras import data

    train, test = data.load("digits", "train").x, data.load("digits", "test").x
    return (train[:256], test[:64]) if quick else (train, test)


def load_mnist() -> tuple[Any, Any]:
    """MNIST test set split 8,000 / 2,000, images in [0, 1] with a channel axis."""
    import numpy as np

    if not MNIST.exists():
        sys.exit(f"{MNIST} not found: --mnist needs the shared reference data.")
    with np.load(MNIST) as archive:
        x = archive["images"].astype("float32")[..., None] / 255.0  # (10000, 28, 28, 1)
    return x[:8000], x[8000:]


def settings(name: str, architecture: str, quick: bool) -> dict[str, Any]:
    """Model sizes and training of each dataset (overcomplete latent on the 8x8 digits)."""
    if quick:
        return dict(latent_dim=8, hidden_units=(16,), epochs=1, batch_size=64, steps=20, linear=256)
    if name == "digits":
        hidden = (256,) if architecture == "mlp" else (32, 64)
        return dict(
            latent_dim=128, hidden_units=hidden, epochs=60, batch_size=64, steps=1000, linear=1500
        )
    hidden = (512, 256) if architecture == "mlp" else (32, 64)
    # The linear AE trains full-batch: on 2,000 of the MNIST images, to keep it short.
    return dict(
        latent_dim=128, hidden_units=hidden, epochs=20, batch_size=128, steps=1000, linear=2000
    )


def seed_shuffling(seed: int) -> None:
    """Seeds fit's shuffling: NumPy's on JAX and PyTorch, TensorFlow's on TensorFlow.

    (The models seed their own weights and corruption draws; importing TensorFlow only to
    seed it would cost seconds on the other backends.)
    """
    import keras
    import numpy as np

    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
    else:
        np.random.seed(seed)  # noqa: NPY002  (Keras shuffles arrays with np.random)


def train_autoencoder(
    name: str, task: str, train: Any, test: Any, config: dict, args: argparse.Namespace
) -> dict[str, Any]:
    import keras
    import numpy as np

    from mp_keras.models.autoencoder import Autoencoder, psnr

    seed_shuffling(args.seed)
    model = Autoencoder(
        train.shape[1:],
        latent_dim=config["latent_dim"],
        hidden_units=config["hidden_units"],
        architecture=args.architecture,
        corruption=task,
        noise_std=0.3,
        corruption_rate=0.2,
        reconstruction="bernoulli",  # grey values in [0, 1]: the output is a sigmoid
        seed=args.seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    start = time.perf_counter()
    model.fit(train, epochs=config["epochs"], batch_size=config["batch_size"], verbose=0)
    seconds = time.perf_counter() - start

    seed = 1000 + args.seed  # the same corrupted test set on every backend and run
    corrupted = np.clip(keras.ops.convert_to_numpy(model.corrupt(test, seed=seed)), 0.0, 1.0)
    output = np.clip(keras.ops.convert_to_numpy(model(corrupted)), 0.0, 1.0)
    result = {
        "data": name,
        "task": task,
        "psnr_corrupted": psnr(test, corrupted),
        "psnr_output": psnr(test, output),
        "seconds": seconds,
    }
    result["margin"] = result["psnr_output"] - result["psnr_corrupted"]
    if task == "mask":
        ones = np.ones_like(test)
        inside = keras.ops.convert_to_numpy(model.corrupt(ones, seed=seed)) == 0
        result["mse_in_patch_input"] = float(np.mean((corrupted - test)[inside] ** 2))
        result["mse_in_patch_output"] = float(np.mean((output - test)[inside] ** 2))
        result["mse_outside_patch"] = float(np.mean((output - test)[~inside] ** 2))
    if args.figures:
        from mp_keras.plots import save_image_grid

        num = 3 if args.quick else 10
        rows = {"corrupted": corrupted[:num], "reconstructed": output[:num], "clean": test[:num]}
        save_image_grid(rows, Path(args.figures) / f"{name}_{task}.png")
    return result


def linear_vs_pca(name: str, train: Any, test: Any, latent_dim: int, steps: int) -> dict:
    import keras
    import numpy as np

    from mp_keras.models.linear_autoencoder import LinearAutoencoder

    pca = LinearAutoencoder.from_pca(train, latent_dim)
    model = LinearAutoencoder(train.shape[1:], latent_dim=latent_dim, seed=0)
    schedule = keras.optimizers.schedules.CosineDecay(0.05, steps, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    start = time.perf_counter()
    model.validate_data(train)  # fit cannot peek into a generator

    def full_batches() -> Any:  # full-batch gradient descent: the whole set every step
        for _ in range(steps):
            yield (train,)

    model.fit(full_batches(), steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
    seconds = time.perf_counter() - start
    q_model, _ = np.linalg.qr(model.decoder_basis())
    cosines = np.linalg.svd(q_model.T @ pca.decoder_basis(), compute_uv=False)
    return {
        "data": name,
        "latent_dim": latent_dim,
        "gd_error": model.reconstruction_error(test),
        "pca_error": pca.reconstruction_error(test),
        "gd_train_error": model.reconstruction_error(train),
        "pca_train_error": pca.reconstruction_error(train),
        "angle": float(np.degrees(np.arccos(np.clip(cosines.min(), -1.0, 1.0)))),
        "seconds": seconds,
    }


def markdown(backend: str, command: str, results: dict[str, Any], seed: int) -> str:
    import keras

    labels = {"digits": "digits 8x8", "mnist": "MNIST 28x28"}
    today = datetime.date.today().isoformat()
    lines = [
        f"#### {backend}",
        "",
        f"Command: `{command}`; backend {backend}; {today}; machine: {os.cpu_count()}-core "
        f"{platform.machine()} CPU, no GPU, shared with other jobs; Keras {keras.__version__}; "
        f"seed {seed}.",
        "",
        "| data | autoencoder | PSNR corrupted (dB) | PSNR output (dB) | margin (dB) "
        "| MSE in patch: input / output | MSE outside patch | training time |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    setup = "; ".join(
        f"{labels[name]}: latent {c['latent_dim']}, hidden {list(c['hidden_units'])}, "
        f"{c['epochs']} epochs of batch {c['batch_size']}"
        for name, c in results["settings"].items()
    )
    lines[4:4] = [
        f"Autoencoders: {results['architecture']} encoder and decoder, Bernoulli "
        f"reconstruction loss, Adam 1e-3; {setup}. PSNR and MSE on the held-out images.",
        "",
    ]
    for r in results["autoencoders"]:
        patch = outside = ""
        if r["task"] == "mask":
            patch = f"{r['mse_in_patch_input']:.4f} / {r['mse_in_patch_output']:.4f}"
            outside = f"{r['mse_outside_patch']:.4f}"
        lines.append(
            f"| {labels[r['data']]} | {TASKS[r['task']]} | {r['psnr_corrupted']:.2f} "
            f"| {r['psnr_output']:.2f} | {r['margin']:+.2f} | {patch} | {outside} "
            f"| {r['seconds']:.0f} s |"
        )
    lines += [
        "",
        "| data | latent dim | linear AE (Adam), test error | PCA, test error | ratio "
        "| train error ratio | largest principal angle |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["linear"]:
        lines.append(
            f"| {labels[r['data']]} | {r['latent_dim']} | {r['gd_error']:.4f} "
            f"| {r['pca_error']:.4f} | {r['gd_error'] / r['pca_error']:.4f} "
            f"| {r['gd_train_error'] / r['pca_train_error']:.4f} | {r['angle']:.2f} deg |"
        )
    return "\n".join(lines)


def passed(results: dict[str, Any]) -> bool:
    ok = all(r["margin"] > 0 for r in results["autoencoders"])
    ok &= all(
        r["mse_in_patch_output"] < r["mse_in_patch_input"]
        for r in results["autoencoders"]
        if r["task"] == "mask"
    )
    return ok and all(r["gd_train_error"] < 1.01 * r["pca_train_error"] for r in results["linear"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark, prints its table; returns the results (and `passed`)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--mnist", action="store_true", help="also 28x28 MNIST")
    parser.add_argument("--architecture", default="mlp", choices=["mlp", "conv"])
    parser.add_argument("--epochs", type=int, default=None, help="override every dataset's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figures", default=None, help="folder for the PNGs")
    parser.add_argument("--no-docs", action="store_true", help="print only")
    parser.add_argument("--quick", action="store_true", help="tiny test run (no docs)")
    parser.add_argument(
        "--tasks", default=",".join(TASKS), help=f"comma-separated, from {', '.join(TASKS)}"
    )
    args = parser.parse_args(argv)
    tasks = [task for task in args.tasks.split(",") if task]
    if not tasks or set(tasks) - set(TASKS):
        parser.error(f"--tasks takes names from {', '.join(TASKS)}; got {args.tasks!r}.")
    os.environ["KERAS_BACKEND"] = args.backend  # Keras reads it once, at import
    sys.path.insert(0, str(REPO))
    import keras

    if keras.backend.backend() != args.backend:
        sys.exit(f"Keras already runs on {keras.backend.backend()}; cannot use {args.backend}.")
    if args.figures:
        Path(args.figures).mkdir(parents=True, exist_ok=True)

    datasets = {"digits": load_digits(args.quick)}
    if args.mnist and not args.quick:
        datasets["mnist"] = load_mnist()
    results: dict[str, Any] = {
        "autoencoders": [],
        "linear": [],
        "settings": {},
        "architecture": args.architecture,
    }
    for name, (train, test) in datasets.items():
        config = settings(name, args.architecture, args.quick)
        if args.epochs is not None:
            config["epochs"] = args.epochs
        results["settings"][name] = config
        for task in tasks:
            result = train_autoencoder(name, task, train, test, config, args)
            print(
                f"{name} {task}: PSNR {result['psnr_corrupted']:.2f} -> "
                f"{result['psnr_output']:.2f} dB ({result['seconds']:.0f} s)"
            )
            results["autoencoders"].append(result)
        for k in (2, 10) if not args.quick else (2,):
            subset = train[: config["linear"]]
            results["linear"].append(linear_vs_pca(name, subset, test, k, config["steps"]))
    results["passed"] = passed(results)

    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--no-docs"]
    if "--backend" not in given:
        given = ["--backend", args.backend, *given]
    command = " ".join([".venv/bin/python", "apps/benchmarks/chapter5_autoencoders.py", *given])
    text = markdown(args.backend, command, results, args.seed)
    print(text)
    if not (args.no_docs or args.quick):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _docs import write_section

        write_section(DOCS, "chapter5_autoencoders", args.backend, text)
    return results


if __name__ == "__main__":
    sys.exit(0 if main()["passed"] else 1)
