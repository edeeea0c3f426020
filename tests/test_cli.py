"""The `mp-keras` command and `mp_keras.training`: artifacts, resume, evaluate, sample."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from mp_keras import training
from mp_keras.cli import main
from tests.harness import REPO, run_python


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("mlp", "vae", "gan", "digits_binarized", "ring", "tfds:"):
        assert name in out


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    assert main(["train", "vae", "--epochs", "3", "--out", str(out), "--seed", "1"]) == 0
    return out


def test_train_writes_the_artifacts(trained_vae):
    for name in ("model.keras", "metrics.json", "samples.png"):
        assert (trained_vae / name).is_file(), name
    assert any((trained_vae / "logs").rglob("*tfevents*"))
    assert not (trained_vae / ".run").exists()  # checkpoints removed after a finished run
    metrics = json.loads((trained_vae / "metrics.json").read_text())
    assert metrics["backend"] == keras.backend.backend()
    assert metrics["loss"] == pytest.approx(-metrics["elbo"], rel=1e-5)
    assert len(metrics["history"]["loss"]) == 3


def test_evaluate_and_sample(trained_vae, tmp_path, capsys):
    assert (
        main(["evaluate", str(trained_vae / "model.keras"), "--dataset", "digits_binarized"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert {"loss", "elbo", "kl", "reconstruction"} <= set(result)
    png = tmp_path / "s.png"
    assert main(["sample", str(trained_vae / "model.keras"), "--num", "9", "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_classifier_metrics_have_accuracy(tmp_path):
    metrics = training.train("mlp", tmp_path, epochs=2, verbose=0)
    assert 0 <= metrics["accuracy"] <= 1 and "loss" in metrics
    assert (tmp_path / "predictions.png").is_file()


def test_errors_are_clear(tmp_path, capsys):
    assert main(["train", "nope", "--out", str(tmp_path)]) == 2
    assert "Unknown model 'nope'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="nope"):
        training.train("vae", tmp_path / "x", dataset="nope", epochs=1, verbose=0)
    assert not (tmp_path / "x" / "model.keras").exists()
    assert main(["sample", str(tmp_path / "missing.keras")]) == 2
    assert "Model file not found" in capsys.readouterr().err


def test_backend_flag_selects_the_backend():
    other = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}[keras.backend.backend()]
    code = (
        "import sys; from mp_keras.cli import main; "
        f"sys.argv = ['mp-keras', '--backend', '{other}', 'list']; main(sys.argv[1:]); "
        "import keras; print('BACKEND', keras.backend.backend())"
    )
    assert f"BACKEND {other}" in run_python(code, backend="tensorflow")


def test_pretrained_vae_in_repo_samples(tmp_path):
    path = REPO / "saved_models" / "vae_digits" / "model.keras"
    png = tmp_path / "pretrained.png"
    assert main(["sample", str(path), "--num", "16", "--out", str(png)]) == 0
    samples = training.sample(path, png, num=16, seed=3)
    assert samples.shape == (16, 8, 8, 1) and np.isfinite(samples).all()


def test_chapter_tools(tmp_path, capsys):
    flow = tmp_path / "flow.png"
    assert main(["gradient-flow", "--out", str(flow), "--steps", "4", "--units", "4"]) == 0
    approx = tmp_path / "approx.png"
    args = ["approximate", "--out", str(approx), "--widths", "1,4", "--epochs", "50"]
    assert main([*args, "--restarts", "1"]) == 0
    for png in (flow, approx):
        assert png.read_bytes()[:4] == b"\x89PNG"
