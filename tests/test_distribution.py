"""Data-parallel training through the engine on 2 simulated CPU devices (JAX backend).

The checks run in a subprocess whose XLA was started with 2 host devices; they compare a
`DataParallel` run with a one-device run of the same model, data and seeds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from mp_keras.distribution import check_batch_size, data_parallel
from tests.harness import REPO

needs_jax = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="keras.distribution data parallelism is JAX's"
)

SCRIPT = r"""
import json, sys
import keras, numpy as np
from mp_keras import data
from mp_keras.distribution import data_parallel
from mp_keras.models import GAN, VAE

out = sys.argv[1]
assert len(keras.distribution.list_devices()) == 2
rng = np.random.default_rng(0)
x_vae = (rng.random((96, 4, 4, 1)) > 0.5).astype("float32")
x_gan = rng.normal(size=(96, 2)).astype("float32")

def run(name, devices):
    keras.utils.set_random_seed(0)
    distribution = data_parallel(devices, batch_size=32)
    if name == "vae":
        model = VAE(input_shape=(4, 4, 1), latent_dim=2, hidden_units=(16,), seed=1)
        model.compile(optimizer="adam")
        x = x_vae
    else:
        model = GAN(data_shape=(2,), latent_dim=2, generator_units=(16,),
                    discriminator_units=(16,), discriminator_steps=2, seed=1)
        model.compile(optimizer={"discriminator": "adam", "generator": "adam"})
        x = x_gan
    batches = data.pipeline(x, batch_size=32, seed=0, epochs=3)
    history = model.fit(batches, epochs=3, steps_per_epoch=3, verbose=0).history
    layouts = {}
    if distribution is not None:
        def layout(variables):
            return [[len(v.value.sharding.device_set), v.value.sharding.is_fully_replicated]
                    for v in variables]
        layouts["weights"] = layout(model.trainable_variables)
        for optimizer in getattr(model.optimizer, "optimizers", [model.optimizer]):
            layouts[optimizer.name] = layout(optimizer.variables)
        model.save(f"{out}/{name}.keras")
        probe = np.linspace(-1, 1, 2 * model.latent_dim).reshape(2, -1).astype("float32")
        np.save(f"{out}/{name}_probe.npy", probe)
        reply = model.decode(probe) if name == "vae" else model(probe)
        np.save(f"{out}/{name}_outputs.npy", keras.ops.convert_to_numpy(reply))
        keras.distribution.set_distribution(None)
    return history, layouts

report = {}
for name in ("vae", "gan"):
    one, _ = run(name, 1)
    two, layouts = run(name, 2)
    report[name] = {"one": one, "two": two, "layouts": layouts}
try:
    run("vae", 3)
except ValueError as error:
    report["three"] = str(error)
# the command line's path: a recipe whose test split (297 images) is not whole batches
from mp_keras.training import train
metrics = train("pixelcnn", f"{out}/pixelcnn", epochs=1, batch_size=64, devices=2)
report["train"] = {key: metrics[key] for key in ("devices", "test_examples", "nll")}
print("REPORT", json.dumps(report))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("dp")
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        PYTHONPATH=str(REPO),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))
    return out, json.loads(line[len("REPORT ") :])


@needs_jax
@pytest.mark.parametrize("name", ["vae", "gan"])
def test_two_devices_follow_the_one_device_trajectory(report, name):
    _, runs = report
    one, two = runs[name]["one"], runs[name]["two"]
    assert one.keys() == two.keys()
    for key in one:
        # Same global batch, same seeds: only the order of the cross-device sums differs.
        np.testing.assert_allclose(two[key], one[key], rtol=1e-4, atol=1e-5, err_msg=key)


@needs_jax
@pytest.mark.parametrize("name", ["vae", "gan"])
def test_weights_and_every_optimizers_slots_are_replicated(report, name):
    _, runs = report
    layouts = runs[name]["layouts"]
    optimizers = set(layouts) - {"weights"}
    if name == "gan":  # one optimizer per phase, in the engine's OptimizerGroup
        assert optimizers == {"discriminator", "generator"}
    else:
        assert len(optimizers) == 1
    for group, variables in layouts.items():
        # Adam: iterations, learning rate and two slots per weight, all on both devices.
        assert len(variables) >= 2, group
        assert all(devices == 2 and replicated for devices, replicated in variables), group


@needs_jax
@pytest.mark.parametrize("name", ["vae", "gan"])
def test_a_two_device_model_loads_on_one_device(report, name):
    import mp_keras  # noqa: F401

    out, _ = report
    assert len(keras.distribution.list_devices()) == 1
    model = keras.saving.load_model(out / f"{name}.keras")
    probe = np.load(out / f"{name}_probe.npy")
    outputs = model.decode(probe) if name == "vae" else model(probe)
    expected = np.load(out / f"{name}_outputs.npy")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(outputs), expected, atol=1e-6)


@needs_jax
def test_uneven_batches_and_missing_devices_are_refused(report):
    _, runs = report
    assert "3 devices were asked for but JAX sees 2" in runs["three"]
    with pytest.raises(ValueError, match="batch size 33 does not split evenly over 2 devices"):
        check_batch_size(33, 2)


@needs_jax
def test_a_recipe_trains_on_two_devices_and_scores_whole_test_batches(report):
    # `mp-keras train --devices 2`: the 297 test images were refused as an uneven batch
    # before; now the run keeps the 256 that fill whole batches of 64 and scores them.
    _, runs = report
    assert runs["train"]["devices"] == 2 and runs["train"]["test_examples"] == 256
    assert np.isfinite(runs["train"]["nll"])


def test_other_backends_say_to_use_jax():
    if keras.backend.backend() == "jax":
        pytest.skip("this is the JAX backend")
    with pytest.raises(ValueError, match="Data-parallel training runs on the JAX backend"):
        data_parallel(2, batch_size=64)
    assert data_parallel(1) is None
