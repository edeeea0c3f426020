"""Figures of section 6.5: waveforms and spectrograms of audio clips (real or sampled)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from mp_keras.plots import _pyplot, write_figure


def save_audio_figure(
    waveforms: np.ndarray,
    path: str | os.PathLike,
    rate: int = 8000,
    titles: Sequence[str] | None = None,
    frame: int = 256,
    hop: int = 64,
) -> None:
    """One row per clip: the waveform (amplitude against seconds) and its spectrogram.

    The spectrogram is the log magnitude of a Hann-windowed short-time Fourier
    transform (`mp_keras.data.audio.spectrogram`), frequencies up to rate / 2.

    Args:
        waveforms: float array `(clips, time)` of amplitudes in [-1, 1].
        path: where to write the PNG.
        rate: int. Samples per second. Defaults to `8000`.
        titles: one title per clip (e.g. its label), or None. Defaults to `None`.
        frame: int. STFT window length. Defaults to `256`.
        hop: int. STFT hop length. Defaults to `64`.
    """
    from mp_keras.data.audio import spectrogram

    x = np.asarray(waveforms, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or not len(x):
        raise ValueError(f"save_audio_figure expects waveforms (clips, time); got {x.shape}.")
    if titles is not None and len(titles) != len(x):
        raise ValueError(f"Got {len(titles)} titles for {len(x)} clips.")
    plt = _pyplot()
    fig, axes = plt.subplots(len(x), 2, figsize=(9.0, 1.6 * len(x) + 0.4), squeeze=False)
    seconds = np.arange(x.shape[1]) / rate
    for i, (wave_ax, spec_ax) in enumerate(axes):
        wave_ax.plot(seconds, x[i], linewidth=0.5, color="tab:blue")
        wave_ax.set_ylim(-1.05, 1.05)
        wave_ax.set_xlim(0, seconds[-1] if len(seconds) > 1 else 1.0 / rate)
        wave_ax.set_ylabel(titles[i] if titles is not None else f"clip {i}", fontsize=8)
        spec = np.log1p(spectrogram(x[i], frame, hop)).T  # (frequencies, frames)
        extent = (0.0, x.shape[1] / rate, 0.0, rate / 2000.0)
        spec_ax.imshow(spec, origin="lower", aspect="auto", extent=extent, cmap="magma")
        spec_ax.set_ylabel("kHz", fontsize=8)
        for ax in (wave_ax, spec_ax):
            ax.tick_params(labelsize=7)
            if i < len(x) - 1:
                ax.set_xticklabels([])
    axes[0, 0].set_title("waveform", fontsize=9)
    axes[0, 1].set_title("spectrogram (log magnitude)", fontsize=9)
    axes[-1, 0].set_xlabel("seconds", fontsize=8)
    axes[-1, 1].set_xlabel("seconds", fontsize=8)
    fig.tight_layout()
    write_figure(fig, path)
