"""Tiny registered Keras models for `tests/test_export.py`.

They live in their own importable module (not in the test file) because the
export worker subprocess must import them to deserialize the `.keras` files:
`export_model` passes the modules of all registered Keras objects to the worker
(`--import`) along with this process's `sys.path` as `PYTHONPATH`.
"""

from __future__ import annotations

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="mp_keras_tests")
class TinyAutoencoder(keras.Model):
    """Dense encoder/decoder with two endpoints: `logits` (call) and `decode`.

    `decode` returns two outputs, to exercise multi-output signatures.
    """

    def __init__(self, features: int = 6, latent: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.features = features
        self.latent = latent
        self.encoder = keras.layers.Dense(latent, activation="tanh", name="encoder")
        self.decoder = keras.layers.Dense(features, activation="sigmoid", name="decoder")

    def build(self, input_shape):
        self.encoder.build(input_shape)
        self.decoder.build((None, self.latent))
        self.built = True

    def call(self, inputs):
        return self.decoder(self.encoder(inputs))

    def decode(self, z):
        return self.decoder(z), 2.0 * z

    def get_config(self):
        return {**super().get_config(), "features": self.features, "latent": self.latent}

    def export_endpoints(self):
        return {
            "logits": (self.call, [keras.InputSpec(shape=(None, self.features), dtype="float32")]),
            "decode": (self.decode, [keras.InputSpec(shape=(None, self.latent), dtype="float32")]),
        }

    def export_samples(self, name, num, seed):
        """Binary inputs for `logits` (like binarized images); default for `decode`."""
        if name != "logits":
            return None
        rng = np.random.default_rng(seed)
        return (rng.random((num, self.features)) > 0.5).astype("float32")


@keras.saving.register_keras_serializable(package="mp_keras_tests")
class DriftingModel(keras.Model):
    """A model whose exported graph disagrees with its Keras outputs.

    `call` scales by a Python-side call counter: tracing bakes in the counter's
    value at trace time while every eager call sees a larger one. This is the
    classic stateful-Python pitfall the parity check exists to catch.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3, kernel_initializer="ones", bias_initializer="ones")
        self.calls = 0

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.built = True

    def call(self, inputs):
        self.calls += 1
        return self.dense(inputs) * float(self.calls)

    def export_endpoints(self):
        return {"serve": (self.call, [keras.InputSpec(shape=(None, 3), dtype="float32")])}


def tiny_autoencoder() -> TinyAutoencoder:
    """A built `TinyAutoencoder` with deterministic, non-trivial weights."""
    model = TinyAutoencoder()
    model.build((None, model.features))
    rng = np.random.default_rng(42)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def drifting_model() -> DriftingModel:
    """A built `DriftingModel`."""
    model = DriftingModel()
    model.build((None, 3))
    return model


def functional_model() -> keras.Model:
    """A two-input Functional model (no `export_endpoints`)."""
    image = keras.Input((4, 4, 1), name="image")
    extra = keras.Input((2,), name="extra")
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu")(image)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Concatenate()([x, extra])
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model([image, extra], outputs, name="functional_toy")
