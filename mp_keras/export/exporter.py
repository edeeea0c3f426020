"""Export a saved `.keras` model to a SavedModel and a TFLite file, and verify both.

The export always runs on the TensorFlow backend: `keras.export.ExportArchive`
writes the SavedModel and `tf.lite.TFLiteConverter` turns it into a `.tflite`
flatbuffer. Keras fixes its backend at import time, so when the calling process
runs JAX or PyTorch, `export_model` hands the work to a worker subprocess
(`python -m mp_keras.export ... --worker-result FILE`) started with
`KERAS_BACKEND=tensorflow`, and then re-checks the artifacts against the model
as it runs on the calling process's own backend.

Layout of a finished export (`out_dir`):

* `saved_model/`: one signature per endpoint (plus `serving_default`, an alias
  of the first endpoint).
* `model.tflite`: the same signatures, dynamic batch dimension.
* `manifest.json`: versions, input/output specs and, per artifact and endpoint,
  the largest absolute difference from the Keras outputs on random samples.

Everything is written into a hidden sibling folder first and moved into place
only once all artifacts and the manifest exist, so `out_dir` never holds a half
written export, and a failure before that point leaves a previous export alone.
An export that was written completely but misses the tolerance is moved into
place with `"passed": false` in its manifest, and `ExportParityError` is raised.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST_NAME = "manifest.json"
SAVED_MODEL_DIR = "saved_model"
TFLITE_NAME = "model.tflite"
MANIFEST_FORMAT_VERSION = 1

_EXPORT_ENTRIES = frozenset({MANIFEST_NAME, SAVED_MODEL_DIR, TFLITE_NAME})
_ARTIFACTS = ("saved_model", "tflite")


class ExportParityError(RuntimeError):
    """An exported artifact does not reproduce the Keras model within tolerance.

    The export itself was written completely (its manifest says
    `"passed": false`); the exception carries that manifest.

    Attributes:
        manifest: The manifest dictionary, or `None` when unknown.
        manifest_path: Path of the written `manifest.json`, or `None`.
    """

    def __init__(
        self,
        message: str,
        manifest: dict | None = None,
        manifest_path: str | os.PathLike | None = None,
    ) -> None:
        super().__init__(message)
        self.manifest = manifest
        self.manifest_path = None if manifest_path is None else Path(manifest_path)


# --------------------------------------------------------------------------- #
# Public entry point
# --------------------------------------------------------------------------- #


def export_model(
    model_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    tolerance: float = 1e-4,
    num_samples: int = 8,
    seed: int = 0,
    imports: Sequence[str] = (),
) -> dict:
    """Exports a `.keras` model to a SavedModel and a TFLite file and checks both.

    The model may have been trained and saved on any backend. On the TensorFlow
    backend the export runs in this process; otherwise a worker subprocess with
    `KERAS_BACKEND=tensorflow` does it, and its artifacts are additionally
    compared with the model running on the current backend.

    Endpoints come from the model's `export_endpoints()` method
    (`{name: (function, [keras.InputSpec, ...])}`); models without one (e.g.
    Functional or Sequential models) get a single endpoint `"serve"` calling the
    model on its declared inputs. Inputs for the check come from the model's
    optional `export_samples(name, num, seed)` method, else from a standard
    normal distribution.

    Custom classes must be importable by the worker: `mp_keras.models` is always
    imported, as are the modules of every object currently registered with
    `keras.saving.register_keras_serializable`, plus `imports`. The worker gets
    this process's `sys.path` as `PYTHONPATH`. Classes defined in `__main__`
    cannot be found by the worker.

    Args:
        model_path: Path of a `.keras` file written by `model.save`.
        out_dir: Folder to write; created if missing. An existing folder is
            replaced only if it is empty or holds a previous export.
        tolerance: Largest accepted absolute difference between an artifact's
            outputs and the Keras outputs.
        num_samples: Batch size of the random verification inputs.
        seed: Seed of the verification inputs.
        imports: Extra modules to import before loading the model (for custom
            objects that are not registered in this process).

    Returns:
        The manifest, as also written to `out_dir/manifest.json`.

    Raises:
        FileNotFoundError: `model_path` does not exist.
        ValueError: `model_path` is not a `.keras` file, or the model has no
            usable endpoint or input signature, or an argument is invalid.
        FileExistsError: `out_dir` exists and holds something other than an
            export.
        ExportParityError: An artifact's outputs differ from the Keras outputs
            by more than `tolerance` (the export and its manifest, with
            `"passed": false`, are written anyway).
        RuntimeError: The worker subprocess failed in an unexpected way.

    Example:

    >>> import tempfile, pathlib, keras
    >>> from mp_keras.export import export_model
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> inputs = keras.Input((3,), name="features")
    >>> model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    >>> model.save(tmp / "tiny.keras")
    >>> manifest = export_model(tmp / "tiny.keras", tmp / "export")
    >>> manifest["passed"], sorted(p.name for p in (tmp / "export").iterdir())
    (True, ['manifest.json', 'model.tflite', 'saved_model'])
    >>> manifest["artifacts"][1]["endpoints"]["serve"]["inputs"]
    [{'name': 'features', 'shape': [None, 3], 'dtype': 'float32'}]
    >>> import shutil; shutil.rmtree(tmp)
    """
    model_path = check_model_path(model_path)
    out_dir = Path(out_dir).absolute()
    tolerance = _check_tolerance(tolerance)
    num_samples = _check_positive_int(num_samples, "num_samples")
    seed = _check_int(seed, "seed")
    imports = [imports] if isinstance(imports, str) else list(imports)
    _check_out_dir(out_dir)

    import keras

    backend = keras.backend.backend()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        if backend == "tensorflow":
            _import_modules(imports)
            manifest = _build_export(
                model_path, staging, tolerance=tolerance, num_samples=num_samples, seed=seed
            )
        else:
            manifest = _export_via_worker(
                model_path,
                staging,
                backend=backend,
                tolerance=tolerance,
                num_samples=num_samples,
                seed=seed,
                imports=imports,
            )
        _finalize(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not manifest["passed"]:
        manifest_path = out_dir / MANIFEST_NAME
        raise ExportParityError(_parity_message(manifest, manifest_path), manifest, manifest_path)
    return manifest


# --------------------------------------------------------------------------- #
# Argument checks
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
        raise ValueError(f"{path} is a directory, {expected}.")
    if path.suffix != ".keras":
        raise ValueError(f"{path} does not end in `.keras`: {expected}.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path} is not a zip archive ({error}): {expected}.") from None
    if "config.json" not in names:
        raise ValueError(f"{path} has no `config.json` entry: {expected}.")
    return path


def _check_tolerance(tolerance: float) -> float:
    try:
        value = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"tolerance must be a number, got {tolerance!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"tolerance must be finite and >= 0, got {tolerance!r}.")
    return value


def _check_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    return int(value)


def _check_positive_int(value: int, name: str) -> int:
    value = _check_int(value, name)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}.")
    return value


def _check_out_dir(out_dir: Path) -> None:
    """Refuses to replace anything but an empty folder or a previous export."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(f"Export folder {out_dir} exists and is not a folder.")
    entries = {entry.name for entry in out_dir.iterdir()}
    if entries and (MANIFEST_NAME not in entries or not entries <= _EXPORT_ENTRIES):
        raise FileExistsError(
            f"Export folder {out_dir} exists and does not hold an mp_keras export "
            f"(found {sorted(entries)[:5]}); refusing to replace it. Choose another "
            "folder or remove it."
        )


def _finalize(staging: Path, out_dir: Path) -> None:
    """Moves a complete staging folder to `out_dir`, replacing an old export."""
    _check_out_dir(out_dir)
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    backup = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(out_dir, backup)
    try:
        os.rename(staging, out_dir)
    except BaseException:
        os.rename(backup, out_dir)
        raise
    shutil.rmtree(backup, ignore_errors=True)


# --------------------------------------------------------------------------- #
# Endpoints and samples
# --------------------------------------------------------------------------- #


@dataclass
class _Leaf:
    """One input tensor of an endpoint: signature name, shape and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str


@dataclass
class _Endpoint:
    """An endpoint: its function and the nested input structure of `_Leaf`s."""

    name: str
    fn: Callable
    structure: list  # one entry per positional argument, nested list/tuple/dict
    leaves: list[_Leaf]


def _flatten(structure: Any) -> list:
    """Flattens nested lists, tuples and dicts (in insertion order)."""
    if isinstance(structure, dict):
        return [leaf for value in structure.values() for leaf in _flatten(value)]
    if isinstance(structure, (list, tuple)):
        return [leaf for value in structure for leaf in _flatten(value)]
    return [structure]


def _pack(structure: Any, leaves: Iterator) -> Any:
    """Rebuilds `structure` with its leaves taken from the iterator `leaves`."""
    if isinstance(structure, dict):
        return {key: _pack(value, leaves) for key, value in structure.items()}
    if isinstance(structure, list):
        return [_pack(value, leaves) for value in structure]
    if isinstance(structure, tuple):
        return tuple(_pack(value, leaves) for value in structure)
    return next(leaves)


def _sanitize(name: str) -> str:
    """Turns `name` into a valid signature input name.

    >>> _sanitize("input layer:0"), _sanitize("3d"), _sanitize("")
    ('input_layer_0', 'x_3d', 'x')
    """
    name = re.sub(r"[^0-9A-Za-z_]", "_", str(name))
    if not name or not (name[0].isalpha() or name[0] == "_"):
        name = "x_" + name if name else "x"
    return name


def _positional_names(fn: Callable) -> list[str]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in kinds]


def _leaf_from_spec(spec: Any, default_name: str, where: str) -> _Leaf:
    shape = getattr(spec, "shape", None)
    if shape is None:
        raise ValueError(f"{where}: input spec {spec!r} has no shape.")
    try:
        shape = tuple(None if d is None else int(d) for d in shape)
    except TypeError:
        raise ValueError(f"{where}: input spec {spec!r} has an unknown rank.") from None
    dtype = getattr(spec, "dtype", None)
    if dtype is None:
        import keras

        dtype = keras.config.floatx()
    dtype = np.dtype(getattr(dtype, "name", dtype)).name
    name = getattr(spec, "name", None) or default_name
    return _Leaf(name=_sanitize(name), shape=shape, dtype=dtype)


def _spec_structure(structure: Any, path: tuple[str, ...], where: str, leaves: list[_Leaf]) -> Any:
    if isinstance(structure, dict):
        return {
            key: _spec_structure(value, (*path, str(key)), where, leaves)
            for key, value in structure.items()
        }
    if isinstance(structure, (list, tuple)):
        items = [
            _spec_structure(value, (*path, str(i)), where, leaves)
            for i, value in enumerate(structure)
        ]
        return items if isinstance(structure, list) else tuple(items)
    leaf = _leaf_from_spec(structure, "_".join(path), where)
    leaves.append(leaf)
    return leaf


def resolve_endpoints(model: Any) -> list[_Endpoint]:
    """Lists the endpoints to export for `model`.

    Uses `model.export_endpoints()` when defined, else one `"serve"` endpoint
    calling the model on its declared inputs (Functional and Sequential models).

    Args:
        model: A loaded Keras model.

    Returns:
        The endpoints, with unique, sanitized input names.

    Raises:
        ValueError: No endpoint can be derived, or an endpoint is malformed.
    """
    class_name = type(model).__name__
    if hasattr(model, "export_endpoints"):
        declared = model.export_endpoints()
        if not isinstance(declared, dict) or not declared:
            raise ValueError(
                f"{class_name}.export_endpoints() must return a non-empty dict "
                f"{{name: (function, [keras.InputSpec, ...])}}, got {declared!r}."
            )
        items = list(declared.items())
    else:
        items = [("serve", (model.__call__, [_declared_inputs(model)]))]

    endpoints = []
    for name, entry in items:
        where = f"{class_name} endpoint {name!r}"
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{where}: endpoint names must be Python identifiers.")
        if not isinstance(entry, (tuple, list)) or len(entry) != 2 or not callable(entry[0]):
            raise ValueError(f"{where}: expected a (function, input_signature) pair.")
        fn, signature = entry
        if not isinstance(signature, (list, tuple)):
            signature = [signature]
        arg_names = _positional_names(fn)
        leaves: list[_Leaf] = []
        structure = [
            _spec_structure(
                spec,
                (arg_names[i] if i < len(arg_names) else f"input_{i}",),
                where,
                leaves,
            )
            for i, spec in enumerate(signature)
        ]
        if not leaves:
            raise ValueError(f"{where}: the input signature is empty.")
        seen: set[str] = set()
        for leaf in leaves:
            base, k = leaf.name, 1
            while leaf.name in seen:
                leaf.name, k = f"{base}_{k}", k + 1
            seen.add(leaf.name)
        endpoints.append(_Endpoint(name=name, fn=fn, structure=structure, leaves=leaves))
    return endpoints


def _declared_inputs(model: Any) -> Any:
    """The input structure of a Functional or Sequential model."""
    import keras

    structure = None
    if not isinstance(model, keras.Sequential):
        try:
            structure = model.input
        except (AttributeError, ValueError):
            structure = None
    if structure is None:
        try:
            structure = model.inputs
        except (AttributeError, ValueError):
            structure = None
    if structure is None or (isinstance(structure, (list, tuple, dict)) and not structure):
        raise ValueError(
            f"Cannot export {type(model).__name__}: it has no `export_endpoints()` "
            "method and no declared inputs (only Functional and Sequential models "
            "have those). Define `export_endpoints(self)` returning "
            "{name: (function, [keras.InputSpec(shape=(None, ...), dtype='float32')])}."
        )
    if isinstance(structure, (list, tuple)) and len(structure) == 1:
        structure = structure[0]
    return structure


def make_samples(model: Any, endpoint: _Endpoint, num: int, seed: int) -> tuple[list, str]:
    """Draws the verification inputs of one endpoint.

    Uses `model.export_samples(name, num, seed)` when the model defines it (and
    it does not return `None`), else standard normal values with batch `num`.

    Args:
        model: The loaded model.
        endpoint: The endpoint to draw inputs for.
        num: Batch size.
        seed: Seed of `np.random.default_rng`.

    Returns:
        The flat list of input arrays (one per leaf) and where they came from
        (`"export_samples"` or `"standard_normal"`).

    Raises:
        ValueError: The samples do not fit the input signature, or default
            samples cannot be drawn for it.
    """
    where = f"{type(model).__name__} endpoint {endpoint.name!r}"
    raw = None
    if hasattr(model, "export_samples"):
        raw = model.export_samples(endpoint.name, num, seed)
    if raw is not None:
        import keras

        values = (
            [raw]
            if len(endpoint.leaves) == 1 and not isinstance(raw, (list, tuple, dict))
            else _flatten(raw)
        )
        if len(values) != len(endpoint.leaves):
            raise ValueError(
                f"{where}: export_samples returned {len(values)} arrays, the "
                f"signature has {len(endpoint.leaves)} inputs."
            )
        arrays = []
        for leaf, value in zip(endpoint.leaves, values):
            if not isinstance(value, np.ndarray):
                value = keras.ops.convert_to_numpy(value)
            array = np.asarray(value).astype(leaf.dtype, copy=False)
            if array.ndim != len(leaf.shape) or any(
                d is not None and d != a for d, a in zip(leaf.shape, array.shape)
            ):
                raise ValueError(
                    f"{where}: export_samples gave input {leaf.name!r} shape "
                    f"{array.shape}, which does not fit {leaf.shape}."
                )
            arrays.append(array)
        return arrays, "export_samples"

    rng = np.random.default_rng(seed)
    arrays = []
    for leaf in endpoint.leaves:
        if not leaf.shape:
            raise ValueError(f"{where}: input {leaf.name!r} is a scalar; no batch dimension.")
        batch = num if leaf.shape[0] is None else leaf.shape[0]
        if any(d is None for d in leaf.shape[1:]):
            raise ValueError(
                f"{where}: input {leaf.name!r} has shape {leaf.shape} with an unknown "
                "non-batch dimension; define `export_samples(self, name, num, seed)`."
            )
        if not np.issubdtype(np.dtype(leaf.dtype), np.floating):
            raise ValueError(
                f"{where}: input {leaf.name!r} has dtype {leaf.dtype}; random samples "
                "are only drawn for float inputs. Define "
                "`export_samples(self, name, num, seed)`."
            )
        shape = (batch, *leaf.shape[1:])
        arrays.append(rng.standard_normal(shape).astype(leaf.dtype))
    return arrays, "standard_normal"


def keras_outputs(endpoint: _Endpoint, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Calls an endpoint function of a Keras model on numpy inputs.

    Args:
        endpoint: The endpoint.
        arrays: Its flat inputs, as returned by `make_samples`.

    Returns:
        The outputs as numpy arrays, keyed like the SavedModel and TFLite
        signature outputs (`output_0`, `output_1`, ... or the dict keys).
    """
    import keras

    tensors = iter([keras.ops.convert_to_tensor(a) for a in arrays])
    args = [_pack(arg, tensors) for arg in endpoint.structure]
    return _canonical_outputs(endpoint.fn(*args), endpoint.name)


def _canonical_outputs(outputs: Any, name: str) -> dict[str, np.ndarray]:
    import keras

    if isinstance(outputs, dict):
        items = [(str(k), v) for k, v in outputs.items()]
    elif isinstance(outputs, (list, tuple)):
        items = [(f"output_{i}", v) for i, v in enumerate(outputs)]
    else:
        items = [("output_0", outputs)]
    result = {}
    for key, value in items:
        if isinstance(value, (dict, list, tuple)):
            raise ValueError(
                f"Endpoint {name!r} returns nested outputs; return a tensor, a "
                "tuple/list of tensors or a flat dict of tensors."
            )
        result[key] = np.asarray(keras.ops.convert_to_numpy(value))
    return result


def _max_abs_diff(expected: np.ndarray, actual: np.ndarray) -> float:
    """Largest absolute difference; `inf` on a shape mismatch or a lone NaN.

    >>> _max_abs_diff(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
    0.5
    >>> _max_abs_diff(np.zeros((2, 3)), np.zeros((3, 2)))
    inf
    """
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.shape != actual.shape:
        return math.inf
    if expected.size == 0:
        return 0.0
    diff = np.abs(expected - actual)
    both_nan = np.isnan(expected) & np.isnan(actual)
    diff = np.where(both_nan, 0.0, diff)
    same_inf = np.isinf(expected) & (expected == actual)
    diff = np.where(same_inf, 0.0, diff)
    if np.isnan(diff).any():
        return math.inf
    return float(diff.max())


def _compare(
    reference: dict[str, np.ndarray], actual: dict[str, np.ndarray]
) -> tuple[float, str | None]:
    """Max difference over all outputs, and an error note if they don't match."""
    if set(reference) != set(actual):
        return math.inf, (
            f"outputs {sorted(actual)} do not match the Keras outputs {sorted(reference)}"
        )
    worst, note = 0.0, None
    for key in reference:
        diff = _max_abs_diff(reference[key], actual[key])
        if np.shape(reference[key]) != np.shape(actual[key]):
            note = (
                f"output {key!r} has shape {np.shape(actual[key])}, Keras gives "
                f"{np.shape(reference[key])}"
            )
        worst = max(worst, diff)
    return worst, note


# --------------------------------------------------------------------------- #
# The TensorFlow-side export (in process on TF, or in the worker)
# --------------------------------------------------------------------------- #


def _import_project_models() -> None:
    """Imports `mp_keras.models` so its registered classes can be deserialized."""
    try:
        importlib.import_module("mp_keras.models")
    except ImportError as error:
        if getattr(error, "name", None) not in ("mp_keras.models", "mp_keras"):
            warnings.warn(
                f"Could not import mp_keras.models ({error}); its custom models will not load.",
                stacklevel=2,
            )


def _import_modules(modules: Sequence[str], *, optional: Sequence[str] = ()) -> None:
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


def _load_model(model_path: Path) -> Any:
    import keras

    _import_project_models()
    try:
        return keras.saving.load_model(model_path, compile=False)
    except Exception as error:
        raise ValueError(
            f"Could not load {model_path} with Keras {keras.__version__} on the "
            f"{keras.backend.backend()} backend: {error}. Custom classes must be "
            "registered with keras.saving.register_keras_serializable in an "
            "importable module (see export_model's `imports`)."
        ) from error


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _convert_tflite(saved_model_dir: Path, signature_keys: list[str]) -> tuple[bytes, bool]:
    """Converts with builtin ops; falls back to Select TF ops if that fails."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=signature_keys
    )
    try:
        return converter.convert(), False
    except Exception as builtin_error:
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(saved_model_dir), signature_keys=signature_keys
        )
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS,
            tf.lite.OpsSet.SELECT_TF_OPS,
        ]
        try:
            return converter.convert(), True
        except Exception:
            raise builtin_error from None


def _build_export(
    model_path: Path,
    staging: Path,
    *,
    tolerance: float,
    num_samples: int,
    seed: int,
    source_backend: str = "tensorflow",
    samples_out: dict | None = None,
) -> dict:
    """Writes and verifies the artifacts and manifest in `staging` (TF backend).

    Args:
        model_path: Checked `.keras` path.
        staging: Empty folder to write into.
        tolerance: Accepted max absolute difference.
        num_samples: Verification batch size.
        seed: Verification seed.
        source_backend: Backend of the process that asked for the export.
        samples_out: If given, filled with the verification inputs and every
            artifact's outputs (`{endpoint: {"inputs": [...], artifact: {...}}}`).

    Returns:
        The manifest (also written to `staging/manifest.json`).
    """
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("The export must run on the TensorFlow backend.")
    from ai_edge_litert.interpreter import Interpreter

    model = _load_model(model_path)
    endpoints = resolve_endpoints(model)
    names = [e.name for e in endpoints]

    saved_model_dir = staging / SAVED_MODEL_DIR
    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint in endpoints:
        specs = iter(
            [tf.TensorSpec(leaf.shape, leaf.dtype, name=leaf.name) for leaf in endpoint.leaves]
        )
        signature = [_pack(arg, specs) for arg in endpoint.structure]
        archive.add_endpoint(endpoint.name, endpoint.fn, signature)
    archive.write_out(str(saved_model_dir), verbose=False)

    flatbuffer, select_tf_ops = _convert_tflite(saved_model_dir, names)
    tflite_path = staging / TFLITE_NAME
    tflite_path.write_bytes(flatbuffer)

    loaded = tf.saved_model.load(str(saved_model_dir))
    interpreter = Interpreter(model_path=str(tflite_path))

    entries: dict[str, dict[str, dict]] = {artifact: {} for artifact in _ARTIFACTS}
    sample_sources = {}
    for endpoint in endpoints:
        arrays, sample_sources[endpoint.name] = make_samples(model, endpoint, num_samples, seed)
        feed = {leaf.name: array for leaf, array in zip(endpoint.leaves, arrays)}
        reference = keras_outputs(endpoint, arrays)
        order = list(reference)

        signature = loaded.signatures[endpoint.name]
        saved_out = {k: v.numpy() for k, v in signature(**feed).items()}
        out_specs = signature.structured_outputs
        in_specs = signature.structured_input_signature[1]
        entries["saved_model"][endpoint.name] = _endpoint_entry(
            [
                (leaf.name, in_specs[leaf.name].shape.as_list(), in_specs[leaf.name].dtype.name)
                for leaf in endpoint.leaves
            ],
            [
                (k, out_specs[k].shape.as_list(), out_specs[k].dtype.name)
                for k in _ordered(order, out_specs)
            ],
            reference,
            saved_out,
        )

        try:
            runner = interpreter.get_signature_runner(endpoint.name)
            lite_out = runner(**feed)
        except (RuntimeError, ValueError) as error:
            hint = " (the model needs Select TF ops)" if select_tf_ops else ""
            raise RuntimeError(
                f"The TFLite endpoint {endpoint.name!r} failed to run in ai_edge_litert"
                f"{hint}: {error}"
            ) from error
        lite_in_details = runner.get_input_details()
        lite_out_details = runner.get_output_details()
        entries["tflite"][endpoint.name] = _endpoint_entry(
            [_lite_spec(leaf.name, lite_in_details[leaf.name]) for leaf in endpoint.leaves],
            [_lite_spec(k, lite_out_details[k]) for k in _ordered(order, lite_out_details)],
            reference,
            lite_out,
        )
        if samples_out is not None:
            samples_out[endpoint.name] = {
                "inputs": arrays,
                "saved_model": saved_out,
                "tflite": {k: np.asarray(v) for k, v in lite_out.items()},
            }

    import ai_edge_litert

    manifest = {
        "format_version": MANIFEST_FORMAT_VERSION,
        "source": str(model_path),
        "source_sha256": _sha256(model_path),
        "model_class": type(model).__name__,
        "model_registered_name": keras.saving.get_registered_name(type(model)),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "litert_version": getattr(ai_edge_litert, "__version__", None),
        "source_backend": source_backend,
        "export_backend": "tensorflow",
        "reference_backends": ["tensorflow"],
        "tolerance": tolerance,
        "num_samples": num_samples,
        "seed": seed,
        "sample_source": sample_sources,
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
    _judge(manifest)
    _write_json(staging / MANIFEST_NAME, manifest)
    return manifest


def _ordered(preferred: list[str], available: Any) -> list[str]:
    keys = list(available)
    return [k for k in preferred if k in keys] + sorted(k for k in keys if k not in preferred)


def _lite_spec(name: str, details: dict) -> tuple[str, list, str]:
    shape = details.get("shape_signature", details["shape"])
    return (
        name,
        [None if int(d) < 0 else int(d) for d in shape],
        np.dtype(details["dtype"]).name,
    )


def _endpoint_entry(
    inputs: list[tuple],
    outputs: list[tuple],
    reference: dict[str, np.ndarray],
    actual: dict[str, np.ndarray],
) -> dict:
    diff, note = _compare(reference, {k: np.asarray(v) for k, v in actual.items()})
    entry = {
        "inputs": [{"name": n, "shape": s, "dtype": d} for n, s, d in inputs],
        "outputs": [{"name": n, "shape": s, "dtype": d} for n, s, d in outputs],
        "max_abs_diff": _json_float(diff),
        "max_abs_diff_by_backend": {"tensorflow": _json_float(diff)},
    }
    if note:
        entry["errors"] = [f"tensorflow: {note}"]
    return entry


def _judge(manifest: dict) -> None:
    """Sets `passed` and `failures` from the recorded differences."""
    tolerance = manifest["tolerance"]
    failures = []
    for artifact in manifest["artifacts"]:
        for name, entry in artifact["endpoints"].items():
            by_backend = entry["max_abs_diff_by_backend"]
            for backend, diff in by_backend.items():
                if diff is None or diff > tolerance:
                    shown = "not comparable" if diff is None else f"{diff:.3g}"
                    tf_diff = by_backend.get("tensorflow")
                    hint = (
                        f"; it matches Keras on tensorflow, so {backend} computes "
                        "differently (backend-specific code, or TF32/GPU numerics)"
                        if backend != "tensorflow" and tf_diff is not None and tf_diff <= tolerance
                        else ""
                    )
                    failures.append(
                        f"{artifact['format']} endpoint {name!r}: max abs diff {shown} "
                        f"> tolerance {tolerance:g} (vs Keras on {backend}{hint})"
                    )
            diffs = list(by_backend.values())
            worst = None if None in diffs else max(diffs)
            entry["max_abs_diff"] = worst
            for note in entry.get("errors", []):
                failures.append(f"{artifact['format']} endpoint {name!r}: {note}")
    manifest["passed"] = not failures
    manifest["failures"] = failures


def _parity_message(manifest: dict, manifest_path: Path) -> str:
    lines = "; ".join(manifest.get("failures") or ["verification failed"])
    return f"Export parity check failed: {lines}. Manifest: {manifest_path}"


# --------------------------------------------------------------------------- #
# Worker subprocess (calling process on JAX or PyTorch)
# --------------------------------------------------------------------------- #

_EXCEPTION_TYPES: dict[str, type[BaseException]] = {
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
        ExportParityError,
    )
}


def _registered_modules() -> list[str]:
    """Modules defining the objects registered with Keras in this process."""
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
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "tensorflow"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The export needs no GPU; hiding it keeps TF from grabbing memory the calling
    # (JAX/PyTorch) process holds, and keeps the TF reference on CPU like TFLite.
    env["CUDA_VISIBLE_DEVICES"] = "-1"
    paths = [os.getcwd() if not p else p for p in sys.path]
    paths += env.get("PYTHONPATH", "").split(os.pathsep)
    unique = []
    for p in paths:
        if p and p not in unique and os.path.isdir(p):
            unique.append(p)
    env["PYTHONPATH"] = os.pathsep.join(unique)
    return env


def _export_via_worker(
    model_path: Path,
    staging: Path,
    *,
    backend: str,
    tolerance: float,
    num_samples: int,
    seed: int,
    imports: Sequence[str],
) -> dict:
    """Runs the export in a TensorFlow subprocess, then re-checks on `backend`."""
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
        result = None
        if result_path.exists():
            try:
                result = json.loads(result_path.read_text(encoding="utf-8"))
            except ValueError:
                result = None
        if result is None:
            tail = "\n".join(process.stderr.strip().splitlines()[-30:])
            raise RuntimeError(
                f"The export worker exited with code {process.returncode} without a "
                f"result. Command: {' '.join(command)}\nstderr (tail):\n{tail}"
            )
        if not result.get("ok"):
            raise _rebuild_exception(result)
        manifest = result["manifest"]
        with np.load(samples_path) as archive:
            samples = _unpack_samples(result["samples"], archive)
    _cross_check(model_path, manifest, samples, backend)
    _write_json(staging / MANIFEST_NAME, manifest)
    return manifest


def _rebuild_exception(result: dict) -> BaseException:
    cls = _EXCEPTION_TYPES.get(result.get("type", ""), RuntimeError)
    message = result.get("message", "unknown error")
    if cls is RuntimeError and result.get("type") not in (None, "RuntimeError"):
        message = f"{result['type']}: {message}"
    error = cls(message)
    worker_traceback = result.get("traceback")
    if worker_traceback and hasattr(error, "add_note"):
        error.add_note("Export worker traceback:\n" + worker_traceback)
    return error


def _pack_samples(samples: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """Splits `samples_out` into a JSON index and arrays for `np.savez`."""
    arrays: dict[str, np.ndarray] = {}

    def keep(array: np.ndarray) -> str:
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(array)
        return key

    index = {
        name: {
            "inputs": [keep(a) for a in entry["inputs"]],
            **{
                artifact: {k: keep(v) for k, v in entry[artifact].items()}
                for artifact in _ARTIFACTS
            },
        }
        for name, entry in samples.items()
    }
    return index, arrays


def _unpack_samples(index: dict, archive: Any) -> dict:
    return {
        name: {
            "inputs": [archive[k] for k in entry["inputs"]],
            **{
                artifact: {k: archive[v] for k, v in entry[artifact].items()}
                for artifact in _ARTIFACTS
            },
        }
        for name, entry in index.items()
    }


def _cross_check(model_path: Path, manifest: dict, samples: dict, backend: str) -> None:
    """Compares the worker's artifact outputs with the model on `backend`."""
    model = _load_model(model_path)
    endpoints = {e.name: e for e in resolve_endpoints(model)}
    for artifact in manifest["artifacts"]:
        for name, entry in artifact["endpoints"].items():
            endpoint = endpoints.get(name)
            if endpoint is None or name not in samples:
                entry["max_abs_diff_by_backend"][backend] = None
                entry.setdefault("errors", []).append(
                    f"{backend}: endpoint missing when loaded on {backend}"
                )
                continue
            if "reference" not in samples[name]:
                samples[name]["reference"] = keras_outputs(endpoint, samples[name]["inputs"])
            actual = samples[name][artifact["format"]]
            diff, note = _compare(samples[name]["reference"], actual)
            entry["max_abs_diff_by_backend"][backend] = _json_float(diff)
            if note:
                entry.setdefault("errors", []).append(f"{backend}: {note}")
    manifest["reference_backends"] = ["tensorflow", backend]
    _judge(manifest)


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
        _import_modules(imports, optional=optional_imports)
        samples: dict = {}
        manifest = _build_export(
            check_model_path(model_path),
            Path(staging),
            tolerance=_check_tolerance(tolerance),
            num_samples=_check_positive_int(num_samples, "num_samples"),
            seed=_check_int(seed, "seed"),
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
    _write_json(Path(result_path), result)
    return code
