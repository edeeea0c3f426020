"""`import mp_keras` is enough; a fast and quiet CLI; export parity on the training backend."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import mp_keras
from mp_keras import data
from mp_keras.export import export_model
from mp_keras.models import MLP
from mp_keras.registry import RECIPES
from tests.harness import REPO, run_python

BACKEND = keras.backend.backend()


@pytest.fixture(scope="module")
def one_of_each(tmp_path_factory):
    """A compiled, saved model of every recipe (with its metrics and optimizers)."""
    folder = tmp_path_factory.mktemp("models")
    for recipe in RECIPES.values():
        info = data.load(recipe.dataset, "test", num_examples=8).info
        model = recipe.build(info, 0)
        model.compile(optimizer=recipe.optimizer())
        model.save(folder / f"{recipe.name}.keras")
    shutil.copy(REPO / "saved_models" / "vae_digits" / "model.keras", folder / "shipped.keras")
    return folder


@pytest.mark.parametrize("order", ["mp_keras first", "keras first"])
def test_import_mp_keras_is_enough_to_load_every_model(one_of_each, order):
    if order == "mp_keras first":
        imports = "import sys, mp_keras\nassert 'keras' not in sys.modules, 'Keras imported'\n"
    else:
        imports = "import keras, mp_keras\n"
    code = imports + (
        "import keras, pathlib\n"
        f"paths = sorted(pathlib.Path({str(one_of_each)!r}).glob('*.keras'))\n"
        "for path in paths:\n"
        "    model = keras.saving.load_model(path)\n"
        "    print(path.stem, type(model).__name__, keras.backend.backend())\n"
    )
    out = run_python(code, backend=BACKEND)
    loaded = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert set(loaded) == {*RECIPES, "shipped"}
    assert all(value.endswith(BACKEND) for value in loaded.values())


def test_subpackages_are_attributes():
    assert mp_keras.models.VAE.__name__ == "VAE" and callable(mp_keras.data.load)
    with pytest.raises(AttributeError):
        mp_keras.nothing_here  # noqa: B018


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    environment = dict(os.environ, KERAS_BACKEND=BACKEND, PYTHONPATH=str(REPO), **(env or {}))
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    return subprocess.run(
        [sys.executable, "-m", "mp_keras.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )


def test_list_and_help_import_no_backend():
    code = (
        "import sys\nfrom mp_keras.cli import main\nmain(['list'])\n"
        "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    assert "HEAVY []" in run_python(code, backend=BACKEND)
    assert _cli("--help").returncode == 0


CPP_LOG = re.compile(r"^[IWE]\d{4} |All log messages before absl|Could not find cuda", re.M)


def test_the_cli_is_quiet_unless_verbose(tmp_path):
    quiet = _cli("train", "mlp", "--epochs", "1", "--out", str(tmp_path / "q"))
    assert quiet.returncode == 0, quiet.stderr
    assert not CPP_LOG.search(quiet.stderr), quiet.stderr
    if BACKEND == "tensorflow":  # the backend whose C++ logs the filter exists for
        loud = _cli(
            "evaluate", str(tmp_path / "q" / "model.keras"), "--dataset", "digits", "--verbose"
        )
        assert loud.returncode == 0 and CPP_LOG.search(loud.stderr), loud.stderr


def _with_training_backend(source, target, backend: str) -> None:
    """A copy of a `.keras` archive whose recorded training backend is `backend`."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            content = old.read(item.filename)
            if item.filename == "assets/mp_keras.json":
                content = json.dumps({"training_backend": backend}).encode()
            new.writestr(item, content)


def test_export_is_checked_on_the_backend_that_trained_the_model(tmp_path):
    model = MLP(input_shape=(4,), num_classes=3, hidden_units=(8,))
    model.compile()
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    model.fit(x, np.arange(16) % 3, epochs=1, verbose=0)
    assert model.training_backend == BACKEND
    model.save(tmp_path / "mlp.keras")
    assert keras.saving.load_model(tmp_path / "mlp.keras").training_backend == BACKEND

    manifest = export_model(tmp_path / "mlp.keras", tmp_path / "export")
    assert manifest["training_backend"] == BACKEND and manifest["export_backend"] == "tensorflow"
    assert set(manifest["reference_backends"]) == {"tensorflow", BACKEND}

    other = {"tensorflow": "torch", "jax": "tensorflow", "torch": "jax"}[BACKEND]
    _with_training_backend(tmp_path / "mlp.keras", tmp_path / "other.keras", other)
    manifest = export_model(tmp_path / "other.keras", tmp_path / "export_other")
    assert manifest["training_backend"] == other
    assert other in manifest["reference_backends"] and manifest["passed"]
    for artifact in manifest["artifacts"]:
        assert artifact["endpoints"]["logits"]["max_abs_diff_by_backend"][other] < 1e-4
