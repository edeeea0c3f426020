"""Export a saved `.keras` model to a SavedModel and a TFLite file, and verify both.

The export always runs on the TensorFlow backend (`mp_keras.export.artifacts`):
in this process when it uses TensorFlow, else in a worker subprocess
(`mp_keras.export.worker`), after which the artifacts are also checked against
the model as it runs on this process's own backend.

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

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from mp_keras.export.artifacts import (
    MANIFEST_NAME,
    SAVED_MODEL_DIR,
    TFLITE_NAME,
    build_export,
    check_model_path,
    check_settings,
    import_modules,
)

# Re-exported, as it was defined here before the package was split.
from mp_keras.export.endpoints import resolve_endpoints as resolve_endpoints
from mp_keras.export.worker import export_via_worker, reference_via_subprocess
from mp_keras.io import replace_directory, temporary_sibling, write_json

_EXPORT_ENTRIES = frozenset({MANIFEST_NAME, SAVED_MODEL_DIR, TFLITE_NAME})


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


def export_model(
    model_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    tolerance: float = 1e-4,
    num_samples: int = 8,
    seed: int = 0,
    imports: Sequence[str] = (),
    overwrite: bool = False,
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
    normal distribution. A model's optional `export_metadata()` (a JSON-able dict, e.g.
    a diffusion model's number of steps) is written into the manifest as `metadata`.

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
        overwrite: Replace `out_dir` even if it holds something other than an
            export. The old folder stays whole until the new export is complete.

    Returns:
        The manifest, as also written to `out_dir/manifest.json`.

    Raises:
        FileNotFoundError: `model_path` does not exist.
        ValueError: `model_path` is not a `.keras` file, or the model has no
            usable endpoint or input signature, or an argument is invalid.
        FileExistsError: `out_dir` exists and holds something other than an
            export (and `overwrite` is false).
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
    tolerance, num_samples, seed = check_settings(tolerance, num_samples, seed)
    imports = [imports] if isinstance(imports, str) else list(imports)
    if not overwrite:
        _check_out_dir(out_dir)

    import keras

    backend = keras.backend.backend()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = temporary_sibling(out_dir)
    staging.mkdir()
    try:
        if backend == "tensorflow":
            import_modules(imports)
            samples: dict = {}
            manifest = build_export(
                model_path,
                staging,
                tolerance=tolerance,
                num_samples=num_samples,
                seed=seed,
                samples_out=samples,
            )
        else:
            manifest, samples = export_via_worker(
                model_path,
                staging,
                backend=backend,
                tolerance=tolerance,
                num_samples=num_samples,
                seed=seed,
                imports=imports,
            )
        trained_on = manifest["training_backend"]
        if trained_on is not None and trained_on not in manifest["reference_backends"]:
            reference_via_subprocess(model_path, manifest, samples, trained_on, imports)
        _judge(manifest)
        write_json(staging / MANIFEST_NAME, manifest)
        _finalize(staging, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not manifest["passed"]:
        manifest_path = out_dir / MANIFEST_NAME
        failures = "; ".join(manifest["failures"])
        raise ExportParityError(
            f"Export parity check failed: {failures}. Manifest: {manifest_path}",
            manifest,
            manifest_path,
        )
    return manifest


def _judge(manifest: dict) -> None:
    """Sets `passed` and `failures`, and each entry's worst `max_abs_diff`.

    An endpoint fails when its difference from Keras on any backend is above
    the tolerance or not comparable (`None`), or when it recorded errors.
    """
    tolerance = manifest["tolerance"]
    failures = []
    for artifact in manifest["artifacts"]:
        for name, entry in artifact["endpoints"].items():
            where = f"{artifact['format']} endpoint {name!r}"
            by_backend = entry["max_abs_diff_by_backend"]
            tf_diff = by_backend.get("tensorflow")
            for backend, diff in by_backend.items():
                if diff is not None and diff <= tolerance:
                    continue
                shown = "not comparable" if diff is None else f"{diff:.3g}"
                hint = (
                    f"; it matches Keras on tensorflow, so {backend} computes "
                    "differently (backend-specific code, or TF32/GPU numerics)"
                    if backend != "tensorflow" and tf_diff is not None and tf_diff <= tolerance
                    else ""
                )
                failures.append(
                    f"{where}: max abs diff {shown} > tolerance {tolerance:g} "
                    f"(vs Keras on {backend}{hint})"
                )
            diffs = list(by_backend.values())
            entry["max_abs_diff"] = None if None in diffs else max(diffs)
            failures += [f"{where}: {note}" for note in entry.get("errors", [])]
    manifest["passed"] = not failures
    manifest["failures"] = failures


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


def _finalize(staging: Path, out_dir: Path, overwrite: bool) -> None:
    """Moves a complete staging folder to `out_dir`, replacing an old export."""
    if not overwrite:
        _check_out_dir(out_dir)  # again: the folder may have changed during the export
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"Export folder {out_dir} exists and is not a folder.")
    replace_directory(staging, out_dir)
