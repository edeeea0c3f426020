"""Draw samples from an exported generative model with TFLite alone — the mobile path.

    python apps/tflite_sample.py runs/vae/export/model.tflite --out samples.png --num 64

Imports NumPy, `ai_edge_litert` and Pillow only: no Keras, TensorFlow, JAX or PyTorch,
as on a phone. It finds the model's sampling endpoint among the TFLite signatures
(`decode` of a VAE, `generate` of a GAN: both map latents z ~ N(0, I) to data), feeds it
NumPy noise drawn with `--seed`, and writes the outputs as a PNG: a grid of grayscale
images, or a scatter of 2-D points.

A diffusion model (`DDPM`) exports one reverse step, `denoise_step(x_t, t, noise)` ->
x_{t-1}; the loop of Algorithm 3 runs here, in NumPy: x_T ~ N(0, I), then T calls with
fresh noise, then x_0 is mapped back to the data range. T, the shape and the data range
come from the `metadata` of the `manifest.json` that `mp-keras export` writes next to
`model.tflite`; `--label` and `--guidance` drive a class-conditional model.

    python apps/tflite_sample.py runs/ddpm/export/model.tflite --out samples.png --num 16
"""

from __future__ import annotations

import argparse
import json
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
            f"found {sorted(signatures)}. Export a VAE, a GAN or a DDPM with `mp-keras export`."
        )
    runner = interpreter.get_signature_runner(found[0])
    (details,) = runner.get_input_details().values()
    return interpreter, found[0], details


def draw(
    path: str | os.PathLike,
    num: int,
    seed: int,
    label: int | None = None,
    guidance: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """`num` latents z ~ N(0, I) from `np.random.default_rng(seed)`, and the samples.

    For a diffusion model the "latents" are every draw of the loop, `(T + 1, num, *shape)`:
    x_T first, then the noise of steps T, ..., 1 (see `draw_diffusion`).
    """
    if num < 1:
        raise ValueError(f"--num must be >= 1, got {num}.")
    if DIFFUSION_ENDPOINT in Interpreter(model_path=str(path)).get_signature_list():
        return draw_diffusion(path, num, seed, label, guidance)
    interpreter, name, details = load(path)
    runner = interpreter.get_signature_runner(name)
    (input_name,) = runner.get_input_details()
    latent_dim = int(details["shape_signature"][-1])
    z = np.random.default_rng(seed).standard_normal((num, latent_dim)).astype(np.float32)
    (samples,) = runner(**{input_name: z}).values()
    return z, np.asarray(samples)


DIFFUSION_ENDPOINT = "denoise_step"


def read_metadata(path: str | os.PathLike) -> dict:
    """The `metadata` of the `manifest.json` next to an exported `model.tflite`."""
    manifest = os.path.join(os.path.dirname(os.path.abspath(path)), "manifest.json")
    try:
        with open(manifest, encoding="utf-8") as handle:
            metadata = json.load(handle).get("metadata") or {}
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{path} is a diffusion model: its loop needs {manifest} (written by `mp-keras "
            f"export` next to model.tflite), which could not be read ({error})."
        ) from error
    if "timesteps" not in metadata or "shape" not in metadata:
        raise ValueError(f"{manifest} has no diffusion metadata (timesteps, shape).")
    return metadata


def draw_diffusion(
    path: str | os.PathLike,
    num: int,
    seed: int,
    label: int | None = None,
    guidance: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 3 by looping the exported step: the draws `(T + 1, num, *shape)` and the
    samples in the data range. All draws come from `np.random.default_rng(seed)`."""
    metadata = read_metadata(path)
    steps, shape = int(metadata["timesteps"]), tuple(metadata["shape"])
    classes = metadata.get("num_classes")
    if classes and label is None:
        raise ValueError(f"this model is class-conditional: pass --label 0..{classes - 1}.")
    if label is not None and not classes:
        raise ValueError("this model is unconditional: it takes no --label.")
    if classes and not 0 <= label < classes:
        raise ValueError(f"--label must be in 0..{classes - 1}, got {label}.")
    runner = Interpreter(model_path=str(path)).get_signature_runner(DIFFUSION_ENDPOINT)
    draws = np.random.default_rng(seed).standard_normal((steps + 1, num, *shape))
    draws = draws.astype(np.float32)
    extra = {}
    if classes:
        extra = {
            "labels": np.full((num,), label, np.int32),
            "guidance": np.full((num,), guidance, np.float32),
        }
    x = draws[0]
    for t in range(steps, 0, -1):
        t_values = np.full((num,), t, np.int32)
        (x,) = runner(x_t=x, t=t_values, noise=draws[steps + 1 - t], **extra).values()
    if metadata.get("data_range") is not None:
        lo, hi = metadata["data_range"]
        x = np.clip(lo + (x + 1.0) / 2.0 * (hi - lo), lo, hi)
    return draws, np.asarray(x)


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
    parser.add_argument("model", help="an exported model.tflite (VAE, GAN or DDPM)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--num", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    parser.add_argument("--label", type=int, default=None, help="diffusion: class to draw")
    parser.add_argument("--guidance", type=float, default=0.0, help="diffusion: rho")
    args = parser.parse_args(argv)
    try:
        _, samples = draw(args.model, args.num, args.seed, args.label, args.guidance)
        to_png(samples, args.out)
    except (ValueError, OSError) as error:
        print(f"tflite_sample: error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {args.num} samples of shape {samples.shape[1:]} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
