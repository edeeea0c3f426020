"""The diffusion process and a DDPM training step side by side with diffusers.

Two checks, printed as markdown tables and, unless `--no-docs`, written into
docs/chapter9.md between `<!-- diffusion-peers ... begin/end -->` markers:

1. **Schedules and the reverse step** (`schedules`): our `NoiseSchedule` against
   diffusers' `DDPMScheduler` (`beta_schedule="linear"` and `"squaredcos_cap_v2"`, T =
   1000): the largest absolute difference of beta_t, abar_t and the posterior variance
   beta_tilde_t over all t, and of one reverse step x_{t-1} for random x_t, eps and noise
   at every t (diffusers' `step` with `clip_sample=False`, `variance_type="fixed_small"` and
   `"fixed_large"`, ours `ddpm_step` with `variance="posterior"` and `"beta"`; the noise
   diffusers draws from its generator is redrawn from the same seed and given to ours),
   each also against the step computed in float64 NumPy from the formula of Algorithm 3.
   Both step in float32; diffusers goes through the predicted x_0, which divides by
   sqrt(abar_t) and loses digits at small t.
2. **Training throughput** (`training`): steps per second of our `DDPM` (U-Net
   denoiser, Algorithm 2) with `model.fit` on each backend of `--backends`, each in its
   own process, against diffusers' `UNet2DModel` of about the same size trained by a plain
   PyTorch loop (`DDPMScheduler.add_noise`, MSE on the noise, Adam), same batch and image
   size. The first `--warmup` steps (compilation, tracing) are left out of the timing.

diffusers is optional (the `benchmarks` extra: `pip install -e ".[benchmarks]"`); without
it this script says so and exits.

Usage (from the repository root):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/diffusion_peers.py
        [--parts schedules,training] [--backends tensorflow,jax,torch] [--steps 30]
        [--torch-threads 1] [--no-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _docs import write_section  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs" / "chapter9.md"
TIMESTEPS = 1000
OURS_TO_PEER = {"linear": "linear", "cosine": "squaredcos_cap_v2"}
VARIANCE_TO_PEER = {"posterior": "fixed_small", "beta": "fixed_large"}


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(1, |b|): absolute near 0, relative for the large values at t = T."""
    return float((np.abs(a - b) / np.maximum(1.0, np.abs(b))).max())


def schedules_table(seed: int = 0) -> str:
    """Largest differences between our schedules/steps and diffusers', as markdown."""
    import torch
    from diffusers import DDPMScheduler
    from keras import ops

    from mp_keras.diffusion import NoiseSchedule, ddpm_step

    rows = [
        "| schedule | max \\|Δβ_t\\| | max \\|Δᾱ_t\\| | max \\|Δβ̃_t\\| | reverse step σ² "
        "| ours vs diffusers | ours vs float64 | diffusers vs float64 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rng = np.random.default_rng(seed)
    worst_table, worst_ours = 0.0, 0.0
    for kind, peer_kind in OURS_TO_PEER.items():
        ours = NoiseSchedule(kind, timesteps=TIMESTEPS)
        peer = DDPMScheduler(num_train_timesteps=TIMESTEPS, beta_schedule=peer_kind)
        table_diffs = [
            float(np.abs(ours.betas - peer.betas.double().numpy()).max()),
            float(np.abs(ours.alpha_bars - peer.alphas_cumprod.double().numpy()).max()),
            float(
                np.abs(
                    ours.posterior_variance[1:]
                    - np.array([float(peer._get_variance(t)) for t in range(1, TIMESTEPS)])
                ).max()
            ),
        ]
        worst_table = max(worst_table, *table_diffs)
        for variance, peer_variance in VARIANCE_TO_PEER.items():
            peer = DDPMScheduler(
                num_train_timesteps=TIMESTEPS,
                beta_schedule=peer_kind,
                clip_sample=False,
                variance_type=peer_variance,
            )
            sigma2 = ours.betas if variance == "beta" else ours.posterior_variance
            diffs = np.zeros(3)
            for t in range(1, TIMESTEPS + 1):
                x_t = rng.standard_normal((4, 8, 8, 1)).astype("float32")
                eps = rng.standard_normal((4, 8, 8, 1)).astype("float32")
                # diffusers numbers steps 0..T-1 and draws its noise from the generator.
                theirs = peer.step(
                    torch.from_numpy(eps),
                    t - 1,
                    torch.from_numpy(x_t),
                    generator=torch.Generator().manual_seed(t),
                ).prev_sample.numpy()
                noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(t))
                noise = noise.numpy()
                mine = ops.convert_to_numpy(
                    ddpm_step(ours, x_t, np.full((4,), t), eps, noise, variance)
                )
                beta, abar = ours.betas[t - 1], ours.alpha_bars[t - 1]
                exact = (x_t.astype(np.float64) - beta / np.sqrt(1 - abar) * eps) / np.sqrt(
                    1 - beta
                ) + (t > 1) * np.sqrt(sigma2[t - 1]) * noise
                diffs = np.maximum(
                    diffs,
                    [relative(a, b) for a, b in ((mine, theirs), (mine, exact), (theirs, exact))],
                )
            worst_ours = max(worst_ours, float(diffs[1]))
            table_cells = [f"{d:.1e}" for d in table_diffs]
            step_cells = [f"{d:.1e}" for d in diffs]
            sigma_name = "β_t" if variance == "beta" else "β̃_t"
            rows.append(
                f"| {kind} (`{peer_kind}`, `{peer_variance}`) | "
                + " | ".join([*table_cells, sigma_name, *step_cells])
                + " |"
            )
    rows.append("")
    rows.append(
        f"T = {TIMESTEPS}; differences are the largest over every t (and, for a step, over "
        "4 x 8 x 8 values per t, relative to max(1, |value|)). The tables agree to "
        f"{worst_table:.0e} "
        f"({'within' if worst_table <= 1e-6 else 'NOT within'} 1e-6). Our reverse step is "
        f"within {worst_ours:.0e} of the float64 formula; diffusers', which goes through the "
        "predicted x_0, differs from it most at small t."
    )
    return "\n".join(rows)


IMAGE, FILTERS, BATCH = (28, 28, 1), (32, 64), 64


def ours_rate(steps: int, warmup: int) -> dict:
    """Training steps/s of `DDPM.fit` (U-Net denoiser) on the current backend."""
    import keras

    from mp_keras.models import DDPM

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random(((steps + warmup) * BATCH, *IMAGE)).astype("float32")
    model = DDPM(input_shape=IMAGE, network="unet", filters=FILTERS, time_dim=64, seed=0)
    model.compile()
    model.fit(x[: warmup * BATCH], epochs=1, batch_size=BATCH, verbose=0)  # compile
    start = time.perf_counter()
    model.fit(x[warmup * BATCH :], epochs=1, batch_size=BATCH, shuffle=False, verbose=0)
    return {"rate": steps / (time.perf_counter() - start), "params": model.network.count_params()}


def diffusers_rate(steps: int, warmup: int, threads: int) -> dict:
    """Training steps/s of diffusers' `UNet2DModel` of the same widths, plain PyTorch."""
    import torch
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    net = UNet2DModel(
        sample_size=IMAGE[0],
        in_channels=IMAGE[2],
        out_channels=IMAGE[2],
        layers_per_block=1,
        block_out_channels=FILTERS,
        down_block_types=("DownBlock2D",) * len(FILTERS),
        up_block_types=("UpBlock2D",) * len(FILTERS),
        norm_num_groups=8,
    )
    scheduler = DDPMScheduler(num_train_timesteps=TIMESTEPS, beta_schedule="squaredcos_cap_v2")
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x0 = torch.rand((steps + warmup) * BATCH, IMAGE[2], *IMAGE[:2]) * 2 - 1

    def step(i: int) -> None:
        batch = x0[i * BATCH : (i + 1) * BATCH]
        noise = torch.randn_like(batch)
        t = torch.randint(0, TIMESTEPS, (BATCH,))
        loss = torch.nn.functional.mse_loss(
            net(scheduler.add_noise(batch, noise, t), t).sample, noise
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for i in range(warmup):
        step(i)
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    params = sum(p.numel() for p in net.parameters())
    return {"rate": steps / (time.perf_counter() - start), "params": params}


def run_worker(backend: str, call: str, threads: int) -> dict:
    env = dict(
        os.environ,
        KERAS_BACKEND=backend,
        OMP_NUM_THREADS=str(threads),
        PYTHONPATH=os.pathsep.join([str(REPO), str(Path(__file__).parent)]),
    )
    code = f"import json, diffusion_peers as d; print('RESULT', json.dumps(d.{call}))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.split("RESULT", 1)[1])


def training_table(args: argparse.Namespace) -> str:
    """Steps/s of our DDPM per backend and of diffusers' UNet2DModel loop, one run."""
    peer = run_worker(
        "torch", f"diffusers_rate({args.steps}, {args.warmup}, {args.torch_threads})", 1
    )
    lines = [
        f"One Algorithm 2 step on a batch of {BATCH} images of {IMAGE[0]}x{IMAGE[1]}, U-Nets of "
        f"widths {FILTERS}, Adam, {args.steps} timed steps after {args.warmup} warm-up steps; "
        f"{platform.machine()} with {os.cpu_count()} cores, PyTorch runs with "
        f"{args.torch_threads} thread(s).",
        "",
        "| trainer | network weights | steps/s | ratio to diffusers' loop |",
        "|---|---|---|---|",
        f"| diffusers `UNet2DModel`, plain PyTorch loop | {peer['params']:,} | "
        f"{peer['rate']:.2f} | 1.00 |",
    ]
    for backend in args.backends.split(","):
        threads = args.torch_threads if backend == "torch" else os.cpu_count()
        ours = run_worker(backend, f"ours_rate({args.steps}, {args.warmup})", threads)
        print(f"{backend}: {ours['rate']:.2f} steps/s", flush=True)
        lines.append(
            f"| ours, `DDPM.fit` on {backend} | {ours['params']:,} | {ours['rate']:.2f} | "
            f"{ours['rate'] / peer['rate']:.2f} |"
        )
    lines += [
        "",
        "`python apps/benchmarks/diffusion_peers.py --parts training"
        f" --steps {args.steps} --warmup {args.warmup}`. The networks have the same widths and "
        "levels but are not identical (diffusers' blocks differ in detail), so the weights "
        "are listed.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="schedules,training")
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    try:
        import diffusers  # noqa: F401
    except ImportError:
        print(
            "diffusion_peers: diffusers is not installed; skipping "
            '(pip install -e ".[benchmarks]" to compare with it).'
        )
        return 0
    parts = args.parts.split(",")
    if "schedules" in parts:
        table = schedules_table()
        print(table)
        if not args.no_docs:
            command = "python apps/benchmarks/diffusion_peers.py --parts schedules"
            write_section(DOCS, "diffusion-peers", "schedules", f"{table}\n\n`{command}`")
    if "training" in parts:
        table = training_table(args)
        print(table)
        if not args.no_docs:
            write_section(DOCS, "diffusion-peers", "training", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
