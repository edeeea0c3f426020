"""Audio data of section 6.5: μ-law companding, the generated clips, WAV and npz files,
spectra, and the waveform/spectrogram figure."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mp_keras.data.audio import (
    CLIP_TYPES,
    DATASETS,
    audio_clips,
    generate_clips,
    load_audio_npz,
    log_spectrum,
    mu_law_decode,
    mu_law_encode,
    read_wav,
    spectrogram,
    write_wav,
)
from mp_keras.plots.audio import save_audio_figure


@pytest.mark.parametrize("classes", [256, 16])
def test_mu_law_round_trip_is_within_the_quantisation_step(classes):
    levels = mu_law_decode(np.arange(classes), classes).astype(np.float64)
    assert levels[0] == -1.0 and levels[-1] == 1.0 and np.all(np.diff(levels) > 0)
    assert int(mu_law_encode(0.0, classes)) == classes // 2  # silence: the middle class
    np.testing.assert_array_equal(mu_law_encode(levels, classes), np.arange(classes))
    x = np.linspace(-1.0, 1.0, 20001)
    c = mu_law_encode(x, classes)
    assert c.min() == 0 and c.max() == classes - 1 and np.all(np.diff(c) >= 0)  # monotone
    error = np.abs(mu_law_decode(c, classes) - x)
    # x lies between the neighbours of its level: the error is at most the local step,
    left = levels[c] - levels[np.maximum(c - 1, 0)]
    right = levels[np.minimum(c + 1, classes - 1)] - levels[c]
    assert np.all(error <= np.maximum(left, right) + 1e-6)
    # and at most half a step in the companded domain (the quantiser rounds there).
    mu = classes - 1
    companded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    assert np.abs((2.0 * c / mu - 1.0) - companded).max() <= 1.0 / mu + 1e-9
    # Small amplitudes get fine steps, loud ones coarse steps.
    steps = np.diff(levels)
    assert np.all(np.diff(steps[classes // 2 :]) > 0) and steps[-1] > 5 * steps[classes // 2]


def test_mu_law_refuses_bad_values():
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        mu_law_encode(np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="finite"):
        mu_law_encode(np.array([np.nan]))
    with pytest.raises(ValueError, match=r"integers in \[0, 256\)"):
        mu_law_decode(np.array([0, 256]))
    with pytest.raises(ValueError, match="classes must be an int >= 2"):
        mu_law_encode(0.0, classes=1)


def test_generated_clips_are_deterministic_labelled_and_in_range():
    train = audio_clips("train", num_examples=16)
    again = audio_clips("train", num_examples=16)
    test = audio_clips("test", num_examples=16)
    np.testing.assert_array_equal(train.waveforms, again.waveforms)
    assert train.waveforms.shape == (16, 4000) and train.waveforms.dtype == np.float32
    assert train.rate == 8000 and train.label_names == CLIP_TYPES
    assert np.bincount(train.labels, minlength=4).tolist() == [4, 4, 4, 4]
    assert np.abs(train.waveforms).max() <= 1.0 and np.abs(train.waveforms).max() > 0.2
    assert not np.allclose(train.waveforms, test.waveforms)
    assert not np.allclose(train.waveforms, audio_clips("train", seed=1, num_examples=16).waveforms)
    both = audio_clips("all", num_examples=20)
    assert both.waveforms.shape == (20, 4000)
    x, _ = generate_clips(4, seed=0, rate=16000, duration=0.25)
    assert x.shape == (4, 4000)
    with pytest.raises(ValueError, match="at least one sample"):
        generate_clips(2, duration=0.0)


def test_each_clip_type_sounds_like_its_name():
    clips = audio_clips("train", num_examples=32)
    x, y = clips.waveforms, clips.labels
    # 1,024-sample frames: 7.8 Hz bins, fine enough to separate a chord's notes.
    spectra = np.stack([spectrogram(w, 1024, 512).mean(axis=0) for w in x])  # (clips, bins)
    # Spectral flatness (geometric over arithmetic mean power): noise is flat, tones peaked.
    power = spectra**2 + 1e-12
    flatness = np.exp(np.log(power).mean(axis=1)) / power.mean(axis=1)
    noise, tone, chord = (y == CLIP_TYPES.index(k) for k in ("noise_burst", "tone", "chord"))
    assert flatness[noise].min() > 1e5 * flatness[~noise].max()

    # Peaks (bins above 10% of the highest): a tone has one, a chord three.
    def peaks(spectrum):
        above = spectrum > 0.1 * spectrum.max()
        return int((above[1:] & ~above[:-1]).sum())

    assert all(peaks(s) == 1 for s in spectra[tone])
    assert all(peaks(s) == 3 for s in spectra[chord])

    # A chirp's dominant frequency moves; a tone's stays put.
    def drift(w):
        frames = spectrogram(w)
        return abs(int(frames[:8].mean(0).argmax()) - int(frames[-8:].mean(0).argmax()))

    chirp = y == CLIP_TYPES.index("chirp")
    assert np.median([drift(w) for w in x[chirp]]) > 3 and max(drift(w) for w in x[tone]) <= 1
    # Every clip starts from silence, peaks within 100 ms (the attack), then decays.
    energy = np.abs(x).reshape(len(x), 40, 100).mean(axis=2)  # 40 blocks of 12.5 ms
    assert np.all(x[:, 0] == 0) and np.all(energy.argmax(axis=1) < 8)
    assert np.all(energy[:, -1] < 0.5 * energy.max(axis=1))


def test_wav_round_trip_is_16_bit_exact_and_atomic(tmp_path):
    x = audio_clips("test", num_examples=1).waveforms[0]
    path = write_wav(tmp_path / "clip.wav", x, rate=8000)
    back, rate = read_wav(path)
    assert rate == 8000 and back.shape == x.shape
    assert np.abs(back - x).max() <= 0.5 / 32767 + 1e-7
    assert [p.name for p in tmp_path.iterdir()] == ["clip.wav"]  # no temporary left
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        write_wav(tmp_path / "loud.wav", np.full(10, 1.5))
    with pytest.raises(ValueError, match=r"shape \(time,\)"):
        write_wav(tmp_path / "stereo.wav", np.zeros((10, 2)))
    assert not (tmp_path / "loud.wav").exists()


def test_npz_loader_reads_amplitudes_or_classes_and_names_what_is_wrong(tmp_path):
    x = audio_clips("test", num_examples=4).waveforms
    np.savez(tmp_path / "floats.npz", waveforms=x, labels=np.array([0, 1, 1, 0]), rate=8000)
    clips = load_audio_npz(tmp_path / "floats.npz")
    np.testing.assert_array_equal(clips.waveforms, x)
    assert clips.labels.tolist() == [0, 1, 1, 0] and clips.rate == 8000
    classes = mu_law_encode(x)
    np.savez(tmp_path / "classes.npz", waveforms=classes)
    decoded = load_audio_npz(tmp_path / "classes.npz")
    np.testing.assert_array_equal(decoded.classes(), classes)  # the same classes back
    assert decoded.labels is None
    bad = {
        "rank": (dict(waveforms=x[0]), r"rank 2, shape \(N, T\)"),
        "nan": (dict(waveforms=np.full((2, 5), np.nan)), "finite"),
        "loud": (dict(waveforms=2 * x), r"in \[-1, 1\]"),
        "classes": (dict(waveforms=np.full((2, 5), 300)), r"integers in \[0, 256\)"),
        "labels": (dict(waveforms=x, labels=np.array([0, 1])), r"shape \(4,\)"),
        "negative": (dict(waveforms=x, labels=np.array([0, -1, 0, 0])), "non-negative"),
        "key": (dict(audio=x), "'waveforms'"),
    }
    for name, (arrays, message) in bad.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(ValueError, match=message):
            load_audio_npz(tmp_path / f"{name}.npz")
    with pytest.raises(FileNotFoundError):
        load_audio_npz(tmp_path / "missing.npz")


def test_dataset_entry_serves_mu_law_classes_with_clip_labels():
    loader, description = DATASETS["tones"]
    ds = loader("tones", "test", 0, 8)
    assert ds.x.shape == (8, 4000) and ds.x.dtype == np.float32
    np.testing.assert_array_equal(ds.x, audio_clips("test", num_examples=8).classes())
    assert ds.info.num_classes == 4 and ds.info.value_range == (0.0, 255.0)
    assert ds.y.tolist() == audio_clips("test", num_examples=8).labels.tolist()
    assert "μ-law" in description


def test_spectra_peak_at_the_frequency_played():
    rate, frame = 8000, 256
    t = np.arange(2000) / rate
    bin_ = 20  # 20 * rate / frame = 625 Hz
    sine = 0.5 * np.sin(2 * np.pi * bin_ * rate / frame * t)
    assert spectrogram(sine, frame).mean(axis=0).argmax() == bin_
    features = log_spectrum(np.stack([sine, 0.1 * sine]))
    assert features.shape == (2, frame // 2 + 1, 1) and features[0, :, 0].argmax() == bin_
    assert features[0, bin_, 0] > features[1, bin_, 0]
    # A sweep from 1 kHz up: its second half peaks at a higher frequency than its first.
    sweep = 0.5 * np.sin(2 * np.pi * (1000 * t + 500 * t**2 / t[-1]))
    halves = log_spectrum(sweep[None], parts=2)[0]  # (bins, 2)
    assert halves[:, 1].argmax() > halves[:, 0].argmax() + 5


def test_audio_figure_has_one_row_per_clip(tmp_path):
    clips = audio_clips("test", num_examples=3, duration=0.1)
    save_audio_figure(clips.waveforms[:1], tmp_path / "one.png", titles=["a"])
    save_audio_figure(clips.waveforms, tmp_path / "three.png", rate=clips.rate)
    one, three = (Image.open(tmp_path / name) for name in ("one.png", "three.png"))
    assert one.width == three.width and three.height > 2 * one.height
    assert np.asarray(three.convert("L")).std() > 10  # something is drawn
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.png", "three.png"]
    with pytest.raises(ValueError, match="titles"):
        save_audio_figure(clips.waveforms, tmp_path / "bad.png", titles=["a"])
