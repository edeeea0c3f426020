"""DDPM on the embedded 8x8 digits: the two schedules, samplers and sample quality.

1. `schedules` (no training): abar_t of the linear and cosine schedules (T = 1000) and
   one digit's forward process x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps under both,
   as a figure (docs/figures/chapter9_schedules.png) and a table of the step where
   abar_t falls below 0.5, 0.1 and 0.01 (how soon each destroys the image; the notes'
   footnote 17).
2. `training`: the same DDPM (the `ddpm` recipe's: U-Net of widths (32, 64), T = 1000,
   Adam 1e-3 with an EMA of 0.995, batch 64) trained for `--minutes` on each schedule,
   then `--num` samples from Algorithm 3 and from DDIM with 10, 25 and 100 steps, each
   judged against the test split on the features of the project's CNN trained on the
   digits (`mp_keras.metrics`: Fréchet distance, kernel distance, class coverage; not
   Inception-based), with the sampling time per sample and the variational bound
   (bits/dim, an upper bound, 50 random t per image). The reverse chain of the cosine
   model is drawn (docs/figures/chapter9_reverse_chain.png), and samples of each sampler
   (docs/figures/chapter9_ddpm_samples.png).

Tables are printed and, unless `--no-docs`, written into docs/chapter9.md between
`<!-- diffusion-digits ... begin/end -->` markers.

Usage (from the repository root; about 2 x MINUTES + 3 minutes):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/diffusion_digits.py
        [--parts schedules,training] [--minutes 4] [--num 500] [--seed 0] [--no-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _docs import write_section  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs" / "chapter9.md"
FIGURES = REPO / "docs" / "figures"
SHOWN_STEPS = (0, 50, 100, 250, 500, 750, 1000)
DDIM_STEPS = (10, 25, 100)


def schedules_part(seed: int) -> str:
    from keras import ops

    from mp_keras import data
    from mp_keras.diffusion import NoiseSchedule
    from mp_keras.plots import _pyplot, save_image_grid, write_figure

    schedules = {kind: NoiseSchedule(kind, timesteps=1000) for kind in ("linear", "cosine")}
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    for kind, schedule in schedules.items():
        ax.plot(np.arange(1, 1001), schedule.alpha_bars, label=kind)
    ax.set_xlabel("t")
    ax.set_ylabel("ᾱ_t")
    ax.legend()
    fig.tight_layout()
    FIGURES.mkdir(parents=True, exist_ok=True)
    write_figure(fig, FIGURES / "chapter9_alpha_bar.png")

    digit = data.load("digits", "test").x[:1] * 2 - 1  # process space [-1, 1]
    noise = np.random.default_rng(seed).standard_normal(digit.shape).astype("float32")
    rows, titles = {}, {}
    for kind, schedule in schedules.items():
        images = [digit[0]]
        for t in SHOWN_STEPS[1:]:
            x_t = schedule.q_sample(digit, np.array([t]), noise)
            images.append(np.asarray(ops.convert_to_numpy(x_t))[0])
        rows[kind] = (np.clip(np.stack(images), -1, 1) + 1) / 2
        titles[kind] = [f"t = {t}" for t in SHOWN_STEPS]
    save_image_grid(rows, FIGURES / "chapter9_schedules.png", titles=titles)

    lines = [
        "| schedule | ᾱ_t < 0.5 from t = | ᾱ_t < 0.1 | ᾱ_t < 0.01 | ᾱ_1000 |",
        "|---|---|---|---|---|",
    ]
    for kind, schedule in schedules.items():
        cells = [str(int(np.argmax(schedule.alpha_bars < level)) + 1) for level in (0.5, 0.1, 0.01)]
        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {schedule.alpha_bars[-1]:.1e} |")
    lines += [
        "",
        "![ᾱ_t](figures/chapter9_alpha_bar.png)",
        "",
        "![one digit noised under each schedule](figures/chapter9_schedules.png)",
        "",
        "`python apps/benchmarks/diffusion_digits.py --parts schedules`",
    ]
    return "\n".join(lines)


def train_ddpm(kind: str, train_x: np.ndarray, minutes: float, seed: int):
    import keras

    from mp_keras.models import DDPM

    keras.utils.set_random_seed(seed)
    model = DDPM(
        input_shape=(8, 8, 1),
        network="unet",
        filters=(32, 64),
        schedule=kind,
        timesteps=1000,
        num_levels=17,
        ema_momentum=0.995,
        seed=seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3, use_ema=True, ema_momentum=0.995))
    seconds, epochs = 0.0, 0
    while seconds < 60 * minutes:
        start = time.perf_counter()
        model.fit(train_x, epochs=1, batch_size=64, verbose=0)
        seconds += time.perf_counter() - start
        epochs += 1
    return model, epochs, seconds


def training_part(args: argparse.Namespace) -> str:
    import keras

    from mp_keras import data
    from mp_keras.metrics import ClassifierFeatures, sample_quality, train_feature_classifier
    from mp_keras.plots import save_image_grid

    train, test = data.load("digits", "train"), data.load("digits", "test")
    classifier = train_feature_classifier(train.x, train.y, epochs=20, seed=args.seed)
    extractor = ClassifierFeatures(classifier)
    floor = sample_quality(_Fixed(train.x), test.x, extractor, num_samples=args.num, seed=0)
    lines = [
        f"DDPM U-Net (32, 64), T = 1000, trained {args.minutes:g} min per schedule on "
        f"{keras.backend.backend()} ({platform.machine()}, {os.cpu_count()} cores); "
        f"{args.num} samples each, judged against the {len(test.x)} test digits on the "
        "features of the project's CNN.",
        "",
        "| schedule | epochs | sampler | FD | KD | class coverage | s / sample | "
        "bound (bits/dim) |",
        "|---|---|---|---|---|---|---|---|",
        f"| real training digits (floor) | | | {floor['fid']:.2f} | {floor['kid']:.4f} | "
        f"{floor['class_coverage']:.2f} | | |",
    ]
    rows = {"real": test.x[:16]}
    for kind in ("linear", "cosine"):
        model, epochs, seconds = train_ddpm(kind, train.x, args.minutes, args.seed)
        bound = model.bits_per_dim(test.x, num_timesteps=50, seed=args.seed)
        print(f"{kind}: {epochs} epochs in {seconds:.0f} s; bound {bound:.3f} bits/dim", flush=True)
        samplers = [("DDPM (1000 steps)", {})]
        if kind == "cosine":
            samplers += [(f"DDIM ({n} steps)", {"sampler": "ddim", "steps": n}) for n in DDIM_STEPS]
        for name, options in samplers:
            model.sample(8, seed=args.seed + 1, **options)  # compile
            timed = time.perf_counter()
            samples = model.sample(args.num, seed=args.seed, **options)
            per_sample = (time.perf_counter() - timed) / args.num
            q = sample_quality(_Fixed(samples), test.x, extractor, num_samples=args.num)
            lines.append(
                f"| {kind} | {epochs} | {name} | {q['fid']:.2f} | {q['kid']:.4f} | "
                f"{q['class_coverage']:.2f} | {per_sample * 1e3:.1f} ms | "
                f"{bound if name.startswith('DDPM') else float('nan'):.2f} |".replace(
                    "| nan |", "| |"
                )
            )
            print(lines[-1], flush=True)
            rows[f"{kind} {name}"] = np.asarray(keras.ops.convert_to_numpy(samples))[:16]
        if kind == "cosine":
            keep = (1000, 750, 500, 250, 100, 50, 10)
            chain = _reverse_chain(model, keep, args.seed)
            save_image_grid(
                {f"t = {t}": chain[t] for t in keep} | {"x_0": chain[0]},
                FIGURES / "chapter9_reverse_chain.png",
            )
    save_image_grid(rows, FIGURES / "chapter9_ddpm_samples.png")
    lines += [
        "",
        "![samples](figures/chapter9_ddpm_samples.png)",
        "",
        "The reverse chain of the cosine model (8 samples; each row one t):",
        "",
        "![reverse chain](figures/chapter9_reverse_chain.png)",
        "",
        f"`KERAS_BACKEND={keras.backend.backend()} python apps/benchmarks/diffusion_digits.py "
        f"--parts training --minutes {args.minutes:g} --num {args.num}`",
    ]
    return "\n".join(lines)


def _reverse_chain(model, keep, seed):
    """x_t of 8 samples at the steps `keep` of one Algorithm 3 run, in [0, 1]."""
    import keras

    from mp_keras.diffusion import ddpm_sample

    x_T = keras.random.normal((8, 8, 8, 1), seed=seed)
    x0, kept = ddpm_sample(
        lambda x, t: model.predict_noise(x, t),
        model.schedule,
        x_T,
        seed=seed,
        variance=model.variance,
        keep=keep,
        clip_x0=(-1.0, 1.0),
    )
    to_image = lambda x: np.clip((np.asarray(keras.ops.convert_to_numpy(x)) + 1) / 2, 0, 1)  # noqa: E731
    return {t: to_image(x) for t, x in kept.items()} | {0: to_image(x0)}


class _Fixed:
    """Already drawn samples (or real images: the distances' floor), served to
    `sample_quality` as a model's `sample`."""

    def __init__(self, samples):
        self.samples = samples

    def sample(self, num, seed=None):
        return self.samples[:num]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="schedules,training")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    if "schedules" in parts:
        text = schedules_part(args.seed)
        print(text)
        if not args.no_docs:
            write_section(DOCS, "diffusion-digits", "schedules", text)
    if "training" in parts:
        text = training_part(args)
        print(text)
        if not args.no_docs:
            write_section(DOCS, "diffusion-digits", "training", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
