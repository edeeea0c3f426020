"""Denoiser networks and the step embedding: formulas, shapes, conditioning, round trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras.layers.time_embedding import SinusoidalTimeEmbedding
from mp_keras.models.denoisers import MLPDenoiser, UNetDenoiser
from tests.harness import check_config_round_trip, check_save_load, randomize_weights, to_numpy


def test_time_embedding_matches_the_formula():
    layer = SinusoidalTimeEmbedding(6, max_period=100.0)
    t = np.array([0, 1, 7.5, 999], "float32")
    w = 100.0 ** (-np.arange(3) / 3)  # w_k = max_period^(-k / (dim / 2))
    expected = np.concatenate([np.sin(t[:, None] * w), np.cos(t[:, None] * w)], axis=1)
    np.testing.assert_allclose(to_numpy(layer(t)), expected, atol=1e-4)
    steps = np.array([[0], [1], [7], [999]], "int32")  # integer steps, (batch, 1)
    whole = expected.copy()
    whole[2] = np.concatenate([np.sin(7 * w), np.cos(7 * w)])
    np.testing.assert_allclose(to_numpy(layer(steps)), whole, atol=1e-4)
    clone = SinusoidalTimeEmbedding.from_config(layer.get_config())
    assert clone.dim == 6 and clone.max_period == 100.0
    with pytest.raises(ValueError, match="even"):
        SinusoidalTimeEmbedding(5)


def inputs(shape, condition_dim=0, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(batch, *shape)).astype("float32"), rng.integers(1, 50, batch)]
    if condition_dim:
        arrays.append(rng.normal(size=(batch, condition_dim)).astype("float32"))
    return arrays


def test_unet_keeps_the_input_shape():
    for shape, filters, levels in [((28, 28, 1), (4, 4), 2), ((4, 4, 4), (4,), 1)]:
        net = UNetDenoiser(input_shape=shape, filters=filters, time_dim=8, groups=4)
        assert tuple(net.output.shape) == (None, *shape)
        # 28 -> 14 -> 7 downsamples twice, 4 -> 2 once; an odd size stays (below).
        names = [layer.name for layer in net.layers]
        assert sum(name.startswith("downsample") for name in names) == levels
        assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in net.layers)
    odd = UNetDenoiser(input_shape=(7, 7, 4), filters=(4,), time_dim=8, groups=4)
    assert not any(layer.name.startswith("downsample") for layer in odd.layers)
    assert tuple(odd(inputs((7, 7, 4))).shape) == (3, 7, 7, 4)


def test_unet_starts_at_zero_and_uses_time_and_condition(tmp_path):
    net = UNetDenoiser(input_shape=(8, 8, 1), filters=(4,), time_dim=8, condition_dim=5)
    x, t, c = inputs((8, 8, 1), condition_dim=5)
    np.testing.assert_array_equal(to_numpy(net([x, t, c])), 0.0)  # zero-initialised output
    randomize_weights(net, scale=0.2)
    base = to_numpy(net([x, t, c]))
    assert np.abs(base - to_numpy(net([x, t + 1, c]))).max() > 1e-4
    assert np.abs(base - to_numpy(net([x, t, c + 1]))).max() > 1e-4
    clone = check_config_round_trip(net)
    assert clone.count_params() == net.count_params()
    check_save_load(net, [x, t, c], tmp_path / "unet.keras", atol=1e-5)


def test_mlp_denoiser(tmp_path):
    net = MLPDenoiser(data_dim=3, hidden_units=(8, 8), time_dim=4, condition_dim=2)
    x, t, c = inputs((3,), condition_dim=2)
    base = to_numpy(net([x, t, c]))
    assert base.shape == (3, 3)
    assert np.abs(base - to_numpy(net([x, t + 5, c]))).max() > 1e-5
    assert np.abs(base - to_numpy(net([x, t, c + 1]))).max() > 1e-5
    check_config_round_trip(net)
    check_save_load(net, [x, t, c], tmp_path / "mlp.keras")
    unconditional = MLPDenoiser(data_dim=2, hidden_units=(4,), time_dim=4)
    assert len(unconditional.inputs) == 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="time_dim"):
        MLPDenoiser(time_dim=3)
    with pytest.raises(ValueError, match="hidden_units"):
        MLPDenoiser(hidden_units=())
    with pytest.raises(ValueError, match="height, width, channels"):
        UNetDenoiser(input_shape=(8, 8))
    with pytest.raises(ValueError, match="condition_dim"):
        UNetDenoiser(condition_dim=-1)
