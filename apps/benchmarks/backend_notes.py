"""The measurements behind three remarks in docs/benchmarks.md and docs/distributed.md.

    python apps/benchmarks/backend_notes.py mirrored        # TF MirroredStrategy vs 1 device
    python apps/benchmarks/backend_notes.py torch-compile   # compiled engine step == eager
    python apps/benchmarks/backend_notes.py steps-per-execution   # JAX, 1 vs 8

Each runs in a subprocess with the backend it needs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

MIRRORED = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from mp_keras import data
from mp_keras.models import VAE
x = (np.random.default_rng(0).random((96, 4, 4, 1)) > 0.5).astype("float32")
def run(strategy):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = VAE(input_shape=(4, 4, 1), latent_dim=2, hidden_units=(16,), seed=1)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    batches = data.pipeline(x, batch_size=32, seed=0, epochs=3)
    history = model.fit(batches, epochs=3, steps_per_epoch=3, verbose=0).history
    return [round(v, 2) for v in history["loss"]]
print("1 device  ", run(tf.distribute.get_strategy()))
print("2 replicas", run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])))
"""

TORCH_COMPILE = """
import keras, numpy as np
from mp_keras import data
from mp_keras.models import VAE
x = data.load("digits_binarized", "train").x[:64]
weights = {}
for jit in (False, True):
    keras.utils.set_random_seed(0)
    model = VAE(input_shape=(8, 8, 1), latent_dim=4, hidden_units=(256, 128), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit)
    history = model.fit(x, epochs=3, batch_size=64, shuffle=False, verbose=0).history
    weights[jit] = model.get_weights()
    print("jit_compile", jit, [round(v, 3) for v in history["loss"]])
diff = max(float(np.abs(a - b).max()) for a, b in zip(weights[False], weights[True]))
print("max weight difference", diff)
"""

STEPS_PER_EXECUTION = """
import time, keras
from mp_keras import data
from mp_keras.models import VAE
x = data.load("digits_binarized", "train").x
batches = data.pipeline(x, batch_size=64, seed=0, repeat=True)
for spe in (1, 8):
    keras.utils.set_random_seed(0)
    model = VAE(input_shape=(8, 8, 1), latent_dim=4, hidden_units=(256, 128), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=spe)
    model.fit(batches, epochs=1, steps_per_epoch=40, verbose=0)
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        model.fit(batches, epochs=1, steps_per_epoch=296, verbose=0)
        rates.append(296 / (time.perf_counter() - start))
    print("steps_per_execution", spe, "median steps/s", round(sorted(rates)[1]))
"""

NOTES = {
    "mirrored": ("tensorflow", MIRRORED),
    "torch-compile": ("torch", TORCH_COMPILE),
    "steps-per-execution": ("jax", STEPS_PER_EXECUTION),
}


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1] not in NOTES:
        print(__doc__)
        return 2
    backend, code = NOTES[sys.argv[1]]
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], env=env, check=False)
    print(f"({backend}, {time.perf_counter() - start:.0f} s)")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
