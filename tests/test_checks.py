"""Bad input is answered at the boundary with a message saying what was expected.

Labels, ignored targets, direct calls and method arguments on every backend; and the
command line's one-line errors and exit codes (2 for usage errors, 1 for failures).
"""

from __future__ import annotations

import zipfile

import keras
import numpy as np
import pytest

from mp_keras import data, training
from mp_keras.cli import main
from mp_keras.models import GAN, MLP, VAE, SequenceTagger

X = np.random.default_rng(0).normal(size=(12, 4)).astype("float32")


@pytest.fixture(scope="module")
def mlp():
    model = MLP(input_shape=(4,), num_classes=3, hidden_units=(4,))
    model.compile()
    return model


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.full(12, 0.5), r"integer class indices as labels; got values such as \[0.5\]"),
        (
            np.arange(12) % 3 + 12,
            r"expects labels in \[0, 3\); got values such as \[12, 13, 14\]",
        ),
        (-np.ones(12, "int32"), r"in \[0, 3\); got values such as \[-1\]"),
        (np.zeros((12, 2), "int32"), r"labels of shape \(batch\) \(class indices\)"),
        (np.array(["a"] * 12), "integer labels; got dtype <U1"),
    ],
)
def test_labels_are_checked_in_fit_and_evaluate(mlp, labels, message):
    with pytest.raises(ValueError, match=message):
        mlp.fit(X, labels, verbose=0)
    with pytest.raises(ValueError, match=message):
        mlp.evaluate(X, labels, verbose=0)


def test_integer_valued_labels_and_datasets(mlp):
    mlp.fit(X, (np.arange(12) % 3).astype("float32"), verbose=0)  # 0., 1., 2. are labels
    mlp.fit(X, (np.arange(12) % 3)[:, None], verbose=0)  # (batch, 1) too
    bad = data.pipeline(X, np.full(12, 7, "int32"), batch_size=4)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        mlp.fit(bad, verbose=0)
    with pytest.raises(ValueError, match=r"got values such as \[9\]"):  # validation data too
        mlp.fit(X, np.arange(12) % 3, validation_data=(X, np.full(12, 9)), verbose=0)
    with pytest.raises(ValueError, match="trained on labelled data"):
        mlp.fit(X, verbose=0)


def test_targets_a_model_would_ignore_are_refused():
    gan = GAN(data_shape=(4,), latent_dim=2, generator_units=(4,), discriminator_units=(4,))
    gan.compile()
    with pytest.raises(ValueError, match=r"GAN learns from the inputs alone .* shape \(12,\)"):
        gan.fit(X, np.zeros(12), verbose=0)
    with pytest.raises(ValueError, match="ignore targets"):
        gan.fit(data.pipeline(X, np.zeros(12, "int32"), batch_size=4), verbose=0)
    vae = VAE(input_shape=(4,), latent_dim=2, hidden_units=(4,), likelihood="gaussian")
    vae.compile()
    with pytest.raises(ValueError, match="VAE learns from the inputs alone"):
        vae.fit(X, X, verbose=0)
    # GAN.predict takes noise, not data:
    assert gan.predict(np.zeros((3, 2), "float32"), verbose=0).shape == (3, 4)
    with pytest.raises(ValueError, match=r"noise of shape \(batch, 2\)"):
        gan.predict(X, verbose=0)


def test_direct_calls_check_numpy_inputs_like_predict():
    tagger = SequenceTagger(sequence_length=3, num_tokens=5, num_classes=2, units=4)
    ok = np.array([[0, 4, 1]], "float32")
    assert tuple(tagger(ok).shape) == (1, 3, 2)
    with pytest.raises(ValueError, match=r"integers in \[0, 5\); got values such as \[7.0\]"):
        tagger(np.array([[0, 7, 1]], "float32"))
    with pytest.raises(ValueError, match=r"integers in \[0, 5\)"):
        tagger.predict(np.array([[0, 7, 1]], "float32"), verbose=0)


@pytest.mark.parametrize("num", [-1, 0, 2.5, True, "3"])
def test_sample_needs_a_positive_count(num):
    vae = VAE(input_shape=(4,), latent_dim=2, hidden_units=(4,), seed=0)
    gan = GAN(data_shape=(4,), latent_dim=2, generator_units=(4,), discriminator_units=(4,))
    for model in (vae, gan):
        with pytest.raises(ValueError, match="num must be a positive integer"):
            model.sample(num)
    assert tuple(vae.sample(2.0).shape) == (2, 4)


# === The command line ===


@pytest.fixture(scope="module")
def trained_mlp(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp")
    training.train("mlp", out, epochs=1, verbose=0)
    return out / "model.keras"


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("mp-keras: error: ") and err.count("\n") == 1, err
    return err


def test_evaluate_refuses_labels_outside_the_classes(trained_mlp, tmp_path, capsys):
    npz = tmp_path / "labels15.npz"
    np.savez(npz, x=np.random.default_rng(0).random((20, 8, 8)), y=np.full(20, 15))
    assert main(["evaluate", str(trained_mlp), "--dataset", f"npz:{npz}"]) == 2
    assert "MLP has 10 classes and expects labels in [0, 10)" in _error(capsys)


def test_files_are_named_for_what_they_are_not(trained_mlp, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"\x00not a zip" * 100)
    assert main(["train", "mlp", "--dataset", f"npz:{corrupt}", "--out", str(tmp_path / "o")]) == 2
    assert "is not a valid .npz archive" in _error(capsys)
    fake = tmp_path / "model.keras"
    fake.write_text("hello")
    assert main(["sample", str(fake)]) == 2
    assert "is not a Keras .keras archive" in _error(capsys)
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("readme.txt", "not a model")
    assert main(["evaluate", str(tmp_path / "other.keras"), "--dataset", "digits"]) == 2
    assert "is not a Keras .keras archive (no `config.json`)" in _error(capsys)


def test_export_into_a_folder_that_is_not_an_export(trained_mlp, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["export", str(trained_mlp), "--out", str(tmp_path / "mine")]) == 2
    assert "does not hold an mp_keras export" in _error(capsys)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_exit_codes_debug_and_options_after_the_command(tmp_path, capsys, monkeypatch):
    assert main(["train", "nope", "--out", str(tmp_path)]) == 2
    assert "Unknown model 'nope'" in _error(capsys)
    with pytest.raises(ValueError, match="Unknown model"):
        main(["train", "nope", "--out", str(tmp_path), "--debug"])  # the traceback
    backend = keras.backend.backend()
    assert main(["list", "--backend", backend, "--debug"]) == 0
    with pytest.raises(SystemExit) as usage:
        main(["train"])
    assert usage.value.code == 2
    capsys.readouterr()

    def crash(*args, **kwargs):
        raise TypeError("something internal")

    monkeypatch.setattr(training, "train", crash)
    assert main(["train", "mlp", "--out", str(tmp_path)]) == 1
    assert "TypeError: something internal (run with --debug for the traceback)" in _error(capsys)
