"""CNN classifier: harness checks, correlation vs. convolution, learning the digits,
export and input checks."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.export import export_model
from mp_keras.models.cnn import CNN
from tests.harness import run_standard_checks, to_numpy


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", "train"), data.load("digits", "test")


def small_cnn(**kwargs):
    defaults = dict(input_shape=(8, 8, 1), num_classes=10, filters=(4, 8), dense_units=16)
    return CNN(**{**defaults, **kwargs})


@pytest.mark.parametrize("conv", ["correlation", "convolution"])
def test_standard_checks(digits, tmp_path, conv):
    train, _ = digits
    run_standard_checks(
        lambda: small_cnn(conv=conv), train.x[:64], (None, 10), tmp_path, y=train.y[:64]
    )


def test_pooling_stops_at_one_pixel():
    # 8x8 -> 4x4 -> 2x2 -> 1x1, then a fourth block must not pool a 1x1 map away.
    model = CNN(input_shape=(8, 8, 1), filters=(2, 2, 2, 2), dense_units=0, dropout=0.0)
    pools = [
        layer for layer in model.network.layers if isinstance(layer, keras.layers.MaxPooling2D)
    ]
    assert len(pools) == 3
    assert tuple(model.network.layers[-2].output.shape) == (None, 2)  # flattened 1x1x2
    tall = CNN(input_shape=(5, 32, 3), filters=(2, 2, 2), dense_units=0)
    assert len([la for la in tall.network.layers if isinstance(la, keras.layers.MaxPooling2D)]) == 2
    flatten = next(la for la in tall.network.layers if isinstance(la, keras.layers.Flatten))
    assert tuple(flatten.output.shape) == (None, 1 * 8 * 2)  # (5, 32) -> (2, 16) -> (1, 8)


def test_convolution_network_is_the_correlation_network_with_flipped_kernels(digits):
    train, _ = digits
    correlation = small_cnn(conv="correlation")
    convolution = small_cnn(conv="convolution")
    weights = correlation.get_weights()
    # conv kernels are (height, width, in, out); flip the spatial axes, copy the rest
    flipped = [w[::-1, ::-1] if w.ndim == 4 else w for w in weights]
    convolution.set_weights(flipped)
    x = train.x[:16]
    np.testing.assert_allclose(to_numpy(convolution(x)), to_numpy(correlation(x)), atol=1e-5)
    convolution.set_weights(weights)  # unflipped kernels give a different function
    assert np.abs(to_numpy(convolution(x)) - to_numpy(correlation(x))).max() > 1e-3


def test_learns_the_digits(digits):
    keras.utils.set_random_seed(0)
    train, test = digits
    model = CNN(input_shape=(8, 8, 1), filters=(16, 32), dense_units=64, dropout=0.1)
    model.compile(optimizer=keras.optimizers.Adam(5e-3))
    history = model.fit(train.x, train.y, epochs=12, batch_size=128, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    result = model.evaluate(test.x, test.y, verbose=0, return_dict=True)
    assert result["accuracy"] > 0.95, result


def test_export_parity(digits, tmp_path):
    train, _ = digits
    model = small_cnn(conv="convolution")
    model.compile()
    model.fit(train.x[:64], train.y[:64], epochs=1, verbose=0)
    model.save(tmp_path / "cnn.keras")
    manifest = export_model(tmp_path / "cnn.keras", tmp_path / "export")
    assert manifest["passed"] is True
    assert (tmp_path / "export" / "model.tflite").exists()


def test_bad_inputs():
    model = small_cnn()
    model.compile()
    y = np.zeros(4, "int32")
    with pytest.raises(ValueError, match="rank 4"):
        model.fit(np.zeros((4, 64), "float32"), y, verbose=0)
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.full((4, 8, 8, 1), np.nan, "float32"), y, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 8, 8, 1\)"):
        model.predict(np.zeros((4, 8, 8, 3), "float32"), verbose=0)
    with pytest.raises(ValueError, match="input_shape"):
        CNN(input_shape=(8, 8))
    with pytest.raises(ValueError, match="conv must be one of"):
        CNN(conv="fourier")
    with pytest.raises(ValueError, match="filters"):
        CNN(filters=())
