"""Chapters 6.5-6.7 from the command line: recipes, conditional training, what
`mp-keras sample` writes for audio, pen strokes and tokens, users' waveform archives."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras import data, registry, training
from mp_keras.cli import main
from mp_keras.data import strokes
from mp_keras.data.audio import read_wav
from mp_keras.models import CVRNN, VRNN, Transformer, WaveNet

CHAPTER_6_5_7 = ("wavenet", "vrnn", "cvrnn", "transformer", "transformer_addition")


def test_recipes_are_registered_and_refuse_data_they_cannot_model():
    assert set(CHAPTER_6_5_7) <= set(registry.RECIPES)
    assert registry.get_recipe("cvrnn").kind == "conditional"
    digits = data.load("digits", "test", num_examples=4).info
    for name, message in [
        ("wavenet", "WaveNet models sequences of 256 mu-law classes"),
        ("vrnn", "VRNN models sequences"),
        ("transformer", "Transformer models token sequences"),
    ]:
        with pytest.raises(ValueError, match=message):
            registry.get_recipe(name).build(digits, 0)
    strokes = data.load("tones", "test", num_examples=4).info  # labelled, but not (T, F)
    with pytest.raises(ValueError, match="CVRNN models sequences"):
        registry.get_recipe("cvrnn").build(strokes, 0)
    tokens = registry.get_recipe("transformer_addition").build(
        data.load("addition", "test", num_examples=4).info, 0
    )
    assert tokens.vocabulary[-2:] == ("<end>", "<pad>")


@pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="command-line plumbing, the same on every backend; CVRNN training on JAX is in "
    "test_vrnn.py, and JAX's test stream is CI's longest",
)
def test_a_conditional_recipe_trains_on_labels_and_samples_each_class(tmp_path, monkeypatch):
    def tiny(info, seed):
        return CVRNN(
            info.shape[0],
            info.shape[1],
            num_classes=info.num_classes,
            latent_dim=2,
            units=8,
            hidden_units=(8,),
            seed=seed,
        )

    recipe = registry.get_recipe("cvrnn")
    fields = {**vars(recipe), "build": tiny, "epochs": 1, "batch_size": 32}
    monkeypatch.setitem(registry.RECIPES, "cvrnn", registry.Recipe(**fields))
    # The first 32 paths of each split: the metrics' 100 importance samples stay cheap.
    few = (lambda name, split, seed, num: strokes.load_strokes(split, num_examples=32), "")
    monkeypatch.setitem(strokes.DATASETS, "digit_strokes", few)
    metrics = training.train("cvrnn", tmp_path / "run", verbose=0)
    assert np.isfinite(metrics["loss"]) and "nll" in metrics and "bits_per_dim" in metrics
    assert (tmp_path / "run" / "samples.png").is_file()
    out = tmp_path / "drawn.png"
    model_file = str(tmp_path / "run" / "model.keras")
    assert main(["sample", model_file, "--num", "20", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(["evaluate", model_file, "--dataset", "digit_strokes"]) == 0


def test_sample_writes_wav_files_next_to_the_audio_figure(tmp_path):
    model = WaveNet(
        num_classes=256,
        residual_channels=4,
        dilation_channels=4,
        skip_channels=4,
        num_blocks=1,
        dilations_per_block=2,
        num_conditions=2,
        input_length=40,
        seed=0,
    )
    model.save(tmp_path / "wavenet.keras")
    drawn = training.sample(tmp_path / "wavenet.keras", tmp_path / "clips.png", num=3, seed=1)
    assert drawn.shape == (3, 40)
    assert (tmp_path / "clips.png").read_bytes()[:4] == b"\x89PNG"
    for i in range(3):
        waveform, rate = read_wav(tmp_path / f"clips_{i}.wav")
        assert waveform.shape == (40,) and rate == 8000
    assert not (tmp_path / "clips_3.wav").exists()


def test_sample_writes_decoded_strings_for_tokens_and_digits_for_strokes(tmp_path):
    words = ("a", "b", "c", "-")
    model = Transformer(
        vocab_size=4, max_length=5, embed_dim=8, num_heads=2, num_layers=1, vocabulary=words, seed=0
    )
    model.save(tmp_path / "tokens.keras")
    drawn = training.sample(tmp_path / "tokens.keras", tmp_path / "text.png", num=4)
    lines = (tmp_path / "text.txt").read_text(encoding="utf-8").splitlines()
    assert lines == ["".join(words[t] for t in row) for row in drawn]
    assert (tmp_path / "text.png").read_bytes()[:4] == b"\x89PNG"

    strokes = VRNN(6, 2, latent_dim=2, units=4, hidden_units=(4,), seed=0)
    strokes.save(tmp_path / "strokes.keras")
    drawn = training.sample(tmp_path / "strokes.keras", tmp_path / "strokes.png", num=4)
    assert drawn.shape == (4, 6, 2) and (tmp_path / "strokes.png").stat().st_size > 0


def test_users_waveforms_load_through_npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "clips.npz"
    waves = np.sin(np.linspace(0, 40, 100))[None] * rng.uniform(0.1, 0.9, (10, 1))
    np.savez(path, waveforms=waves.astype("float32"), labels=np.arange(10) % 2)
    train, test = (data.load(f"npz:{path}", split) for split in ("train", "test"))
    assert train.x.shape == (8, 100) and test.x.shape == (2, 100)
    assert train.x.min() >= 0 and train.x.max() <= 255 and train.info.num_classes == 2
    assert tuple(train.info.value_range) == (0.0, 255.0)
    model = registry.get_recipe("wavenet").build(train.info, 0)
    assert model.input_length == 100
    bad = tmp_path / "bad.npz"
    np.savez(bad, waveforms=np.full((2, 5), 3.0))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        data.load(f"npz:{bad}")
