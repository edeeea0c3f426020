"""The programs in apps/: TFLite-only sampling and the train-in-a-script example."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import mp_keras  # noqa: F401  (registers the classes for load_model)
from mp_keras.export import export_model
from mp_keras.models import GAN
from tests.harness import REPO

APPS = REPO / "apps"
VAE_DIR = REPO / "saved_models" / "vae_digits"

# Runs a script with the heavy frameworks (and mp_keras itself) made unimportable.
BLOCKED = """
import runpy, sys
class Block:
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("keras", "tensorflow", "jax", "torch", "mp_keras"):
            raise ImportError("blocked for the test: " + name)
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _app(name: str):
    spec = importlib.util.spec_from_file_location(name, APPS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args: str, blocked: bool = False, timeout: int = 300) -> subprocess.CompletedProcess:
    prefix = ["-c", BLOCKED] if blocked else []
    env = dict(
        os.environ,
        KERAS_BACKEND=keras.backend.backend(),
        PYTHONPATH=str(REPO),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    return subprocess.run(
        [sys.executable, *prefix, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_tflite_sample_needs_no_framework(tmp_path):
    png = tmp_path / "samples.png"
    app = str(APPS / "tflite_sample.py")
    tflite = str(VAE_DIR / "export" / "model.tflite")
    result = _run(app, tflite, "--out", str(png), "--num", "10", blocked=True)
    assert result.returncode == 0, result.stderr
    with Image.open(png) as image:
        # 10 images of 8 x 8 in 4 columns and 3 rows, 1-pixel gaps, scaled by 4
        assert image.mode == "L" and image.size == (4 * (4 * 9 + 1), 4 * (3 * 9 + 1))
    assert _run(app, "--help", blocked=True).returncode == 0
    broken = _run(app, str(VAE_DIR / "model.keras"), "--out", str(png), blocked=True)
    assert broken.returncode == 2 and "tflite_sample: error:" in broken.stderr


def test_tflite_samples_equal_the_keras_model(tmp_path):
    app = _app("tflite_sample")
    z, samples = app.draw(VAE_DIR / "export" / "model.tflite", num=8, seed=3)
    vae = keras.saving.load_model(VAE_DIR / "model.keras")
    expected = keras.ops.convert_to_numpy(vae.decode(z))
    np.testing.assert_allclose(samples, expected, atol=1e-4)

    gan = GAN(data_shape=(2,), latent_dim=3, generator_units=(8,), discriminator_units=(8,))
    gan.save(tmp_path / "gan.keras")
    export_model(tmp_path / "gan.keras", tmp_path / "export")
    z, points = app.draw(tmp_path / "export" / "model.tflite", num=5, seed=0)
    np.testing.assert_allclose(points, keras.ops.convert_to_numpy(gan(z)), atol=1e-4)
    app.to_png(points, tmp_path / "points.png")
    with Image.open(tmp_path / "points.png") as image:
        assert image.mode == "RGB"
    with pytest.raises(ValueError, match="num must be >= 1"):
        app.draw(tmp_path / "export" / "model.tflite", num=0, seed=0)


def test_train_in_a_script_runs_on_this_backend(tmp_path):
    out = tmp_path / "script"
    result = _run(str(APPS / "train_in_a_script.py"), "--out", str(out), "--epochs", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test ELBO" in result.stdout and "max abs diff" in result.stdout
    assert (out / "model.keras").is_file() and (out / "export" / "model.tflite").is_file()
    assert (out / "checkpoints" / "epoch-00001").is_dir()
