"""Export trained `.keras` models to SavedModel and TFLite, with parity checks.

`export_model` loads a `.keras` file (saved on any backend), writes
`saved_model/`, `model.tflite` and `manifest.json` through the TensorFlow
backend, and checks every endpoint of both artifacts against the Keras model.
From a shell: `python -m mp_keras.export MODEL.keras OUT_DIR`.

Importing this package does not import Keras, so it does not fix the backend.

Example:

>>> from mp_keras.export import ExportParityError, export_model
>>> issubclass(ExportParityError, RuntimeError)
True
"""

from mp_keras.export.artifacts import MANIFEST_NAME, SAVED_MODEL_DIR, TFLITE_NAME
from mp_keras.export.exporter import ExportParityError, export_model

__all__ = [
    "MANIFEST_NAME",
    "SAVED_MODEL_DIR",
    "TFLITE_NAME",
    "ExportParityError",
    "export_model",
]
