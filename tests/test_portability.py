"""A model trained on this backend loads on the other two and exports to TFLite."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.export import export_model
from mp_keras.models import VAE
from tests.harness import BACKENDS, run_python, to_numpy

LOAD_AND_RUN = """
import numpy as np, keras, mp_keras.models
model = keras.saving.load_model({path!r})
x = np.load({inputs!r})
mean, log_var = model.encode(x["x"])
out = dict(call=model(x["x"]), decode=model.decode(x["z"]), mean=mean, log_var=log_var)
np.savez({result!r}, **{{k: keras.ops.convert_to_numpy(v) for k, v in out.items()}})
print(type(model.optimizer).__name__, int(keras.ops.convert_to_numpy(model.optimizer.iterations)))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("portable")
    keras.utils.set_random_seed(0)
    digits = data.load("digits_binarized", "train").x
    model = VAE(input_shape=(8, 8, 1), latent_dim=3, hidden_units=(64, 32), seed=0)
    model.compile(optimizer="adam")
    model.fit(digits, epochs=2, batch_size=64, verbose=0)
    model.save(folder / "vae.keras")
    inputs = {"x": digits[:16], "z": np.random.default_rng(0).normal(size=(16, 3)).astype("f4")}
    np.savez(folder / "inputs.npz", **inputs)
    mean, log_var = model.encode(inputs["x"])
    reference = {
        "call": to_numpy(model(inputs["x"])),
        "decode": to_numpy(model.decode(inputs["z"])),
        "mean": to_numpy(mean),
        "log_var": to_numpy(log_var),
    }
    return folder, reference, int(to_numpy(model.optimizer.iterations))


@pytest.mark.parametrize("other", BACKENDS)
def test_loads_on_the_other_backends(trained, other):
    if other == keras.backend.backend():
        pytest.skip("same backend: covered by the .keras round trip in test_vae")
    folder, reference, iterations = trained
    result = folder / f"{other}.npz"
    code = LOAD_AND_RUN.format(
        path=str(folder / "vae.keras"), inputs=str(folder / "inputs.npz"), result=str(result)
    )
    stdout = run_python(code, backend=other)
    assert stdout.split()[-2:] == ["Adam", str(iterations)]  # optimizer state came along
    outputs = np.load(result)
    for key, value in reference.items():
        np.testing.assert_allclose(outputs[key], value, atol=1e-5, err_msg=f"{key} on {other}")


def test_exports_to_saved_model_and_tflite(trained):
    folder, _, _ = trained
    manifest = export_model(folder / "vae.keras", folder / "export")
    assert manifest["passed"]
    formats = {a["format"]: a for a in manifest["artifacts"]}
    assert set(formats) == {"saved_model", "tflite"}
    for artifact in formats.values():
        assert artifact["endpoints"]["decode"]["max_abs_diff"] <= 1e-4
    assert (folder / "export" / "model.tflite").stat().st_size > 0
    on_disk = json.loads((folder / "export" / "manifest.json").read_text())
    assert on_disk["passed"] is True
