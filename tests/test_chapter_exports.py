"""Every model of chapters 1.3-6.4 exports to SavedModel + TFLite with parity.

On TensorFlow the export runs in this process (a few seconds per model), so every model
is exported; on JAX and PyTorch each export starts a TensorFlow worker (about ten
seconds), so one model with every kind of endpoint input (images and labels) is
exported from them, compared against the model on the training backend.
"""

from __future__ import annotations

import keras
import pytest

from mp_keras import models
from mp_keras.export import export_model

TINY = {
    "FVSBN": {"input_shape": (3, 3, 1)},
    "NADE": {"input_shape": (3, 3, 1), "hidden_units": 8},
    "MADE": {
        "input_shape": (3, 3, 1),
        "hidden_units": (8,),
        "num_masks": 2,
        "direct_connections": True,
    },
    "PixelRNN": {"input_shape": (4, 4, 1), "hidden_units": 4, "num_layers": 1},
    "PixelCNN": {"input_shape": (4, 4, 1), "filters": 4, "num_layers": 1},
    "GatedPixelCNN": {"input_shape": (4, 4, 1), "filters": 4, "num_layers": 2, "num_classes": 3},
    "LinearAutoencoder": {"input_shape": (6,), "latent_dim": 2},
    "Autoencoder": {"input_shape": (4, 4, 1), "latent_dim": 3},
    "GradientDescentMLP": {"input_shape": (4,), "num_classes": 3, "hidden_units": (5,)},
}
ON_EVERY_BACKEND = {"GatedPixelCNN"}


@pytest.mark.parametrize("name", sorted(TINY))
def test_exports_with_parity(name, tmp_path):
    if keras.backend.backend() != "tensorflow" and name not in ON_EVERY_BACKEND:
        pytest.skip("exported on TensorFlow (in process); one model per other backend")
    model = getattr(models, name)(**TINY[name])
    model.save(tmp_path / "model.keras")
    manifest = export_model(tmp_path / "model.keras", tmp_path / "export")
    assert manifest["passed"], manifest
    assert (tmp_path / "export" / "model.tflite").stat().st_size > 0
    wanted = set(model.export_endpoints())
    for artifact in manifest["artifacts"]:  # the SavedModel and the TFLite file
        assert set(artifact["endpoints"]) == wanted, artifact
        assert all(e["max_abs_diff"] <= 1e-4 for e in artifact["endpoints"].values())
