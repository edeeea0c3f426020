"""Audio for WaveNet (notes, section 6.5): generated clips, μ-law companding, WAV files.

* :func:`audio_clips` generates a deterministic labelled dataset of short mono clips
  (8 kHz, 0.5 s by default), one class per kind of sound (:data:`CLIP_TYPES`): a sine
  ``tone``, a major ``chord``, a linear ``chirp`` and a ``noise_burst``, each shaped by an
  attack/decay envelope, with random pitch, amplitude and envelope per clip.
* :func:`mu_law_encode` / :func:`mu_law_decode`: WaveNet models 8-bit μ-law classes, not
  raw amplitudes (van den Oord et al. 2016, section 2.2): f(x) = sign(x) ln(1 + μ|x|) /
  ln(1 + μ) with μ = classes - 1, then uniform quantisation of f(x) in [-1, 1]. Silence
  (x = 0) is the middle class, ``classes // 2``.
* :func:`write_wav` / :func:`read_wav`: 16-bit PCM mono files through Python's ``wave``
  module (written atomically through :mod:`mp_keras.io`).
* :func:`load_audio_npz`: a user's clips from an ``.npz`` archive;
  :func:`load_waveform_dataset` is what ``load("npz:PATH")`` returns for one.
* :func:`log_spectrum` / :func:`spectrogram`: short-time Fourier features, for the figures
  and for the small classifier that checks a conditional model's samples.

:data:`DATASETS` describes them to ``mp_keras.data.load`` as ``"tones"``: μ-law classes
(float32 ids, the convention of the token datasets) with the clip type as label.

Example:
    >>> clips = audio_clips("test", num_examples=4)
    >>> clips.waveforms.shape, clips.labels.tolist(), clips.rate
    ((4, 4000), [0, 3, 2, 1], 8000)
    >>> int(mu_law_encode(0.0)), bool(abs(mu_law_decode(128)) < 1e-4)  # silence
    (128, True)
"""

from __future__ import annotations

import dataclasses
import io as _io
import os
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mp_keras.data.embedded import (
    Dataset,
    check_num_examples,
    check_split,
    make_dataset,
    split_seed,
)
from mp_keras.data.files import holdout_indices, npz_keys

CLIP_TYPES: tuple[str, ...] = ("tone", "chord", "chirp", "noise_burst")
MU_LAW_CLASSES = 256
DEFAULT_RATE = 8000
DEFAULT_DURATION = 0.5  # seconds
# Clips per split unless num_examples says otherwise: small enough to train a tiny
# WaveNet on a CPU in minutes (256 clips of 4,000 samples = 1M samples per epoch).
AUDIO_SPLIT_SIZES: dict[str, int] = {"train": 256, "test": 64}


@dataclasses.dataclass(frozen=True, eq=False)
class AudioClips:
    """Mono clips of equal length and their labels.

    Attributes:
        waveforms: float32 ``(N, T)`` amplitudes in [-1, 1].
        labels: int32 ``(N,)`` class of each clip, or ``None``.
        rate: int. Samples per second.
        label_names: names of the classes (empty when unknown).
    """

    waveforms: np.ndarray
    labels: np.ndarray | None
    rate: int
    label_names: tuple[str, ...] = ()

    def classes(self, classes: int = MU_LAW_CLASSES) -> np.ndarray:
        """The waveforms as μ-law classes, int32 ``(N, T)``: what WaveNet models."""
        return mu_law_encode(self.waveforms, classes)


# --------------------------------------------------------------------------- μ-law


def _check_classes(classes: int) -> int:
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 2:
        raise ValueError(f"classes must be an int >= 2, got {classes!r}.")
    return int(classes)


def _check_amplitudes(x: np.ndarray, what: str = "waveforms") -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{what} must be real numbers in [-1, 1]; got dtype {x.dtype}.")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"{what} must be finite amplitudes in [-1, 1]; got {bad} NaN or inf.")
    if x.size and (x.min() < -1.0 or x.max() > 1.0):
        raise ValueError(
            f"{what} must be amplitudes in [-1, 1]; got values in [{x.min():.4g}, "
            f"{x.max():.4g}]. Scale the audio (e.g. divide 16-bit PCM by 32768)."
        )
    return x


def mu_law_encode(x: np.ndarray | float, classes: int = MU_LAW_CLASSES) -> np.ndarray:
    """Amplitudes in [-1, 1] to μ-law classes ``0 .. classes - 1`` (int32, same shape).

    Example:
        >>> mu_law_encode(np.array([-1.0, 0.0, 1.0])).tolist()
        [0, 128, 255]
    """
    classes = _check_classes(classes)
    x = _check_amplitudes(x)
    mu = classes - 1
    companded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)  # in [-1, 1]
    return np.floor((companded + 1.0) / 2.0 * mu + 0.5).astype(np.int32)


def mu_law_decode(c: np.ndarray | int, classes: int = MU_LAW_CLASSES) -> np.ndarray:
    """μ-law classes back to amplitudes in [-1, 1] (float32, same shape).

    Example:
        >>> mu_law_decode(np.array([0, 255])).tolist()
        [-1.0, 1.0]
    """
    classes = _check_classes(classes)
    c = np.asarray(c)
    if not np.issubdtype(c.dtype, np.number) or (
        not np.issubdtype(c.dtype, np.integer) and not np.all(c == np.round(c))
    ):
        raise ValueError(f"μ-law classes must be integers in [0, {classes}); got dtype {c.dtype}.")
    if c.size and (c.min() < 0 or c.max() >= classes):
        raise ValueError(
            f"μ-law classes must be integers in [0, {classes}); got values in "
            f"[{c.min()}, {c.max()}]."
        )
    mu = classes - 1
    companded = 2.0 * c.astype(np.float64) / mu - 1.0
    return (np.sign(companded) * np.expm1(np.abs(companded) * np.log1p(mu)) / mu).astype(np.float32)


# --------------------------------------------------------------------------- clips


def _envelope(n: int, rate: int, rng: np.random.Generator, fast: bool) -> np.ndarray:
    """A linear attack followed by an exponential decay, peak 1."""
    t = np.arange(n) / rate
    attack = rng.uniform(0.002, 0.01) if fast else rng.uniform(0.01, 0.06)
    decay = rng.uniform(0.03, 0.08) if fast else rng.uniform(0.1, 0.4)
    rise = np.clip(t / attack, 0.0, 1.0)
    return rise * np.exp(-np.maximum(t - attack, 0.0) / decay)


def _clip(kind: str, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / rate
    f = rng.uniform(200.0, 800.0)  # well below the Nyquist frequency of 8 kHz audio
    phase = rng.uniform(0.0, 2 * np.pi)
    if kind == "tone":
        wave_ = np.sin(2 * np.pi * f * t + phase)
    elif kind == "chord":  # a major triad: frequency ratios 4 : 5 : 6
        wave_ = sum(np.sin(2 * np.pi * f * r * t + phase * r) for r in (1.0, 1.25, 1.5)) / 3
    elif kind == "chirp":  # a linear sweep from f to between f / 2 and 2 f
        f1 = f * 2.0 ** rng.uniform(-1.0, 1.0)
        duration = n / rate
        wave_ = np.sin(2 * np.pi * (f * t + (f1 - f) * t**2 / (2 * duration)) + phase)
    else:  # noise_burst: white noise smoothed by a short moving average, fast decay
        noise = rng.normal(size=n + 3)
        wave_ = np.convolve(noise, np.ones(4) / 4, mode="valid")[:n] * 1.5
    amplitude = rng.uniform(0.3, 0.9)
    return np.clip(amplitude * _envelope(n, rate, rng, fast=kind == "noise_burst") * wave_, -1, 1)


def generate_clips(
    num: int, seed: int = 0, rate: int = DEFAULT_RATE, duration: float = DEFAULT_DURATION
) -> tuple[np.ndarray, np.ndarray]:
    """`num` clips (float32 ``(num, T)`` in [-1, 1]) and labels (int32, balanced classes).

    The same arguments give the same clips.

    Example:
        >>> x, y = generate_clips(8, seed=1, duration=0.1)
        >>> x.shape, sorted(y.tolist()), bool(np.abs(x).max() <= 1.0)
        ((8, 800), [0, 0, 1, 1, 2, 2, 3, 3], True)
    """
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 0:
        raise ValueError(f"num must be a non-negative int, got {num!r}.")
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate < 1:
        raise ValueError(f"rate must be a positive int (samples per second), got {rate!r}.")
    length = round(float(duration) * rate)
    if length < 1:
        raise ValueError(
            f"duration must give at least one sample; got {duration!r} s at {rate} Hz."
        )
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num) % len(CLIP_TYPES)).astype(np.int32)
    waveforms = np.stack(
        [_clip(CLIP_TYPES[k], length, rate, rng) for k in labels] if num else np.zeros((0, length))
    )
    return waveforms.astype(np.float32), labels


def audio_clips(
    split: str = "train",
    *,
    seed: int = 0,
    num_examples: int | None = None,
    rate: int = DEFAULT_RATE,
    duration: float = DEFAULT_DURATION,
) -> AudioClips:
    """A split of the generated clips: train and test come from independent streams.

    ``"all"`` is the train split followed by the test split (with ``num_examples``, a
    4 : 1 division of that many clips).
    """
    check_split(split)
    check_num_examples(num_examples)
    if split == "all":
        total = sum(AUDIO_SPLIT_SIZES.values()) if num_examples is None else num_examples
        counts = {"train": total - total // 5, "test": total // 5}
    else:
        counts = {split: AUDIO_SPLIT_SIZES[split] if num_examples is None else num_examples}
    parts = [
        generate_clips(n, split_seed(seed, part), rate, duration) for part, n in counts.items()
    ]
    waveforms = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return AudioClips(waveforms, labels, int(rate), CLIP_TYPES)


def _load(name: str, split: str, seed: int, num_examples: int | None) -> Dataset:
    clips = audio_clips(split, seed=seed, num_examples=num_examples)
    return make_dataset(
        name,
        clips.classes(MU_LAW_CLASSES),
        clips.labels,
        num_classes=len(CLIP_TYPES),
        value_range=(0.0, float(MU_LAW_CLASSES - 1)),
        binary=False,
        description=DATASETS[name][1],
    )


# name -> (loader(name, split, seed, num_examples) -> Dataset, one-line description)
DATASETS: dict[str, tuple[Callable[[str, str, int, int | None], Dataset], str]] = {
    "tones": (
        _load,
        f"Generated {DEFAULT_RATE // 1000} kHz clips of {DEFAULT_DURATION} s (tone, chord, "
        "chirp, noise burst) as 256 μ-law classes, label = clip type; 256 train / 64 test.",
    ),
}


# --------------------------------------------------------------------------- files


def _check_rate(rate: int) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate < 1:
        raise ValueError(f"rate must be a positive int (samples per second), got {rate!r}.")
    return int(rate)


def write_wav(path: str | os.PathLike, waveform: np.ndarray, rate: int = DEFAULT_RATE) -> Path:
    """Writes one mono clip (amplitudes in [-1, 1], shape ``(T,)``) as 16-bit PCM WAV.

    The file appears complete or not at all (temporary name, then rename).
    """
    from mp_keras.io import write_bytes

    rate = _check_rate(rate)
    x = np.asarray(waveform)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(
            f"write_wav expects one mono waveform of shape (time,); got shape {x.shape}."
        )
    x = _check_amplitudes(x, "waveform")
    pcm = np.round(x * 32767.0).astype("<i2")
    buffer = _io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return write_bytes(path, buffer.getvalue())


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A 16-bit PCM mono WAV file as float32 amplitudes in [-1, 1], and its rate."""
    with wave.open(str(path), "rb") as source:
        if source.getnchannels() != 1 or source.getsampwidth() != 2:
            raise ValueError(
                f"{path}: expected 16-bit mono PCM; got {source.getnchannels()} channels of "
                f"{8 * source.getsampwidth()} bits."
            )
        frames = source.readframes(source.getnframes())
        rate = source.getframerate()
    return (np.frombuffer(frames, "<i2").astype(np.float32) / 32767.0), rate


def load_audio_npz(path: str | os.PathLike, classes: int = MU_LAW_CLASSES) -> AudioClips:
    """Clips from a user's ``.npz`` archive.

    Keys: ``waveforms``, ``(N, T)``, either float amplitudes in [-1, 1] or integer μ-law
    classes in ``[0, classes)`` (decoded to amplitudes); optional ``labels`` ``(N,)``,
    non-negative integers; optional ``rate`` (samples per second, default 8,000).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a key is missing, or the arrays have the wrong rank, non-finite or
            out-of-range values; the message says what was expected.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such audio archive: {path}")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    if "waveforms" not in arrays:
        raise ValueError(
            f"{path}: expected a key 'waveforms' with an (N, T) array; found keys {sorted(arrays)}."
        )
    x = arrays["waveforms"]
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(
            f"{path}: 'waveforms' must have rank 2, shape (N, T) (one clip per row); got "
            f"shape {x.shape}."
        )
    if np.issubdtype(x.dtype, np.integer):
        waveforms = mu_law_decode(x, classes)
    else:
        waveforms = _check_amplitudes(x, f"{path}: 'waveforms'").astype(np.float32)
    labels = None
    if "labels" in arrays:
        y = arrays["labels"]
        if y.shape != (len(x),):
            raise ValueError(f"{path}: 'labels' must have shape ({len(x)},); got {y.shape}.")
        if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)):
            raise ValueError(f"{path}: 'labels' must be finite integers.")
        if np.any(y != np.round(y)) or (y.size and y.min() < 0):
            raise ValueError(f"{path}: 'labels' must be non-negative integers (class indices).")
        labels = y.astype(np.int32)
    rate = _check_rate(int(arrays["rate"])) if "rate" in arrays else DEFAULT_RATE
    return AudioClips(waveforms, labels, rate)


def is_waveform_archive(path: str | os.PathLike) -> bool:
    """Whether `path` is an ``.npz`` with a ``waveforms`` key (see :func:`load_audio_npz`).

    Example:
    >>> is_waveform_archive("/no/such/file.npz")
    False
    """
    return "waveforms" in npz_keys(path)


def load_waveform_dataset(
    path: str | os.PathLike, split: str = "train", *, num_examples: int | None = None
) -> Dataset:
    """A user's clips (:func:`load_audio_npz`) as a dataset of μ-law classes.

    What ``mp_keras.data.load("npz:PATH")`` returns for an archive with ``waveforms``:
    the same layout as ``"tones"`` (float32 class ids 0..255, labels if given), the
    clips divided 80/20 into train and test by ``holdout_indices``.
    """
    check_split(split)
    check_num_examples(num_examples)
    clips = load_audio_npz(path)
    index = holdout_indices(len(clips.waveforms), split)[:num_examples]
    labels = None if clips.labels is None else clips.labels[index]
    return make_dataset(
        f"npz:{path}",
        clips.classes(MU_LAW_CLASSES)[index],
        labels,
        num_classes=None if labels is None else int(clips.labels.max()) + 1,
        value_range=(0.0, float(MU_LAW_CLASSES - 1)),
        binary=False,
        description=f"Waveforms of {path} at {clips.rate} Hz as 256 μ-law classes.",
    )


# --------------------------------------------------------------------------- spectra


def spectrogram(waveform: np.ndarray, frame: int = 256, hop: int = 128) -> np.ndarray:
    """Magnitude short-time Fourier transform, ``(frames, frame // 2 + 1)``, Hann window.

    Example:
        >>> spectrogram(np.zeros(1000)).shape
        (6, 129)
    """
    x = np.asarray(waveform, dtype=np.float64)
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    starts = np.arange(0, len(x) - frame + 1, hop)
    frames = np.stack([x[s : s + frame] for s in starts]) * np.hanning(frame)
    return np.abs(np.fft.rfft(frames, axis=-1))


def log_spectrum(
    waveforms: np.ndarray, frame: int = 256, hop: int = 128, parts: int = 1
) -> np.ndarray:
    """Per clip and per part (consecutive stretches of equal length), log(1 + mean
    magnitude spectrum): float32 ``(N, frame // 2 + 1, parts)``, frequencies by channels.

    One part is a pitch-and-timbre summary that ignores timing; two parts also show a
    sweep (the dominant frequency moves from the first part to the second).
    """
    x = np.asarray(waveforms)
    if x.ndim != 2:
        raise ValueError(f"log_spectrum expects waveforms of shape (N, T); got {x.shape}.")
    if isinstance(parts, bool) or not isinstance(parts, (int, np.integer)) or parts < 1:
        raise ValueError(f"parts must be a positive int, got {parts!r}.")
    features = []
    for w in x:
        frames = spectrogram(w, frame, hop)  # (frames, bins)
        pieces = np.array_split(frames, parts) if len(frames) >= parts else [frames] * parts
        features.append(np.stack([np.log1p(p.mean(axis=0)) for p in pieces], axis=-1))
    return np.stack(features).astype(np.float32)
