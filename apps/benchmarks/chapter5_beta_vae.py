"""beta-VAE trade-off: reconstruction vs KL vs how the latent dimensions are used.

For beta in {0.5, 1, 4, 10} (and optionally the capacity form with a KL target), a VAE
with 8 latents is trained on the embedded `digits_binarized` (1,500 train images of 8x8)
for `--epochs` epochs (Adam 1e-3, batch 64, seed 0) and measured on the 297 test images:
reconstruction -log p(x|z) and KL(q(z|x) || p(z)) in nats, the ELBO, and a
disentanglement proxy: the per-dimension KL, averaged over the test set, from which the
number of *active* dimensions (mean KL above 0.05 nats; Burda et al. 2016 use the
variance of the posterior mean for the same purpose) and the spread (standard deviation
across dimensions) are reported. Larger beta trades reconstruction for a smaller KL and
fewer, more independent active dimensions.

A latent-traversal figure for each beta is written to `--figures`
(`runs/chapter5/beta_vae_traversal_beta{B}.png`): rows are the latent dimensions sorted
by KL, columns the decoded image as that dimension moves from -2.5 to 2.5 with the others
at the posterior mean of one test digit.

Usage (from the repository root):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/chapter5_beta_vae.py
        [--epochs 60] [--betas 0.5,1,4,10] [--kl-target 6] [--no-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _docs import write_section  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "chapter5.md"
FIGURES = REPO / "runs" / "chapter5"
ACTIVE_NATS = 0.05
LATENTS = 8


def run_beta(beta: float, epochs: int, kl_target: float | None, figures: Path | None) -> dict:
    import keras
    import numpy as np

    from mp_keras import data
    from mp_keras.models import VAE
    from mp_keras.plots import save_image_grid

    keras.utils.set_random_seed(0)
    train = data.load("digits_binarized", "train").x
    test = data.load("digits_binarized", "test").x
    model = VAE(
        input_shape=(8, 8, 1),
        latent_dim=LATENTS,
        hidden_units=(256, 128),
        beta=beta,
        kl_target=kl_target,
        seed=0,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    start = time.perf_counter()
    model.fit(train, epochs=epochs, batch_size=64, verbose=0)
    seconds = time.perf_counter() - start

    mean, log_var = (keras.ops.convert_to_numpy(t) for t in model.encode(test))
    per_dim_kl = 0.5 * (np.exp(log_var) + mean**2 - 1.0 - log_var).mean(0)
    z = mean + np.exp(0.5 * log_var) * np.random.default_rng(0).normal(size=mean.shape)
    logits = keras.ops.convert_to_numpy(model.decoder(z.astype("float32")))
    reconstruction = float(
        keras.ops.convert_to_numpy(model.negative_log_likelihood(test, logits)).mean()
    )
    kl = float(per_dim_kl.sum())
    if figures is not None:
        order = np.argsort(-per_dim_kl)
        steps = np.linspace(-2.5, 2.5, 9, dtype="float32")
        rows = {}
        for dim in order:
            codes = np.repeat(mean[:1], len(steps), axis=0)
            codes[:, dim] = steps
            images = keras.ops.convert_to_numpy(model.decode(codes))
            rows[f"z{dim} (KL {per_dim_kl[dim]:.2f})"] = images
        tag = f"{beta:g}" + ("" if kl_target is None else f"_target{kl_target:g}")
        save_image_grid(rows, figures / f"beta_vae_traversal_beta{tag}.png")
    return {
        "beta": beta,
        "kl_target": kl_target,
        "reconstruction": reconstruction,
        "kl": kl,
        "elbo": -(reconstruction + kl),
        "active": int((per_dim_kl > ACTIVE_NATS).sum()),
        "spread": float(per_dim_kl.std()),
        "seconds": seconds,
    }


def table(results: list[dict[str, Any]], epochs: int, backend: str) -> str:
    lines = [
        f"`digits_binarized` test split (297 images of 8x8), {LATENTS} latents, {epochs} "
        f"epochs, backend `{backend}`, {platform.machine()} with {os.cpu_count()} cores; "
        "rerun with `apps/benchmarks/chapter5_beta_vae.py`.",
        "",
        "| beta | loss form | reconstruction (nats) | KL (nats) | ELBO | active dims "
        f"(KL > {ACTIVE_NATS}) | KL spread across dims | train time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        form = "β·KL" if r["kl_target"] is None else f"β·\\|KL - {r['kl_target']:g}\\|"
        lines.append(
            f"| {r['beta']:g} | {form} | {r['reconstruction']:.2f} | {r['kl']:.2f} | "
            f"{r['elbo']:.2f} | {r['active']} / {LATENTS} | {r['spread']:.2f} | "
            f"{r['seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--betas", default="0.5,1,4,10")
    parser.add_argument("--kl-target", type=float, default=None, help="also run beta=10, |KL-δ|")
    parser.add_argument("--figures", type=Path, default=FIGURES)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    import keras

    args.figures.mkdir(parents=True, exist_ok=True)
    runs = [(float(b), None) for b in args.betas.split(",") if b.strip()]
    if args.kl_target is not None:
        runs.append((10.0, args.kl_target))
    results = [run_beta(b, args.epochs, t, args.figures) for b, t in runs]
    text = table(results, args.epochs, keras.backend.backend())
    print(text)
    if not args.no_docs:
        write_section(DOCS, "beta-vae", keras.backend.backend(), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
