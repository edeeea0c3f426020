"""Draw samples from an exported generative model with TFLite alone — the mobile path.

    python apps/tflite_sample.py runs/vae/export/model.tflite --out samples.png --num 64

Imports NumPy, `ai_edge_litert` and Pillow only: no Keras, TensorFlow, JAX or PyTorch,
as on a phone. It finds the model's sampling endpoint among the TFLite signatures
(`decode` of a VAE, `generate` of a GAN: both map latents z ~ N(0, I) to data), feeds it
NumPy noise drawn with `--seed`, and writes the outputs as a PNG: a grid of grayscale
images, or a scatter of 2-D points.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image, ImageDraw

# Endpoints that turn standard-normal latents into samples, by the name export gives them.
SAMPLING_ENDPOINTS = ("decode", "generate")


def load(path: str | os.PathLike) -> tuple[object, str, dict]:
    """The interpreter, the sampling endpoint's name and its one input's details."""
    interpreter = Interpreter(model_path=str(path))
    signatures = interpreter.get_signature_list()
    found = [name for name in SAMPLING_ENDPOINTS if name in signatures]
    if not found:
        raise ValueError(
            f"{path} has no sampling endpoint: expected one of {list(SAMPLING_ENDPOINTS)}, "
            f"found {sorted(signatures)}. Export a VAE or a GAN with `mp-keras export`."
        )
    runner = interpreter.get_signature_runner(found[0])
    (details,) = runner.get_input_details().values()
    return interpreter, found[0], details


def draw(path: str | os.PathLike, num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`num` latents z ~ N(0, I) from `np.random.default_rng(seed)`, and the samples."""
    if num < 1:
        raise ValueError(f"--num must be >= 1, got {num}.")
    interpreter, name, details = load(path)
    runner = interpreter.get_signature_runner(name)
    (input_name,) = runner.get_input_details()
    latent_dim = int(details["shape_signature"][-1])
    z = np.random.default_rng(seed).standard_normal((num, latent_dim)).astype(np.float32)
    (samples,) = runner(**{input_name: z}).values()
    return z, np.asarray(samples)


def to_png(samples: np.ndarray, path: str | os.PathLike, scale: int = 4) -> None:
    """A grid of images (values in [0, 1]) or, for `(num, 2)`, a scatter plot."""
    if samples.ndim == 2 and samples.shape[1] == 2:
        image = _scatter(samples)
    else:
        image = _grid(samples.reshape(len(samples), *samples.shape[1:3]), scale)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".tmp-{os.getpid()}.png")
    image.save(tmp)
    os.replace(tmp, path)  # never a half-written PNG


def _grid(images: np.ndarray, scale: int) -> Image.Image:
    num, height, width = images.shape
    cols = int(np.ceil(np.sqrt(num)))
    rows = int(np.ceil(num / cols))
    canvas = np.ones((rows * (height + 1) + 1, cols * (width + 1) + 1), np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        top, left = 1 + r * (height + 1), 1 + c * (width + 1)
        canvas[top : top + height, left : left + width] = np.clip(image, 0.0, 1.0)
    pixels = Image.fromarray((canvas * 255).round().astype(np.uint8), mode="L")
    return pixels.resize((pixels.width * scale, pixels.height * scale), Image.NEAREST)


def _scatter(points: np.ndarray, size: int = 400) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    pen = ImageDraw.Draw(image)
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.maximum(high - low, 1e-6)
    for x, y in (points - low) / span * (size - 20) + 10:
        pen.ellipse((x - 1.5, size - y - 1.5, x + 1.5, size - y + 1.5), fill="red")
    return image


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an exported model.tflite (VAE or GAN)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--num", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    args = parser.parse_args(argv)
    try:
        _, samples = draw(args.model, args.num, args.seed)
        to_png(samples, args.out)
    except (ValueError, OSError) as error:
        print(f"tflite_sample: error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {args.num} samples of shape {samples.shape[1:]} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
