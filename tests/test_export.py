"""Tests of `mp_keras.export` on the current Keras backend.

Run under each backend, e.g. `KERAS_BACKEND=jax pytest tests/test_export.py`.
The toy models live in `tests/_export_toys.py` so that the export worker
subprocess (used on JAX and PyTorch) can import them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _export_toys as toys

from mp_keras.export import MANIFEST_NAME, ExportParityError, export_model, exporter
from mp_keras.io import is_temporary

BACKEND = keras.backend.backend()
TOL = 1e-4


def _tflite_run(path: Path, endpoint: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
    runner = Interpreter(model_path=str(path)).get_signature_runner(endpoint)
    return runner(**inputs)


def _numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if is_temporary(p))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One export of `TinyAutoencoder`, saved from the current backend."""
    root = tmp_path_factory.mktemp("export")
    model = toys.tiny_autoencoder()
    model_path = root / "tiny.keras"
    model.save(model_path)
    out_dir = root / "out"
    manifest = export_model(model_path, out_dir)
    return model, model_path, out_dir, manifest


def test_manifest_lists_both_artifacts_and_endpoints(exported):
    _, model_path, out_dir, manifest = exported
    assert manifest["passed"] is True
    assert manifest["failures"] == []
    assert manifest["source"] == str(model_path.absolute())
    assert manifest["model_class"] == "TinyAutoencoder"
    assert manifest["keras_version"] == keras.__version__
    assert manifest["source_backend"] == BACKEND
    assert set(manifest["reference_backends"]) == {"tensorflow", BACKEND}
    assert manifest["sample_source"] == {"logits": "export_samples", "decode": "standard_normal"}
    on_disk = json.loads((out_dir / MANIFEST_NAME).read_text())
    assert on_disk == manifest

    formats = [a["format"] for a in manifest["artifacts"]]
    assert formats == ["saved_model", "tflite"]
    for artifact in manifest["artifacts"]:
        assert (out_dir / artifact["path"]).exists()
        assert set(artifact["endpoints"]) == {"logits", "decode"}
        for entry in artifact["endpoints"].values():
            assert 0.0 <= entry["max_abs_diff"] <= TOL
            assert set(entry["max_abs_diff_by_backend"]) == {"tensorflow", BACKEND}
        decode = artifact["endpoints"]["decode"]
        assert decode["inputs"] == [{"name": "z", "shape": [None, 2], "dtype": "float32"}]
        assert [o["shape"] for o in decode["outputs"]] == [[None, 6], [None, 2]]
    tflite = manifest["artifacts"][1]
    assert tflite["size_bytes"] == (out_dir / "model.tflite").stat().st_size
    assert tflite["select_tf_ops"] is False
    assert (out_dir / "saved_model" / "saved_model.pb").exists()
    assert sorted(p.name for p in out_dir.iterdir()) == [
        MANIFEST_NAME,
        "model.tflite",
        "saved_model",
    ]
    assert _leftovers(out_dir.parent) == []


def test_tflite_matches_keras_in_this_process(exported):
    model, _, out_dir, _ = exported
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 6)).astype("float32")  # batch 5: not the export's 8
    z = rng.standard_normal((3, 2)).astype("float32")

    logits = _tflite_run(out_dir / "model.tflite", "logits", inputs=x)
    np.testing.assert_allclose(logits["output_0"], _numpy(model(x)), atol=TOL, rtol=0)

    decoded = _tflite_run(out_dir / "model.tflite", "decode", z=z)
    expected = [_numpy(t) for t in model.decode(keras.ops.convert_to_tensor(z))]
    np.testing.assert_allclose(decoded["output_0"], expected[0], atol=TOL, rtol=0)
    np.testing.assert_allclose(decoded["output_1"], expected[1], atol=TOL, rtol=0)


def test_missing_file_raises_file_not_found(tmp_path):
    missing = tmp_path / "nope.keras"
    with pytest.raises(FileNotFoundError, match=r"nope\.keras"):
        export_model(missing, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [("junk.keras", b"not a zip"), ("weights.h5", b"\x89HDF"), ("empty.keras", None)],
)
def test_non_keras_file_raises_value_error(tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("other.txt", "no config here")
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=r"\.keras"):
        export_model(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_parity_failure_writes_manifest_and_raises(tmp_path):
    model_path = tmp_path / "drift.keras"
    toys.drifting_model().save(model_path)
    out_dir = tmp_path / "out"
    with pytest.raises(ExportParityError, match=r"endpoint 'serve'.*tolerance") as info:
        export_model(model_path, out_dir)
    manifest = json.loads((out_dir / MANIFEST_NAME).read_text())
    assert manifest["passed"] is False
    assert info.value.manifest == manifest
    assert info.value.manifest_path == out_dir / MANIFEST_NAME
    for artifact in manifest["artifacts"]:
        assert artifact["endpoints"]["serve"]["max_abs_diff"] > TOL
    assert (out_dir / "model.tflite").exists()
    assert _leftovers(tmp_path) == []


def test_functional_model_gets_a_serve_endpoint(tmp_path):
    model = toys.functional_model()
    model_path = tmp_path / "functional.keras"
    model.save(model_path)
    out_dir = tmp_path / "out"
    manifest = export_model(model_path, out_dir, num_samples=3, seed=1)
    assert manifest["passed"] is True
    for artifact in manifest["artifacts"]:
        serve = artifact["endpoints"]["serve"]
        assert [i["name"] for i in serve["inputs"]] == ["image", "extra"]
        assert serve["inputs"][0]["shape"] == [None, 4, 4, 1]
        assert serve["max_abs_diff"] <= TOL

    rng = np.random.default_rng(3)
    image = rng.standard_normal((2, 4, 4, 1)).astype("float32")
    extra = rng.standard_normal((2, 2)).astype("float32")
    lite = _tflite_run(out_dir / "model.tflite", "serve", image=image, extra=extra)
    np.testing.assert_allclose(lite["output_0"], _numpy(model([image, extra])), atol=TOL, rtol=0)


def test_failed_export_keeps_previous_export(exported, tmp_path):
    _, _, good_dir, _ = exported
    out_dir = tmp_path / "out"
    shutil.copytree(good_dir, out_dir)
    before = (out_dir / MANIFEST_NAME).read_text()

    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "NoSuchModel", "config": {}}))
        archive.writestr("metadata.json", json.dumps({"keras_version": keras.__version__}))
    with pytest.raises(ValueError, match="Could not load"):
        export_model(broken, out_dir)
    assert (out_dir / MANIFEST_NAME).read_text() == before
    assert (out_dir / "model.tflite").exists()
    assert _leftovers(tmp_path) == []


def test_refuses_to_replace_a_foreign_folder(exported, tmp_path):
    _, model_path, _, _ = exported
    out_dir = tmp_path / "mine"
    out_dir.mkdir()
    (out_dir / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing"):
        export_model(model_path, out_dir)
    assert (out_dir / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"tolerance": -1.0}, "tolerance"), ({"num_samples": 0}, "num_samples")],
)
def test_invalid_arguments(exported, tmp_path, kwargs, match):
    _, model_path, _, _ = exported
    with pytest.raises(ValueError, match=match):
        export_model(model_path, tmp_path / "out", **kwargs)


def test_subclassed_model_without_endpoints_is_rejected():
    class Bare(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    model = Bare()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="export_endpoints"):
        exporter.resolve_endpoints(model)


def test_cli_reports_errors_on_stderr(tmp_path):
    missing = tmp_path / "missing.keras"
    process = subprocess.run(
        [sys.executable, "-m", "mp_keras.export", str(missing), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": BACKEND},
        check=False,
    )
    assert process.returncode == 1
    assert "FileNotFoundError" in process.stderr
    assert str(missing) in process.stderr


def test_judge_explains_a_source_backend_only_mismatch():
    entry = {"max_abs_diff_by_backend": {"tensorflow": 1e-7, "jax": 3e-3}}
    manifest = {
        "tolerance": 1e-4,
        "artifacts": [{"format": "tflite", "endpoints": {"decode": entry}}],
    }
    exporter._judge(manifest)
    assert manifest["passed"] is False
    assert entry["max_abs_diff"] == pytest.approx(3e-3)
    (failure,) = manifest["failures"]
    assert "'decode'" in failure
    assert "vs Keras on jax; it matches Keras on tensorflow" in failure
