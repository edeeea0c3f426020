"""Bijectors: exact inverses, log-determinants against the Jacobian, the masks, the squeeze."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras.engine import jacobian
from mp_keras.layers.bijectors import (
    AdditiveCoupling,
    AffineCoupling,
    Chain,
    Dequantize,
    LogitTransform,
    Scaling,
    Squeeze,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
)
from tests.harness import randomize_weights, to_numpy

SHAPE = (4, 4, 2)  # one image shape everywhere: each function is traced once
RNG = np.random.default_rng(0)


def make(name):
    """A bijector and a data-side input it is defined on, `(2, *SHAPE)`."""
    x = RNG.normal(size=(2, *SHAPE)).astype("float32")
    if name == "affine_checkerboard":
        return AffineCoupling(checkerboard_mask(4, 4, 1), (4,), seed=0), x
    if name == "affine_channel":
        return AffineCoupling(channel_mask(2, 0), (4,), scale=2.0, seed=0), x
    if name == "affine_mlp":
        return AffineCoupling(alternating_mask(32, 1).reshape(SHAPE), (8,), conditioner="mlp"), x
    if name == "additive":
        return AdditiveCoupling(checkerboard_mask(4, 4, 0), (4,), seed=0), x
    if name == "scaling":
        return Scaling(), x
    if name == "squeeze":
        return Squeeze(), x
    if name == "logit":
        return LogitTransform(alpha=0.05), RNG.uniform(0.02, 0.98, (2, *SHAPE)).astype("float32")
    if name == "dequantize":
        return Dequantize(num_levels=17), RNG.uniform(0.0, 1.0, (2, *SHAPE)).astype("float32")
    if name == "chain":
        layers = [Scaling(), AffineCoupling(checkerboard_mask(4, 4), (4,)), LogitTransform()]
        return Chain(layers), RNG.uniform(0.02, 0.98, (2, *SHAPE)).astype("float32")
    raise KeyError(name)


NAMES = [
    "affine_checkerboard",
    "affine_channel",
    "affine_mlp",
    "additive",
    "scaling",
    "squeeze",
    "logit",
    "dequantize",
    "chain",
]


def built(name):
    bijector, x = make(name)
    bijector.inverse(x)  # builds the weights
    randomize_weights(bijector, seed=1, scale=0.3)
    return bijector, x


def flat_jacobian_log_det(fn, v):
    """log|det J| of `fn` at one example `v` (1, ...), from the engine's Jacobian."""
    jac = jacobian(fn, v, independent_batch=True)
    dims = v.size
    return float(np.linalg.slogdet(jac.reshape(dims, dims).astype("float64"))[1])


@pytest.mark.parametrize("name", NAMES)
def test_inverse_and_forward_undo_each_other(name):
    bijector, x = built(name)
    z, inv_log_det = bijector.inverse(x)
    back, fwd_log_det = bijector.forward(z)
    np.testing.assert_allclose(to_numpy(back), x, atol=1e-5)
    assert to_numpy(inv_log_det).shape == (2,)
    # The two log-determinants at matching points are negatives of each other.
    np.testing.assert_allclose(to_numpy(fwd_log_det), -to_numpy(inv_log_det), atol=1e-4)
    z0 = to_numpy(z)
    again, _ = bijector.inverse(to_numpy(bijector.forward(z0)[0]))
    np.testing.assert_allclose(to_numpy(again), z0, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_log_det_is_log_abs_det_of_the_jacobian(name):
    bijector, x = built(name)
    one = x[:1]
    z = to_numpy(bijector.inverse(one)[0])
    expected_inv = flat_jacobian_log_det(lambda v: bijector.inverse(v)[0], one)
    expected_fwd = flat_jacobian_log_det(lambda v: bijector.forward(v)[0], z)
    assert abs(float(to_numpy(bijector.inverse(one)[1])[0]) - expected_inv) < 1e-3
    assert abs(float(to_numpy(bijector.forward(z)[1])[0]) - expected_fwd) < 1e-3


def test_additive_coupling_has_log_det_zero_and_moves_only_the_masked_part():
    bijector, x = built("additive")
    y, log_det = bijector.forward(x)
    np.testing.assert_array_equal(to_numpy(log_det), [0.0, 0.0])
    kept = np.broadcast_to(checkerboard_mask(4, 4, 0), x.shape) == 1
    y = to_numpy(y)
    np.testing.assert_array_equal(y[kept], x[kept])
    assert np.abs(y[~kept] - x[~kept]).min() > 0


def test_couplings_start_as_the_identity():
    for name in ("affine_checkerboard", "affine_mlp", "additive"):
        bijector, x = make(name)
        y, log_det = bijector.forward(x)
        np.testing.assert_array_equal(to_numpy(y), x)
        np.testing.assert_array_equal(to_numpy(log_det), [0.0, 0.0])


def test_affine_log_scale_is_bounded_by_scale():
    bijector, x = make("affine_channel")
    bijector.inverse(x)
    randomize_weights(bijector, seed=2, scale=5.0)  # raw outputs far beyond the bound
    _, log_det = bijector.forward(x)
    free = (1 - channel_mask(2, 0)).sum() * 16  # dimensions the coupling scales
    assert np.abs(to_numpy(log_det)).max() <= 2.0 * free + 1e-3


def test_scaling_log_det_is_the_sum_of_log_scales():
    bijector, x = built("scaling")
    log_s = to_numpy(bijector.log_scale)
    y, log_det = bijector.forward(x)
    np.testing.assert_allclose(to_numpy(log_det), [log_s.sum()] * 2, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(y), x * np.exp(log_s), rtol=1e-5)


def test_chain_sums_log_dets_and_inverts_in_reverse():
    chain, x = built("chain")
    total, v = 0.0, x
    for bijector in reversed(chain.bijectors):
        v, log_det = bijector.inverse(v)
        total = total + to_numpy(log_det)
    z, chained = chain.inverse(x)
    np.testing.assert_allclose(to_numpy(z), to_numpy(v), atol=1e-6)
    np.testing.assert_allclose(to_numpy(chained), total, atol=1e-5)


def test_squeeze_pattern_round_trip_and_odd_sizes():
    x = np.arange(2 * 4 * 4 * 2, dtype="float32").reshape(2, *SHAPE)
    z, log_det = Squeeze().inverse(x)
    z = to_numpy(z)
    assert z.shape == (2, 2, 2, 8)
    np.testing.assert_array_equal(to_numpy(log_det), [0.0, 0.0])
    for i, j, di, dj, c in np.ndindex(2, 2, 2, 2, 2):
        assert z[1, i, j, (2 * di + dj) * 2 + c] == x[1, 2 * i + di, 2 * j + dj, c]
    np.testing.assert_array_equal(to_numpy(Squeeze().forward(z)[0]), x)
    with pytest.raises(ValueError, match="even height and width"):
        Squeeze().inverse(np.zeros((1, 3, 4, 1), "float32"))
    with pytest.raises(ValueError, match="divisible by 4"):
        Squeeze().forward(np.zeros((1, 2, 2, 3), "float32"))


def test_masks_are_exactly_as_defined():
    np.testing.assert_array_equal(alternating_mask(4, 0), [1, 0, 1, 0])
    np.testing.assert_array_equal(alternating_mask(4, 1), [0, 1, 0, 1])
    board = checkerboard_mask(3, 4, 0)
    assert board.shape == (3, 4, 1) and board.dtype == np.float32
    np.testing.assert_array_equal(board[..., 0], [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]])
    np.testing.assert_array_equal(checkerboard_mask(3, 4, 1), 1 - board)
    np.testing.assert_array_equal(channel_mask(6, 0), [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(channel_mask(5, 1), [0, 0, 1, 1, 1])


def test_logit_and_dequantize_maps():
    y, log_det = LogitTransform(alpha=0.1).inverse(np.array([[0.0, 0.5, 1.0]], "float32"))
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(to_numpy(y)[0], np.log(p / (1 - p)), atol=1e-6)
    expected = np.sum(np.log(0.8) - np.log(p) - np.log(1 - p))
    np.testing.assert_allclose(to_numpy(log_det), [expected], atol=1e-5)
    grid = np.array([[0.0, 0.5, 1.0]], "float32")
    cube, log_det = Dequantize(num_levels=3).inverse(grid)
    np.testing.assert_allclose(to_numpy(cube), [[1 / 6, 1 / 2, 5 / 6]], atol=1e-6)
    np.testing.assert_allclose(to_numpy(log_det), [3 * np.log(2 / 3)], atol=1e-6)


def test_configs_round_trip_and_arguments_are_checked():
    for name in NAMES:
        bijector, x = built(name)
        config = bijector.get_config()
        clone = type(bijector).from_config(config)
        assert clone.get_config() == config
        clone.inverse(x)
        clone.set_weights(bijector.get_weights())
        np.testing.assert_allclose(
            to_numpy(clone.inverse(x)[0]), to_numpy(bijector.inverse(x)[0]), atol=1e-6
        )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(AffineCoupling(channel_mask(2), (4,), scale=1.5))
    )
    assert isinstance(restored, AffineCoupling) and restored.scale == 1.5
    with pytest.raises(ValueError, match="0s and 1s"):
        AffineCoupling([0.5, 1.0])
    with pytest.raises(ValueError, match="broadcast"):
        AffineCoupling(alternating_mask(3)).forward(np.zeros((1, 4), "float32"))
    with pytest.raises(ValueError, match="scale"):
        AffineCoupling(alternating_mask(2), scale=0.0)
    with pytest.raises(ValueError, match="alpha"):
        LogitTransform(alpha=0.5)
    with pytest.raises(ValueError, match="num_levels"):
        Dequantize(num_levels=1)
    with pytest.raises(ValueError, match="empty"):
        Chain([])
