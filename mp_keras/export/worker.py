"""The TensorFlow worker subprocess that exports for JAX and PyTorch processes.

Keras fixes its backend at import time, so a process running JAX or PyTorch
cannot write a SavedModel itself. `export_via_worker` starts
`python -m mp_keras.export MODEL STAGING --worker-result RESULT.json
--worker-samples SAMPLES.npz` with `KERAS_BACKEND=tensorflow`; in there
`run_worker` writes the artifacts into the staging folder and reports either the
manifest (plus, in the `.npz`, the verification inputs and every artifact's
outputs) or the error it met. Back in the calling process, the same inputs are
run through the model on the calling backend and the artifacts' outputs are
compared with those too, so the manifest says whether the export reproduces
the model as it was trained, not only as TensorFlow runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mp_keras.export.artifacts import (
    build_export,
    check_model_path,
    check_settings,
    import_modules,
    load_model,
)
from mp_keras.export.endpoints import compare, keras_outputs, resolve_endpoints

# Exceptions the worker reports that are raised again as themselves; any other
# type becomes a RuntimeError whose message starts with the type's name.
_EXCEPTION_TYPES: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        FileNotFoundError,
        FileExistsError,
        NotADirectoryError,
        ValueError,
        TypeError,
        ImportError,
        ModuleNotFoundError,
        RuntimeError,
    )
}


# --------------------------------------------------------------------------- #
# Calling side (JAX or PyTorch)
# --------------------------------------------------------------------------- #


def export_via_worker(
    model_path: Path,
    staging: Path,
    *,
    backend: str,
    tolerance: float,
    num_samples: int,
    seed: int,
    imports: Sequence[str],
) -> tuple[dict, dict]:
    """Exports in a TensorFlow subprocess, then compares on `backend` as well.

    Args:
        model_path: Checked `.keras` path.
        staging: Empty folder for the worker to write the artifacts into.
        backend: The calling process's Keras backend.
        tolerance: Accepted max absolute difference.
        num_samples: Verification batch size.
        seed: Verification seed.
        imports: Modules the worker must import before loading the model.

    Returns:
        The manifest with the differences on TensorFlow and on `backend`, but
        no verdict yet (`passed`, `failures`) and not yet written to disk; and the
        verification inputs and artifact outputs, per endpoint.

    Raises:
        RuntimeError: The worker ended without reporting a result.
        Exception: The error the worker reported, rebuilt (see
            `_EXCEPTION_TYPES`), with the worker's traceback as a note.
    """
    optional = [m for m in _registered_modules() if m not in imports]
    with tempfile.TemporaryDirectory(prefix="mp_keras_export_") as scratch:
        result_path = Path(scratch) / "result.json"
        samples_path = Path(scratch) / "samples.npz"
        command = [
            sys.executable,
            "-m",
            "mp_keras.export",
            str(model_path),
            str(staging),
            "--tolerance",
            repr(tolerance),
            "--num-samples",
            str(num_samples),
            "--seed",
            str(seed),
            "--source-backend",
            backend,
            "--worker-result",
            str(result_path),
            "--worker-samples",
            str(samples_path),
        ]
        for module in imports:
            command += ["--import", module]
        for module in optional:
            command += ["--import-optional", module]
        process = subprocess.run(
            command, env=_worker_env(), capture_output=True, text=True, check=False
        )
        try:
            result = json.loads(result_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            tail = "\n".join(process.stderr.strip().splitlines()[-30:])
            raise RuntimeError(
                f"The export worker exited with code {process.returncode} without a "
                f"result. Command: {' '.join(command)}\nstderr (tail):\n{tail}"
            ) from None
        if not result.get("ok"):
            raise _rebuild_exception(result)
        with np.load(samples_path) as archive:
            samples = _unpack_samples(result["samples"], archive)
    manifest = result["manifest"]
    _cross_check(model_path, manifest, samples, backend)
    return manifest, samples


def _registered_modules() -> list[str]:
    """Importable modules defining the objects registered with Keras here."""
    import keras

    modules = []
    for obj in keras.saving.get_custom_objects().values():
        module = getattr(obj, "__module__", None)
        if (
            module
            and module != "__main__"
            and not module.startswith(("keras.", "keras_"))
            and module not in modules
            and getattr(sys.modules.get(module), "__spec__", None) is not None
        ):
            modules.append(module)
    return modules


def _worker_env() -> dict[str, str]:
    """This process's environment for the worker: TF backend, same `sys.path`."""
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "tensorflow"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The export needs no GPU; hiding it keeps TF from grabbing memory the calling
    # (JAX/PyTorch) process holds, and keeps the TF reference on CPU like TFLite.
    env["CUDA_VISIBLE_DEVICES"] = "-1"
    paths = [p or os.getcwd() for p in sys.path]
    paths += env.get("PYTHONPATH", "").split(os.pathsep)
    env["PYTHONPATH"] = os.pathsep.join(p for p in dict.fromkeys(paths) if p and os.path.isdir(p))
    return env


def _rebuild_exception(result: dict) -> Exception:
    """The worker's reported error as an exception of the calling process."""
    cls = _EXCEPTION_TYPES.get(result.get("type", ""), RuntimeError)
    message = result.get("message", "unknown error")
    if cls is RuntimeError and result.get("type") not in (None, "RuntimeError"):
        message = f"{result['type']}: {message}"
    error = cls(message)
    worker_traceback = result.get("traceback")
    if worker_traceback and hasattr(error, "add_note"):  # Python >= 3.11
        error.add_note("Export worker traceback:\n" + worker_traceback)
    return error


def _cross_check(model_path: Path, manifest: dict, samples: dict, backend: str) -> None:
    """Adds the artifacts' differences from the model on `backend` (this process)."""
    add_reference(manifest, samples, backend, reference_outputs(model_path, samples))


def reference_outputs(model_path: Path, samples: dict) -> dict[str, Any]:
    """The Keras model's outputs, on this process's backend, for each endpoint's inputs
    (`None` for an endpoint the model lacks when loaded here)."""
    model = load_model(model_path)
    endpoints = {e.name: e for e in resolve_endpoints(model)}
    return {
        name: None if name not in endpoints else keras_outputs(endpoints[name], sample["inputs"])
        for name, sample in samples.items()
    }


def add_reference(manifest: dict, samples: dict, backend: str, references: dict) -> None:
    """Records each artifact's difference from `references`, Keras' outputs on `backend`."""
    for name, sample in samples.items():
        reference = references.get(name)
        for artifact in manifest["artifacts"]:
            if reference is None:
                diff, note = None, f"endpoint missing when loaded on {backend}"
            else:
                diff, note = compare(reference, sample[artifact["format"]])
            entry = artifact["endpoints"][name]
            entry["max_abs_diff_by_backend"][backend] = diff
            if note:
                entry.setdefault("errors", []).append(f"{backend}: {note}")
    manifest["reference_backends"] = [*manifest["reference_backends"], backend]


def reference_via_subprocess(
    model_path: Path, manifest: dict, samples: dict, backend: str, imports: Sequence[str]
) -> None:
    """Runs the model on `backend` in a subprocess and records the artifacts' differences.

    This checks an export against the backend that trained the model when the export
    runs elsewhere (e.g. a model trained on PyTorch, exported from TensorFlow).
    """
    inputs = {name: sample["inputs"] for name, sample in samples.items()}
    index, arrays = _pack_samples(inputs)
    with tempfile.TemporaryDirectory(prefix="mp_keras_reference_") as scratch:
        inputs_path, outputs_path = Path(scratch) / "inputs.npz", Path(scratch) / "outputs.npz"
        np.savez(inputs_path, **arrays)
        (Path(scratch) / "inputs.json").write_text(json.dumps(index), encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "mp_keras.export",
            str(model_path),
            scratch,
            "--reference-inputs",
            str(inputs_path),
            "--reference-outputs",
            str(outputs_path),
        ]
        for module in [*imports, *(m for m in _registered_modules() if m not in imports)]:
            command += ["--import-optional", module]
        env = dict(_worker_env(), KERAS_BACKEND=backend)
        process = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if process.returncode != 0 or not outputs_path.exists():
            tail = "\n".join(process.stderr.strip().splitlines()[-30:])
            raise RuntimeError(
                f"Running the model on its training backend ({backend}) to check the export "
                f"failed with code {process.returncode}.\nstderr (tail):\n{tail}"
            )
        out_index = json.loads((Path(scratch) / "outputs.json").read_text(encoding="utf-8"))
        with np.load(outputs_path) as archive:
            references = _unpack_samples(out_index, archive)
    add_reference(manifest, samples, backend, references)


def write_reference_outputs(
    model_path: str, inputs_path: str, outputs_path: str, imports: Sequence[str]
) -> int:
    """Subprocess side of `reference_via_subprocess`: outputs on this backend, to a file."""
    import_modules([], optional=imports)
    scratch = Path(inputs_path).parent
    index = json.loads((scratch / "inputs.json").read_text(encoding="utf-8"))
    with np.load(inputs_path) as archive:
        inputs = _unpack_samples(index, archive)
    samples = {name: {"inputs": list(arrays)} for name, arrays in inputs.items()}
    references = reference_outputs(check_model_path(model_path), samples)
    out_index, arrays = _pack_samples({k: v for k, v in references.items() if v is not None})
    np.savez(outputs_path, **arrays)
    (scratch / "outputs.json").write_text(json.dumps(out_index), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- #
# Worker side (TensorFlow)
# --------------------------------------------------------------------------- #


def run_worker(
    model_path: str,
    staging: str,
    *,
    tolerance: float,
    num_samples: int,
    seed: int,
    source_backend: str,
    imports: Sequence[str],
    optional_imports: Sequence[str] = (),
    result_path: str,
    samples_path: str,
) -> int:
    """Worker side of `export_model`: exports into `staging`, reports in a file.

    Writes `{"ok": true, "manifest": ..., "samples": ...}` or
    `{"ok": false, "type": ..., "message": ..., "traceback": ...}` to
    `result_path`, and the verification arrays to `samples_path`.

    Returns:
        The process exit code (0 when the export was written, 1 on error).
    """
    try:
        import_modules(imports, optional=optional_imports)
        model_path = check_model_path(model_path)
        tolerance, num_samples, seed = check_settings(tolerance, num_samples, seed)
        samples: dict = {}
        manifest = build_export(
            model_path,
            Path(staging),
            tolerance=tolerance,
            num_samples=num_samples,
            seed=seed,
            source_backend=source_backend,
            samples_out=samples,
        )
        index, arrays = _pack_samples(samples)
        with open(samples_path, "wb") as handle:
            np.savez(handle, **arrays)
        result = {"ok": True, "manifest": manifest, "samples": index}
        code = 0
    except Exception as error:
        result = {
            "ok": False,
            "type": type(error).__name__,
            "message": str(error),
            "traceback": traceback.format_exc(),
        }
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        code = 1
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return code


def _pack_samples(samples: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """Splits nested arrays into a JSON index of keys and arrays for `np.savez`."""
    arrays: dict[str, np.ndarray] = {}

    def keep(tree: Any) -> Any:
        if isinstance(tree, dict):
            return {key: keep(value) for key, value in tree.items()}
        if isinstance(tree, list):
            return [keep(value) for value in tree]
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(tree)
        return key

    return keep(samples), arrays


def _unpack_samples(index: Any, archive: Any) -> Any:
    """Inverse of `_pack_samples`, with `archive` the loaded `.npz` file."""
    if isinstance(index, dict):
        return {key: _unpack_samples(value, archive) for key, value in index.items()}
    if isinstance(index, list):
        return [_unpack_samples(value, archive) for value in index]
    return archive[index]
