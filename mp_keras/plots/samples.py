"""Samples of any generative model, drawn and written in the form that fits the model.

`draw_samples` asks a model for samples (a conditional model for each of its classes in
turn); `save_samples` writes them: images as a grid, 2-D points as a scatter plot, pen
strokes (VRNN) rendered as digits, audio (WaveNet) as a waveform/spectrogram PNG plus
one `.wav` per clip, token sequences (Transformer) as a PNG and a `.txt` of the decoded
strings. `mp-keras sample` and the figure of `mp-keras train` both use them. Audio is
written at `mp_keras.data.audio.DEFAULT_RATE` (8 kHz, the rate of the `tones` clips).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mp_keras import io

AUDIO_FIGURE_CLIPS = 8  # clips drawn in the PNG; every clip gets its .wav
TEXT_FIGURE_LINES = 32


def num_conditions(model: Any) -> int | None:
    """Classes a conditional model is conditioned on (`None` if unconditional)."""
    if not getattr(model, "is_conditional", False):
        return None
    return int(getattr(model, "num_conditions", None) or model.num_classes)


def draw_samples(model: Any, num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """`num` samples of `model` as NumPy, and the labels they were drawn for (or None).

    A conditional model draws its classes in turn: 0, 1, ..., 0, 1, ...; a
    text-conditioned one (with `figure_prompts()`) its prompts in turn, which are then
    returned as the labels.
    """
    import keras

    if hasattr(model, "figure_prompts"):
        prompts = list(model.figure_prompts())
        chosen = [prompts[i % len(prompts)] for i in range(num)]
        drawn = model.sample(num, seed, prompt=chosen)
        return np.asarray(keras.ops.convert_to_numpy(drawn)), np.asarray(chosen)
    classes = num_conditions(model)
    if classes is None:
        return np.asarray(keras.ops.convert_to_numpy(model.sample(num, seed))), None
    labels = np.arange(num) % classes
    drawn = model.sample(num, seed, condition=labels)
    return np.asarray(keras.ops.convert_to_numpy(drawn)), labels


def save_samples(
    model: Any,
    samples: np.ndarray,
    path: str | os.PathLike,
    labels: np.ndarray | None = None,
    data: np.ndarray | None = None,
) -> list[Path]:
    """Writes `samples` of `model` to `path` (a PNG) and, for audio and text, next to it.

    Args:
        model: the model that drew them (decides the form).
        samples: what `model.sample` returned, as NumPy.
        path: the PNG to write; `.wav` files are `<stem>_<i>.wav` and the text
            `<stem>.txt`, in the same folder.
        labels: the class each sample was drawn for, or None.
        data: real examples, drawn behind 2-D samples. Defaults to `None`.

    Returns:
        The files written, the PNG first.
    """
    from mp_keras.plots import save_image_grid, save_scatter

    path = Path(path)
    name = type(model).__name__
    if labels is None:
        titles = None
    elif np.asarray(labels).dtype.kind in "US":  # prompts of a text-conditioned model
        titles = [str(k) for k in labels]
    else:
        titles = [f"class {int(k)}" for k in labels]
    if hasattr(model, "queue_shapes"):  # WaveNet: mu-law classes
        return _save_audio(model, samples, path, titles)
    if hasattr(model, "vocabulary") and not model.images:  # Transformer: token ids
        return _save_text(model.decode(samples), path, titles, f"{name} samples")
    if samples.ndim == 3 and samples.shape[-1] == 2:  # pen strokes (VRNN)
        from mp_keras.data.strokes import render_strokes

        samples = render_strokes(samples)
    if samples.ndim == 2 and samples.shape[1] == 2:
        save_scatter(samples, path, data=data, title=f"{name}: {len(samples)} samples")
        return [path]
    if labels is not None:  # one row per class
        rows = {f"class {k}": samples[labels == k] for k in dict.fromkeys(labels.tolist())}
    else:
        cols = int(np.ceil(np.sqrt(len(samples))))
        rows = {f"{i}": samples[i * cols : (i + 1) * cols] for i in range(-(-len(samples) // cols))}
    save_image_grid(rows, path)
    return [path]


def _save_audio(
    model: Any, classes: np.ndarray, path: Path, titles: list[str] | None
) -> list[Path]:
    from mp_keras.data.audio import DEFAULT_RATE, mu_law_decode, write_wav
    from mp_keras.plots.audio import save_audio_figure

    waveforms = mu_law_decode(classes.astype("int64"), model.num_classes)
    rate = DEFAULT_RATE
    shown = slice(0, AUDIO_FIGURE_CLIPS)
    save_audio_figure(waveforms[shown], path, rate=rate, titles=titles and titles[shown])
    wavs = [
        write_wav(path.with_name(f"{path.stem}_{i}.wav"), clip, rate)
        for i, clip in enumerate(waveforms)
    ]
    return [path, *wavs]


def _save_text(lines: list[str], path: Path, titles: list[str] | None, title: str) -> list[Path]:
    from mp_keras.plots import _pyplot, write_figure

    if titles is not None:
        lines = [f"{t}: {line}" for t, line in zip(titles, lines)]
    text = path.with_suffix(".txt")
    io.write_text(text, "\n".join(lines) + "\n")
    shown = lines[:TEXT_FIGURE_LINES]
    plt = _pyplot()
    fig = plt.figure(figsize=(8.0, 0.25 * len(shown) + 0.8))
    fig.suptitle(title, fontsize=10)
    fig.text(
        0.02,
        0.95 - 0.5 / (len(shown) + 2),
        "\n".join(shown),
        family="monospace",
        fontsize=8,
        va="top",
    )
    write_figure(fig, path)
    return [path, text]
