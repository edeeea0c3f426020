"""Text-conditioned diffusion on the generated captions: do the samples show the caption?

A CLIP is trained on the `--dataset` pairs (`captions_16`, 16 x 16, by default; or
`captions`, 32 x 32) for `--clip-minutes`, frozen, and a `TextDiffusion` (U-Net (16, 32),
T = 200, linear schedule, condition dropout 0.1) trained on the same pairs for `--minutes`.
For each of the 9 captions "a large {colour} {shape}" and each guidance strength rho of
`--guidance`, `--per-prompt` samples are drawn (large: a small shape is 2 to 4 pixels
across at 16 x 16, too few to have a shape); the judge is a second, independently seeded
CLIP trained the same way (so the diffusion model is not graded by the encoder it was
conditioned on): its zero-shot colour and shape predictions on the samples are compared
with the caption's. The same judge's accuracy on the real large shapes of the held-out
images is the ceiling. A figure of the samples per caption and rho goes to
docs/figures/chapter9_text_samples.png, the table into docs/chapter9.md between
`<!-- text-diffusion ... begin/end -->` markers (unless `--no-docs`).

Usage (from the repository root; about CLIP_MINUTES * 2 + MINUTES + 2 minutes):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/text_diffusion_prompts.py
        [--dataset captions_16] [--clip-minutes 1.5] [--minutes 6] [--guidance 0,2]
        [--per-prompt 8] [--no-docs]
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
FIGURE = REPO / "docs" / "figures" / "chapter9_text_samples.png"
COLOURS, SHAPES = ("red", "green", "blue"), ("circle", "square", "triangle")


def fit_for(model, x, y, minutes, batch_size=64):
    """Whole epochs of `fit` until `minutes` have passed; returns (epochs, seconds)."""
    seconds, epochs = 0.0, 0
    while seconds < 60 * minutes:
        start = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)
        seconds += time.perf_counter() - start
        epochs += 1
    return epochs, seconds


def train_clip(pairs, minutes, seed):
    import keras

    from mp_keras.data import captions
    from mp_keras.models import CLIP

    clip = CLIP(
        pairs.info.shape, len(captions.VOCABULARY), captions.MAX_LENGTH, embed_dim=32, seed=seed
    )
    clip.compile(optimizer=keras.optimizers.Adam(2e-3))
    return clip, fit_for(clip, pairs.x, pairs.y, minutes)


def judge(clip, images):
    """Zero-shot (colour, shape) indices of `images` by `clip`."""
    from mp_keras.data import captions

    colour = clip.zero_shot_classify(images, captions.tokenize(captions.caption_prompts("colour")))
    shape = clip.zero_shot_classify(images, captions.tokenize(captions.caption_prompts("shape")))
    return colour, shape


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("captions_16", "captions"), default="captions_16")
    parser.add_argument("--clip-minutes", type=float, default=1.5)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--guidance", default="0,2")
    parser.add_argument("--per-prompt", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)

    import keras

    from mp_keras import data
    from mp_keras.data import captions
    from mp_keras.models import TextDiffusion
    from mp_keras.plots import save_image_grid

    keras.utils.set_random_seed(args.seed)
    pairs, test = data.load(args.dataset, "train"), data.load(args.dataset, "test")
    clip, (clip_epochs, clip_seconds) = train_clip(pairs, args.clip_minutes, args.seed)
    referee, _ = train_clip(pairs, args.clip_minutes, args.seed + 1)
    labels = captions.captions_labels("test")
    large = labels["size"] == 1
    colour, shape = judge(referee, test.x[large])
    ceiling = (
        np.mean(colour == labels["colour"][large]),
        np.mean(shape == labels["shape"][large]),
    )
    print(f"CLIPs: {clip_epochs} epochs in {clip_seconds:.0f} s; judge on real: {ceiling}")

    model = TextDiffusion(
        clip, filters=(16, 32), timesteps=200, schedule="linear", ema_momentum=0.995,
        seed=args.seed,
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(1e-3, use_ema=True, ema_momentum=0.995))
    epochs, seconds = fit_for(model, pairs.x, pairs.y, args.minutes)
    print(f"TextDiffusion: {epochs} epochs in {seconds:.0f} s", flush=True)

    prompts = [f"a large {c} {s}" for s in SHAPES for c in COLOURS]
    wanted_colour = np.repeat([COLOURS.index(p.split()[2]) for p in prompts], args.per_prompt)
    wanted_shape = np.repeat([SHAPES.index(p.split()[3]) for p in prompts], args.per_prompt)
    side = pairs.info.shape[0]
    lines = [
        f"TextDiffusion (U-Net (16, 32), T = 200, linear schedule) on a frozen CLIP (embed 32; "
        f"{clip_epochs} epochs, {clip_seconds:.0f} s), trained {epochs} epochs "
        f"({seconds:.0f} s) on the 4,000 `{args.dataset}` pairs ({side} x {side}); "
        f"{keras.backend.backend()}, {platform.machine()} with {os.cpu_count()} cores. "
        f"{args.per_prompt} samples for each of the 9 captions "
        '"a large {colour} {shape}", judged by a second CLIP trained the same way with '
        "another seed (zero-shot colour and shape).",
        "",
        "| samples | guidance rho | colour as captioned | shape as captioned |",
        "|---|---|---|---|",
        f"| real held-out large shapes (the judge's ceiling) | | {ceiling[0]:.2f} | "
        f"{ceiling[1]:.2f} |",
        "| chance | | 0.33 | 0.33 |",
    ]
    rows, titles = {}, {}
    for rho in (float(r) for r in args.guidance.split(",")):
        chosen = [p for p in prompts for _ in range(args.per_prompt)]
        samples = np.asarray(
            keras.ops.convert_to_numpy(
                model.sample(len(chosen), seed=args.seed, prompt=chosen, guidance=rho)
            )
        )
        colour, shape = judge(referee, samples)
        lines.append(
            f"| TextDiffusion | {rho:g} | {np.mean(colour == wanted_colour):.2f} | "
            f"{np.mean(shape == wanted_shape):.2f} |"
        )
        print(lines[-1], flush=True)
        rows[f"rho = {rho:g}"] = samples[:: args.per_prompt]
        titles[f"rho = {rho:g}"] = [p.removeprefix("a large ") for p in prompts]
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    save_image_grid(rows, FIGURE, titles=titles)
    lines += [
        "",
        "![one sample per caption and guidance strength](figures/chapter9_text_samples.png)",
        "",
        f"`KERAS_BACKEND={keras.backend.backend()} python apps/benchmarks/text_diffusion_prompts.py"
        f" --dataset {args.dataset} --clip-minutes {args.clip_minutes:g} "
        f"--minutes {args.minutes:g}`",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_docs:
        write_section(DOCS, "text-diffusion", keras.backend.backend(), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
