"""Writes the SavedModel and TFLite artifacts and measures them against Keras.

This is the part of the export that needs the TensorFlow backend: it runs in the
calling process when that process uses TensorFlow, else in the worker
subprocess (see `mp_keras.export.worker`). `keras.export.ExportArchive` writes
the SavedModel, `tf.lite.TFLiteConverter` turns it into a flatbuffer, and each
endpoint of both is run on the same inputs as the Keras model.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mp_keras.export.endpoints import (
    Endpoint,
    compare,
    keras_outputs,
    make_samples,
    resolve_endpoints,
)

MANIFEST_NAME = "manifest.json"
SAVED_MODEL_DIR = "saved_model"
TFLITE_NAME = "model.tflite"
MANIFEST_FORMAT_VERSION = 1


# --------------------------------------------------------------------------- #
# Argument checks (by `export_model`, and again by the worker it starts)
# --------------------------------------------------------------------------- #


def check_model_path(model_path: str | os.PathLike) -> Path:
    """Checks that `model_path` is an existing `.keras` archive.

    Args:
        model_path: Path to check.

    Returns:
        The absolute path.

    Raises:
        FileNotFoundError: Nothing exists at `model_path`.
        ValueError: It is not a `.keras` zip archive written by `model.save`.

    Example:

    >>> check_model_path("no/such/model.keras")
    Traceback (most recent call last):
    ...
    FileNotFoundError: [Errno 2] Model file not found: '...no/such/model.keras'
    """
    path = Path(model_path).absolute()
    if not path.exists():
        raise FileNotFoundError(2, "Model file not found", str(path))
    expected = "expected a `.keras` file (the zip archive written by `model.save`)"
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a Keras .keras archive: {expected}.")
    if path.suffix != ".keras":
        raise ValueError(f"{path} does not end in `.keras`: {expected}.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(
            f"{path} is not a Keras .keras archive (not a zip file: {error}); {expected}."
        ) from None
    if "config.json" not in names:
        raise ValueError(f"{path} is not a Keras .keras archive (no `config.json`); {expected}.")
    return path


def training_backend_of(model_path: str | os.PathLike) -> str | None:
    """The backend that trained a `.keras` file of mp_keras (None if not recorded).

    `BaseModel` records it in the archive's `assets/mp_keras.json`.
    """
    import json

    try:
        with zipfile.ZipFile(model_path) as archive:
            info = json.loads(archive.read("assets/mp_keras.json"))
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        return None
    backend = info.get("training_backend") if isinstance(info, dict) else None
    return backend if backend in ("tensorflow", "jax", "torch") else None


def check_settings(tolerance: float, num_samples: int, seed: int) -> tuple[float, int, int]:
    """Checks the verification settings of `export_model`.

    Returns:
        `(tolerance, num_samples, seed)` as a float and Python ints.

    Raises:
        ValueError: `tolerance` is not a finite number >= 0, `num_samples` not
            an integer >= 1, or `seed` not an integer.
    """
    try:
        value = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"tolerance must be a number, got {tolerance!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"tolerance must be finite and >= 0, got {tolerance!r}.")
    num_samples = _check_int(num_samples, "num_samples")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
    return value, num_samples, _check_int(seed, "seed")


def _check_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    return int(value)


# --------------------------------------------------------------------------- #
# Loading the model
# --------------------------------------------------------------------------- #


def import_modules(modules: Sequence[str], *, optional: Sequence[str] = ()) -> None:
    """Imports `modules` (errors propagate) and `optional` (errors only warn)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ImportError(
                f"Could not import module {module!r} requested for the export: {error}"
            ) from error
    for module in optional:
        try:
            importlib.import_module(module)
        except Exception as error:
            warnings.warn(f"Skipped importing {module!r}: {error}", stacklevel=2)


def load_model(model_path: Path) -> Any:
    """Loads a `.keras` file, after importing `mp_keras.models` for its classes."""
    import keras

    try:
        importlib.import_module("mp_keras.models")
    except ImportError as error:
        # Only an installation without the models package may skip them quietly.
        if getattr(error, "name", None) not in ("mp_keras.models", "mp_keras"):
            warnings.warn(
                f"Could not import mp_keras.models ({error}); its custom models will not load.",
                stacklevel=2,
            )
    try:
        return keras.saving.load_model(model_path, compile=False)
    except Exception as error:
        raise ValueError(
            f"Could not load {model_path} with Keras {keras.__version__} on the "
            f"{keras.backend.backend()} backend: {error}. Custom classes must be "
            "registered with keras.saving.register_keras_serializable in an "
            "importable module (see export_model's `imports`)."
        ) from error


# --------------------------------------------------------------------------- #
# Writing and verifying the artifacts
# --------------------------------------------------------------------------- #


def build_export(
    model_path: Path,
    staging: Path,
    *,
    tolerance: float,
    num_samples: int,
    seed: int,
    source_backend: str = "tensorflow",
    samples_out: dict | None = None,
) -> dict:
    """Writes the artifacts into `staging` and measures them (TensorFlow backend).

    Args:
        model_path: Checked `.keras` path.
        staging: Empty folder to write into.
        tolerance: Accepted max absolute difference (recorded in the manifest).
        num_samples: Verification batch size.
        seed: Verification seed.
        source_backend: Backend of the process that asked for the export (the
            backend that trained the model is `training_backend`, read from the file).
        samples_out: If given, filled with the verification inputs and every
            artifact's outputs (`{endpoint: {"inputs": [...], artifact: {...}}}`).

    Returns:
        The manifest, with the differences from Keras on TensorFlow but no
        verdict yet (`passed`, `failures`) and not yet written to disk.

    Raises:
        RuntimeError: Not on the TensorFlow backend, or a TFLite endpoint
            fails to run.
    """
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("The export must run on the TensorFlow backend.")
    import ai_edge_litert
    from ai_edge_litert.interpreter import Interpreter

    model = load_model(model_path)
    endpoints = resolve_endpoints(model)
    names = [e.name for e in endpoints]

    saved_model_dir = staging / SAVED_MODEL_DIR
    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint in endpoints:
        specs = [tf.TensorSpec(leaf.shape, leaf.dtype, name=leaf.name) for leaf in endpoint.leaves]
        archive.add_endpoint(endpoint.name, endpoint.fn, endpoint.args(specs))
    archive.write_out(str(saved_model_dir), verbose=False)

    flatbuffer, select_tf_ops = _convert_tflite(saved_model_dir, names)
    tflite_path = staging / TFLITE_NAME
    tflite_path.write_bytes(flatbuffer)

    loaded = tf.saved_model.load(str(saved_model_dir))
    interpreter = Interpreter(model_path=str(tflite_path))
    entries: dict[str, dict[str, dict]] = {"saved_model": {}, "tflite": {}}
    sample_sources = {}
    for endpoint in endpoints:
        arrays, sample_sources[endpoint.name] = make_samples(model, endpoint, num_samples, seed)
        feed = {leaf.name: array for leaf, array in zip(endpoint.leaves, arrays)}
        reference = keras_outputs(endpoint, arrays)
        runs = {
            "saved_model": _run_saved_model(loaded.signatures[endpoint.name], feed),
            "tflite": _run_tflite(interpreter, endpoint.name, feed, select_tf_ops),
        }
        for artifact, (outputs, input_specs, output_specs) in runs.items():
            entries[artifact][endpoint.name] = _endpoint_entry(
                endpoint, input_specs, output_specs, reference, outputs
            )
        if samples_out is not None:
            samples_out[endpoint.name] = {
                "inputs": arrays,
                **{artifact: outputs for artifact, (outputs, _, _) in runs.items()},
            }

    return {
        "format_version": MANIFEST_FORMAT_VERSION,
        "source": str(model_path),
        "source_sha256": _sha256(model_path),
        "model_class": type(model).__name__,
        "model_registered_name": keras.saving.get_registered_name(type(model)),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "litert_version": getattr(ai_edge_litert, "__version__", None),
        "source_backend": source_backend,
        "training_backend": training_backend_of(model_path),
        "export_backend": "tensorflow",
        "reference_backends": ["tensorflow"],
        "tolerance": tolerance,
        "num_samples": num_samples,
        "seed": seed,
        "sample_source": sample_sources,
        # What an app needs besides the graphs (a diffusion model's T and data range).
        "metadata": model.export_metadata() if hasattr(model, "export_metadata") else {},
        "artifacts": [
            {
                "format": "saved_model",
                "path": SAVED_MODEL_DIR,
                "signature_keys": names,
                "endpoints": entries["saved_model"],
            },
            {
                "format": "tflite",
                "path": TFLITE_NAME,
                "size_bytes": tflite_path.stat().st_size,
                "select_tf_ops": select_tf_ops,
                "endpoints": entries["tflite"],
            },
        ],
    }


def _convert_tflite(saved_model_dir: Path, signature_keys: list[str]) -> tuple[bytes, bool]:
    """Converts with builtin ops; falls back to Select TF ops if that fails."""
    import tensorflow as tf

    def converter() -> tf.lite.TFLiteConverter:
        # A fresh converter per attempt: a failed `convert()` may leave state behind.
        return tf.lite.TFLiteConverter.from_saved_model(
            str(saved_model_dir), signature_keys=signature_keys
        )

    try:
        return converter().convert(), False
    except Exception as builtin_error:
        fallback = converter()
        fallback.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS,
            tf.lite.OpsSet.SELECT_TF_OPS,
        ]
        try:
            return fallback.convert(), True
        except Exception:
            raise builtin_error from None


# A run of one artifact's endpoint: its outputs, and the specs of its inputs and
# outputs by name (`{"name": ..., "shape": [None, ...], "dtype": ...}`).
_Run = tuple[dict[str, np.ndarray], dict[str, dict], dict[str, dict]]


def _run_saved_model(signature: Any, feed: dict[str, np.ndarray]) -> _Run:
    """Runs one signature of the loaded SavedModel."""
    outputs = {k: v.numpy() for k, v in signature(**feed).items()}
    return (
        outputs,
        {k: _tensor_spec(k, s) for k, s in signature.structured_input_signature[1].items()},
        {k: _tensor_spec(k, s) for k, s in signature.structured_outputs.items()},
    )


def _run_tflite(
    interpreter: Any, name: str, feed: dict[str, np.ndarray], select_tf_ops: bool
) -> _Run:
    """Runs one signature of the TFLite model in `ai_edge_litert`."""
    try:
        runner = interpreter.get_signature_runner(name)
        outputs = {k: np.asarray(v) for k, v in runner(**feed).items()}
    except (RuntimeError, ValueError) as error:
        hint = " (the model needs Select TF ops)" if select_tf_ops else ""
        raise RuntimeError(
            f"The TFLite endpoint {name!r} failed to run in ai_edge_litert{hint}: {error}"
        ) from error
    return (
        outputs,
        {k: _lite_spec(k, d) for k, d in runner.get_input_details().items()},
        {k: _lite_spec(k, d) for k, d in runner.get_output_details().items()},
    )


def _tensor_spec(name: str, spec: Any) -> dict:
    return {"name": name, "shape": spec.shape.as_list(), "dtype": spec.dtype.name}


def _lite_spec(name: str, details: dict) -> dict:
    shape = details.get("shape_signature", details["shape"])
    return {
        "name": name,
        "shape": [None if int(d) < 0 else int(d) for d in shape],
        "dtype": np.dtype(details["dtype"]).name,
    }


def _endpoint_entry(
    endpoint: Endpoint,
    input_specs: dict[str, dict],
    output_specs: dict[str, dict],
    reference: dict[str, np.ndarray],
    outputs: dict[str, np.ndarray],
) -> dict:
    """The manifest entry of one artifact's endpoint, measured on TensorFlow.

    Inputs are listed in signature order; outputs in the order Keras returns
    them, then any the artifact adds, by name.
    """
    diff, note = compare(reference, outputs)
    extra = sorted(k for k in output_specs if k not in reference)
    entry = {
        "inputs": [input_specs[leaf.name] for leaf in endpoint.leaves],
        "outputs": [output_specs[k] for k in [*reference, *extra] if k in output_specs],
        "max_abs_diff": diff,
        "max_abs_diff_by_backend": {"tensorflow": diff},
    }
    if note:
        entry["errors"] = [f"tensorflow: {note}"]
    return entry


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
