"""Mode coverage of four GANs on the ring and grid toy sets (notes, chapter 8).

The vanilla `GAN` (non-saturating loss), `UnrolledGAN` (k = 5), `WGAN` (clipping) and
`WGANGP` (gradient penalty) are trained with the same MLP networks (latent 8, two hidden
layers of 128 units each side) and the same number of generator steps (`--steps`,
batch 128) on `ring` (8 Gaussians, std 0.02) and `grid` (25 Gaussians, std 0.05), seeds
0, 1, 2. Each is scored with `mp_keras.metrics.mode_coverage` on 2,500 samples: modes
covered, fraction of high-quality samples (within 3 std of a centre) and the KL of the
mode histogram from the uniform one.

Optimizers: Adam(1e-3, beta_1=0.5) for both phases of the GAN and the unrolled GAN;
the WGAN's RMSprop and WGAN-GP's Adam(beta_1=0, beta_2=0.9) at the papers' settings
except for a larger learning rate (`WGAN_RATE`, `WGANGP_RATE`) so that they move within
the short budget. n_critic = 5 for both Wasserstein GANs.

Figures: `docs/figures/chapter8_gan_modes_samples.png` (samples of seed 0 per model and
dataset) and `docs/figures/chapter8_gan_modes_training.png` (modes covered over training
by the vanilla GAN per seed, which shows cycling if it happens, and the critic's
Wasserstein estimate against steps for WGAN and WGAN-GP). The table is printed as
markdown and, unless `--no-docs`, written into `docs/chapter8.md` between
`<!-- gan_modes BACKEND begin/end -->` markers.

Usage (from the repository root; the defaults take about 10 minutes on JAX on a
2-core machine):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/gan_modes.py
        [--steps 1500] [--datasets ring,grid] [--seeds 0,1,2] [--models GAN,UnrolledGAN]
        [--schedule constant|cosine] [--discriminator-rate 2e-4]
        [--unroll-optimizer sgd|adam] [--unroll-rate 1e-3] [--no-docs]

Runs with other settings than the defaults write their own block (its marker names the
settings), without figures.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from _docs import write_section  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs" / "chapter8.md"
SAMPLES_FIGURE = REPO / "docs" / "figures" / "chapter8_gan_modes_samples.png"
TRAINING_FIGURE = REPO / "docs" / "figures" / "chapter8_gan_modes_training.png"
BATCH = 128  # as the command-line recipes
NUM_SAMPLES = 2500
CHECKPOINTS = 10  # evaluations over training
WGAN_RATE = 5e-4
WGANGP_RATE = 1e-3
MODELS = ("GAN", "UnrolledGAN", "WGAN", "WGANGP")
NETWORK = dict(latent_dim=8, generator_units=(128, 128), discriminator_units=(128, 128))


def toy(name: str) -> tuple[Any, Any, float]:
    """Training points, mixture centres and component std of a toy set."""
    from mp_keras import data
    from mp_keras.data import embedded

    x = data.load(name, "train").x
    if name == "ring":
        return x, data.ring_centres(), data.RING_STD
    return x, data.grid_centres(), embedded.GRID_STD


def make_model(
    kind: str,
    seed: int,
    steps: int = 1500,
    schedule: str = "constant",
    discriminator_rate: float | None = None,
    unroll: dict[str, Any] | None = None,
) -> Any:
    """The GAN `kind`, compiled with its optimizers.

    `schedule="cosine"` decays every learning rate to 5% of its start over `steps`
    generator steps (each optimizer steps once per generator step, n_critic times for
    the Wasserstein critics); `discriminator_rate` replaces the GAN's and the unrolled
    GAN's discriminator rate (1e-3); `unroll` (`unroll_optimizer` and/or
    `unroll_learning_rate`) replaces the unrolled GAN's defaults (SGD 1e-3).
    """
    import keras

    from mp_keras import models

    keras.utils.set_random_seed(seed)

    def rate(start: float, updates: int) -> Any:
        if schedule == "constant":
            return start
        return keras.optimizers.schedules.CosineDecay(start, updates, alpha=0.05)

    def adam(start: float, b1: float = 0.5, b2: float = 0.999, updates: int = steps) -> Any:
        return keras.optimizers.Adam(rate(start, updates), beta_1=b1, beta_2=b2)

    d_rate = 1e-3 if discriminator_rate is None else discriminator_rate
    if kind == "GAN":
        model = models.GAN(seed=seed, **NETWORK)
        d_opt, g_opt = adam(d_rate), adam(1e-3)
    elif kind == "UnrolledGAN":
        model = models.UnrolledGAN(unrolling_steps=5, seed=seed, **(unroll or {}), **NETWORK)
        d_opt, g_opt = adam(d_rate), adam(1e-3)
    elif kind == "WGAN":
        model = models.WGAN(seed=seed, **NETWORK)
        d_opt = keras.optimizers.RMSprop(rate(WGAN_RATE, 5 * steps))
        g_opt = keras.optimizers.RMSprop(rate(WGAN_RATE, steps))
    else:
        model = models.WGANGP(seed=seed, **NETWORK)
        d_opt = adam(WGANGP_RATE, 0.0, 0.9, updates=5 * steps)
        g_opt = adam(WGANGP_RATE, 0.0, 0.9)
    model.compile(optimizer={"discriminator": d_opt, "generator": g_opt})
    return model


def train_one(
    kind: str,
    dataset: str,
    seed: int,
    steps: int,
    schedule: str = "constant",
    discriminator_rate: float | None = None,
    unroll: dict[str, Any] | None = None,
) -> dict[str, Any]:
    import keras
    import numpy as np

    from mp_keras.metrics import mode_coverage

    x, centres, std = toy(dataset)
    model = make_model(kind, seed, steps, schedule, discriminator_rate, unroll)
    rng = np.random.default_rng(seed)
    chunk = max(1, steps // CHECKPOINTS)
    trace, wasserstein, done = [], [], 0
    start = time.perf_counter()
    while done < steps:
        n = min(chunk, steps - done)
        batch = x[rng.integers(0, len(x), size=n * BATCH)]
        history = model.fit(batch, epochs=1, batch_size=BATCH, shuffle=False, verbose=0)
        done += n
        samples = keras.ops.convert_to_numpy(model.sample(NUM_SAMPLES, seed=seed + 1))
        trace.append((done, mode_coverage(samples, centres, std)["modes"]))
        if "wasserstein" in history.history:
            wasserstein.append((done, history.history["wasserstein"][-1]))
    seconds = time.perf_counter() - start
    samples = keras.ops.convert_to_numpy(model.sample(NUM_SAMPLES, seed=seed + 1))
    score = mode_coverage(samples, centres, std)
    return dict(
        kind=kind,
        dataset=dataset,
        seed=seed,
        modes=score["modes"],
        num_modes=len(centres),
        high_quality=score["high_quality"],
        kl=score["kl"],
        seconds=seconds,
        samples=samples[:1000],
        centres=centres,
        trace=trace,
        wasserstein=wasserstein,
    )


def save_figures(results: list[dict[str, Any]], datasets: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = {
        (r["kind"], r["dataset"]): r
        for r in results
        if r["seed"] == min(x["seed"] for x in results)
    }
    fig, axes = plt.subplots(
        len(datasets), len(MODELS), figsize=(3 * len(MODELS), 3 * len(datasets)), squeeze=False
    )
    for i, dataset in enumerate(datasets):
        for j, kind in enumerate(MODELS):
            ax, r = axes[i, j], first[(kind, dataset)]
            ax.scatter(r["samples"][:, 0], r["samples"][:, 1], s=2, alpha=0.5)
            ax.scatter(r["centres"][:, 0], r["centres"][:, 1], s=12, c="red", marker="x")
            ax.set_title(f"{kind} on {dataset}: {r['modes']}/{r['num_modes']} modes", fontsize=8)
            ax.set_aspect("equal")
            ax.set_xlim(-6, 6) if dataset == "grid" else ax.set_xlim(-3, 3)
            ax.set_ylim(-6, 6) if dataset == "grid" else ax.set_ylim(-3, 3)
    fig.tight_layout()
    SAMPLES_FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(SAMPLES_FIGURE, dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 1 + len(datasets), figsize=(4.5 * (1 + len(datasets)), 3.5))
    for r in results:
        if r["kind"] == "GAN":
            steps, modes = zip(*r["trace"])
            axes[0].plot(steps, modes, marker=".", label=f"{r['dataset']} seed {r['seed']}")
    axes[0].set(title="vanilla GAN: modes covered", xlabel="generator steps", ylabel="modes")
    axes[0].legend(fontsize=7)
    for ax, dataset in zip(axes[1:], datasets):
        for r in results:
            if r["dataset"] == dataset and r["wasserstein"]:
                steps, values = zip(*r["wasserstein"])
                ax.plot(steps, values, label=f"{r['kind']} seed {r['seed']}")
        ax.set(title=f"critic's Wasserstein estimate ({dataset})", xlabel="generator steps")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(TRAINING_FIGURE, dpi=110)
    plt.close(fig)


def table(
    results: list[dict[str, Any]],
    backend: str,
    steps: int,
    settings: str = "",
    figures: bool = True,
) -> str:
    import numpy as np

    seeds = ", ".join(str(s) for s in dict.fromkeys(r["seed"] for r in results))
    lines = [
        f"Generator steps {steps}, batch {BATCH}, {NUM_SAMPLES} samples scored{settings}; "
        f"backend `{backend}`, {platform.machine()} with {os.cpu_count()} cores. Per seed "
        f"({seeds}): modes covered / high-quality fraction / KL.",
        "",
        "| dataset | model | modes covered | high quality | KL | mean s per run |",
        "|---|---|---|---|---|---|",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        for kind in MODELS:
            rows = [r for r in results if r["dataset"] == dataset and r["kind"] == kind]
            if not rows:
                continue
            modes = ", ".join(f"{r['modes']}/{r['num_modes']}" for r in rows)
            hq = ", ".join(f"{r['high_quality']:.2f}" for r in rows)
            kl = ", ".join(f"{r['kl']:.2f}" for r in rows)
            secs = np.mean([r["seconds"] for r in rows])
            lines.append(f"| {dataset} | {kind} | {modes} | {hq} | {kl} | {secs:.0f} |")
    if figures:
        lines += [
            "",
            f"![samples](figures/{SAMPLES_FIGURE.name}) "
            f"![training](figures/{TRAINING_FIGURE.name})",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--datasets", default="ring,grid")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--no-figure", action="store_true")
    parser.add_argument(
        "--schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="cosine: every learning rate decays to 5%% of its start over the steps",
    )
    parser.add_argument(
        "--discriminator-rate",
        type=float,
        help="Adam rate of the GAN's and unrolled GAN's discriminator (default 1e-3)",
    )
    parser.add_argument(
        "--unroll-optimizer",
        choices=("adam", "sgd"),
        help="the unrolled GAN's look-ahead step (default: the model's, sgd)",
    )
    parser.add_argument(
        "--unroll-rate", type=float, help="its learning rate (default: the model's, 1e-3)"
    )
    args = parser.parse_args(argv)
    import keras

    unroll = {}
    if args.unroll_optimizer is not None:
        unroll["unroll_optimizer"] = args.unroll_optimizer
    if args.unroll_rate is not None:
        unroll["unroll_learning_rate"] = args.unroll_rate

    datasets = args.datasets.split(",")
    results = []
    for dataset in datasets:
        for seed in (int(s) for s in args.seeds.split(",")):
            for kind in args.models.split(","):
                r = train_one(
                    kind, dataset, seed, args.steps, args.schedule, args.discriminator_rate, unroll
                )
                print(
                    f"{dataset} seed {seed} {kind}: {r['modes']}/{r['num_modes']} modes, "
                    f"hq {r['high_quality']:.2f}, kl {r['kl']:.2f}, {r['seconds']:.0f} s",
                    flush=True,
                )
                results.append(r)
    settings = ""
    if args.schedule != "constant":
        settings += f", {args.schedule} learning-rate decay"
    if args.discriminator_rate is not None:
        settings += f", GAN/UnrolledGAN discriminator Adam {args.discriminator_rate:g}"
    if unroll:  # the whole look-ahead step, defaults filled in from the model
        from mp_keras.models import UnrolledGAN

        defaults = inspect.signature(UnrolledGAN.__init__).parameters
        optimizer = unroll.get("unroll_optimizer", defaults["unroll_optimizer"].default)
        rate = unroll.get("unroll_learning_rate", defaults["unroll_learning_rate"].default)
        settings += f", look-ahead {optimizer} {rate:g}"
    # The default comparison has its own block (and the figures); other settings another.
    default = (
        args.steps == 1500
        and args.seeds == "0,1,2"
        and set(args.models.split(",")) == set(MODELS)
        and not settings
    )
    text = table(results, keras.backend.backend(), args.steps, settings, figures=default)
    print(text)
    if not args.no_figure and default:
        save_figures(results, datasets)
    if not args.no_docs:
        key = keras.backend.backend()
        if not default:
            key += f" {args.steps} steps {args.models} seeds {args.seeds}{settings}"
        write_section(DOCS, "gan_modes", key, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
