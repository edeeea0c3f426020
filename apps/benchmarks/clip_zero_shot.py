"""CLIP on generated captions: zero-shot accuracy per attribute and retrieval recall@k.

A small CLIP (`mp_keras.models.clip.CLIP`) is trained on `--train` generated image-caption
pairs (`mp_keras.data.captions`: one red/green/blue, small/large circle, square or
triangle per image, in one of four quarters; each attribute left out of a caption with
probability 0.3) for at most `--seconds` of training (Adam `--lr`, batch 64, seed 0), on
one backend. On `--test` held-out images with full captions it reports zero-shot
accuracy for each attribute (the class whose prompt, e.g. "a circle" or "a shape at the
top left", has the highest cosine similarity) next to chance, and image -> text
recall@1/5 over the distinct captions of the held-out set (identical captions count as
one text). The table goes into `docs/chapter9.md` (block `clip-zero-shot BACKEND`), or
to `--docs`.

Usage (from the repository root):

    KERAS_BACKEND=jax .venv/bin/python apps/benchmarks/clip_zero_shot.py
        [--seconds 240] [--image-size 32] [--train 20000] [--num-layers 1] [--no-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from _docs import write_section  # benchmarks/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "chapter9.md"


def run(args: argparse.Namespace) -> dict:
    import keras
    import numpy as np

    from mp_keras.data import captions
    from mp_keras.models.clip import CLIP

    keras.utils.set_random_seed(0)
    size = args.image_size
    x, tokens, _ = captions.generate_captions(args.train, seed=1, image_size=size)
    held_out, full, labels = captions.generate_captions(
        args.test, seed=2, image_size=size, drop_prob=0.0
    )
    model = CLIP(
        (size, size, 3),
        len(captions.VOCABULARY),
        captions.MAX_LENGTH,
        embed_dim=args.embed_dim,
        filters=(16, 32),
        image_units=64,
        text_dim=args.embed_dim,
        num_layers=args.num_layers,
        seed=0,
    )
    model.compile(optimizer=keras.optimizers.Adam(args.lr))

    class Budget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if time.perf_counter() - self.start > args.seconds:
                self.model.stop_training = True

    start = time.perf_counter()
    history = model.fit(
        x, tokens, batch_size=64, epochs=args.max_epochs, verbose=0, callbacks=[Budget()]
    ).history
    seconds = time.perf_counter() - start
    zero_shot = {}
    for attribute, names in captions.ATTRIBUTES.items():
        prompts = captions.tokenize(captions.caption_prompts(attribute))
        predicted = model.zero_shot_classify(held_out, prompts)
        zero_shot[attribute] = (float(np.mean(predicted == labels[attribute])), 1 / len(names))
    return {
        "zero_shot": zero_shot,
        "recall": model.retrieval_recall(held_out, full, k=(1, 5)),
        "epochs": len(history["loss"]),
        "loss": history["loss"][-1],
        "logit_scale": history["logit_scale"][-1],
        "seconds": seconds,
    }


def table(r: dict, args: argparse.Namespace, backend: str) -> str:
    distinct = r["recall"]["captions"]
    lines = [
        f"CLIP (embed_dim {args.embed_dim}, {args.num_layers} text block(s)) trained on "
        f"{args.train:,} generated {args.image_size}x{args.image_size} caption pairs for "
        f"{r['epochs']} epoch(s), {r['seconds']:.0f} s (budget {args.seconds} s), backend "
        f"`{backend}`, {platform.machine()} with {os.cpu_count()} cores; final loss "
        f"{r['loss']:.3f}, logit scale {r['logit_scale']:.1f}. Evaluated on {args.test} "
        "held-out images; rerun with `apps/benchmarks/clip_zero_shot.py`.",
        "",
        "| zero-shot attribute | prompts | accuracy | chance |",
        "|---|---|---|---|",
    ]
    from mp_keras.data import captions

    for attribute, (accuracy, chance) in r["zero_shot"].items():
        prompts = ", ".join(f'"{p}"' for p in captions.caption_prompts(attribute)[:2]) + ", ..."
        lines.append(f"| {attribute} | {prompts} | {accuracy:.3f} | {chance:.3f} |")
    lines += [
        "",
        f"Image -> text retrieval over the {distinct} distinct full captions of the held-out "
        f"set: recall@1 {r['recall']['recall@1']:.3f} (chance {1 / distinct:.3f}), "
        f"recall@5 {r['recall']['recall@5']:.3f} (chance {5 / distinct:.3f}).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=240, help="training budget")
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--train", type=int, default=20000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--embed-dim", type=int, default=32)
    parser.add_argument("--num-layers", type=int, default=1)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    import keras

    text = table(run(args), args, keras.backend.backend())
    print(text)
    if not args.no_docs:
        write_section(args.docs, "clip-zero-shot", keras.backend.backend(), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
