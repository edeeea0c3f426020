"""Convolution and correlation: their algebra, Toeplitz matrices, the layers, and the
backward formulas of a convolutional layer against automatic differentiation."""

from __future__ import annotations

import copy

import keras
import numpy as np
import pytest
from keras import ops

from mp_keras.engine import value_and_gradients
from mp_keras.layers.convolution import (
    Convolution1D,
    Convolution2D,
    convolution_matrix,
    convolve1d,
    convolve2d,
    correlate1d,
    correlate2d,
)
from tests.harness import (
    check_config_round_trip,
    check_fit_step,
    check_save_load,
    check_shapes,
    to_numpy,
)

RNG = np.random.default_rng(0)


def reference_convolve2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Full convolution straight from its definition, sum_m sum_n I(i - m, j - n) K(m, n)."""
    (h, w), (kh, kw) = image.shape, kernel.shape
    out = np.zeros((h + kh - 1, w + kw - 1))
    for i in range(h + kh - 1):
        for j in range(w + kw - 1):
            for m in range(kh):
                for n in range(kw):
                    if 0 <= i - m < h and 0 <= j - n < w:
                        out[i, j] += image[i - m, j - n] * kernel[m, n]
    return out


def reference_correlate2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Valid correlation straight from its definition, sum_m sum_n I(i + m, j + n) K(m, n)."""
    (h, w), (kh, kw) = image.shape, kernel.shape
    out = np.zeros((h - kh + 1, w - kw + 1))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            out[i, j] = sum(
                image[i + m, j + n] * kernel[m, n] for m in range(kh) for n in range(kw)
            )
    return out


def crop(full: np.ndarray, kernel_shape: tuple[int, ...], mode: str) -> np.ndarray:
    """SciPy's "valid"/"same" part of a full convolution."""
    index = []
    for size, k in zip(full.shape, kernel_shape):
        n = size - k + 1  # input size
        start = {"full": 0, "valid": k - 1, "same": (k - 1) // 2}[mode]
        length = {"full": size, "valid": n - k + 1, "same": n}[mode]
        index.append(slice(start, start + length))
    return full[tuple(index)]


# --- the algebra of convolution and correlation ----------------------------------------


def test_convolution_commutes_and_correlation_does_not():
    f, g = RNG.normal(size=7), RNG.normal(size=4)
    f_conv_g, g_conv_f = to_numpy(convolve1d(f, g)), to_numpy(convolve1d(g, f))
    np.testing.assert_allclose(f_conv_g, g_conv_f, atol=1e-5)
    np.testing.assert_allclose(f_conv_g, np.convolve(f, g), atol=1e-5)

    f_corr_g, g_corr_f = to_numpy(correlate1d(f, g)), to_numpy(correlate1d(g, f))
    np.testing.assert_allclose(f_corr_g, np.correlate(f, g, "full"), atol=1e-5)
    assert np.abs(f_corr_g - g_corr_f).max() > 0.1  # not commutative...
    np.testing.assert_allclose(g_corr_f, f_corr_g[::-1], atol=1e-5)  # ...but reversed
    # correlation is convolution with the flipped kernel
    np.testing.assert_allclose(f_corr_g, to_numpy(convolve1d(f, g[::-1])), atol=1e-5)


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize("kernel_length", [3, 4])
def test_1d_functions_match_numpy(mode, kernel_length):
    f, g = RNG.normal(size=9), RNG.normal(size=kernel_length)
    np.testing.assert_allclose(to_numpy(convolve1d(f, g, mode)), np.convolve(f, g, mode), atol=1e-5)
    np.testing.assert_allclose(
        to_numpy(correlate1d(f, g, mode)), np.correlate(f, g, mode), atol=1e-5
    )


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize("kernel_shape", [(3, 3), (2, 3)])
def test_2d_functions_match_the_definition(mode, kernel_shape):
    image, kernel = RNG.normal(size=(6, 5)), RNG.normal(size=kernel_shape)
    full = reference_convolve2d(image, kernel)
    np.testing.assert_allclose(
        to_numpy(convolve2d(image, kernel, mode)), crop(full, kernel_shape, mode), atol=1e-5
    )
    # I ⋆ K = I * rot180(K)
    flipped = reference_convolve2d(image, kernel[::-1, ::-1])
    np.testing.assert_allclose(
        to_numpy(correlate2d(image, kernel, mode)), crop(flipped, kernel_shape, mode), atol=1e-5
    )
    if mode == "valid":
        np.testing.assert_allclose(
            to_numpy(correlate2d(image, kernel, mode)),
            reference_correlate2d(image, kernel),
            atol=1e-5,
        )


def test_functions_reject_bad_arguments():
    with pytest.raises(ValueError, match="mode must be one of"):
        convolve1d([1.0, 2.0], [1.0], mode="circular")
    with pytest.raises(ValueError, match="rank 2"):
        convolve2d(np.ones(4), np.ones((2, 2)))
    with pytest.raises(ValueError, match="no larger than the signal"):
        correlate1d(np.ones(2), np.ones(3), mode="valid")
    with pytest.raises(ValueError, match="rank 1 or 2"):
        convolution_matrix(np.ones((2, 2, 2)), (3, 3))


# --- convolution as a matrix product -----------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
def test_1d_convolution_is_a_toeplitz_matrix_product(mode):
    x, kernel = RNG.normal(size=8), RNG.normal(size=3)
    matrix = convolution_matrix(kernel, 8, mode)
    np.testing.assert_allclose(matrix @ x, np.convolve(x, kernel, mode), atol=1e-12)
    np.testing.assert_allclose(matrix @ x, to_numpy(convolve1d(x, kernel, mode)), atol=1e-5)
    full = convolution_matrix(kernel, 8)
    assert full.shape == (10, 8)
    np.testing.assert_array_equal(full[1:, 1:], full[:-1, :-1])  # constant diagonals
    np.testing.assert_array_equal(full[:3, 0], kernel)


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
def test_2d_convolution_is_a_doubly_block_toeplitz_product(mode):
    image, kernel = RNG.normal(size=(5, 4)), RNG.normal(size=(2, 3))
    matrix = convolution_matrix(kernel, (5, 4), mode)
    expected = crop(reference_convolve2d(image, kernel), kernel.shape, mode)
    np.testing.assert_allclose(matrix @ image.ravel(), expected.ravel(), atol=1e-12)
    # block (i, j) of the full matrix is the Toeplitz matrix of kernel row i - j
    full = convolution_matrix(kernel, (5, 4)).reshape(6, 6, 5, 4).transpose(0, 2, 1, 3)
    for i in range(6):
        for j in range(5):
            block = convolution_matrix(kernel[i - j], 4) if 0 <= i - j < 2 else np.zeros((6, 4))
            np.testing.assert_array_equal(full[i, j], block)


# --- the layers --------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("kernel_size", [3, (2, 3)])
def test_convolution2d_is_conv2d_with_the_flipped_kernel(padding, strides, kernel_size):
    x = RNG.normal(size=(2, 7, 6, 3)).astype("float32")
    layer = Convolution2D(4, kernel_size, strides=strides, padding=padding)
    keras_layer = keras.layers.Conv2D(4, kernel_size, strides=strides, padding=padding)
    layer.build(x.shape)
    keras_layer.build(x.shape)
    kernel, bias = RNG.normal(size=layer.kernel.shape), RNG.normal(size=(4,))
    layer.set_weights([kernel, bias])
    keras_layer.set_weights([kernel[::-1, ::-1], bias])
    out = to_numpy(layer(x))
    np.testing.assert_allclose(out, to_numpy(keras_layer(x)), atol=1e-5)
    assert out.shape == layer.compute_output_shape(x.shape)


def test_convolution2d_matches_the_definition_on_every_channel_pair():
    x = RNG.normal(size=(2, 6, 5, 3)).astype("float32")
    layer = Convolution2D(2, (3, 2), activation="relu")
    layer.build(x.shape)
    kernel, bias = RNG.normal(size=(3, 2, 3, 2)), RNG.normal(size=(2,))
    layer.set_weights([kernel, bias])
    expected = np.zeros((2, 4, 4, 2))
    for b in range(2):
        for o in range(2):
            for c in range(3):
                full = reference_convolve2d(x[b, :, :, c], kernel[:, :, c, o])
                expected[b, :, :, o] += crop(full, (3, 2), "valid")
    expected = np.maximum(expected + bias, 0.0)
    np.testing.assert_allclose(to_numpy(layer(x)), expected, atol=1e-5)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_convolution1d_is_conv1d_with_the_flipped_kernel_and_np_convolve(padding):
    x = RNG.normal(size=(2, 9, 1)).astype("float32")
    layer = Convolution1D(1, 3, padding=padding, use_bias=False)
    keras_layer = keras.layers.Conv1D(1, 3, padding=padding, use_bias=False)
    layer.build(x.shape)
    keras_layer.build(x.shape)
    kernel = RNG.normal(size=(3, 1, 1))
    layer.set_weights([kernel])
    keras_layer.set_weights([kernel[::-1]])
    out = to_numpy(layer(x))
    np.testing.assert_allclose(out, to_numpy(keras_layer(x)), atol=1e-5)
    for b in range(2):
        np.testing.assert_allclose(
            out[b, :, 0], np.convolve(x[b, :, 0], kernel[:, 0, 0], padding), atol=1e-5
        )


def test_layer_standard_checks(tmp_path):
    layer = Convolution2D(3, 3, padding="same", activation="relu")
    check_config_round_trip(layer)
    inputs = keras.Input((6, 6, 2))
    features = Convolution2D(3, 3, padding="same", activation="relu")(inputs)
    features = Convolution2D(2, (2, 3), strides=2, name="strided")(features)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(features))
    model = keras.Model(inputs, outputs)
    x = RNG.normal(size=(8, 6, 6, 2)).astype("float32")
    # Functional.from_config consumes its argument, so the harness' round trip (which
    # compares against that same dict) cannot be used on a functional model.
    config = model.get_config()
    assert keras.Model.from_config(copy.deepcopy(config)).get_config() == config
    check_shapes(model, x, (None, 2))
    model.compile(optimizer="adam", loss="mse")
    check_fit_step(model, x, RNG.normal(size=(8, 2)).astype("float32"))
    check_save_load(model, x, tmp_path / "conv.keras")


def test_layer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="padding must be one of"):
        Convolution2D(2, 3, padding="causal")
    with pytest.raises(ValueError, match="kernel_size must be a positive int or 2"):
        Convolution2D(2, (3, 3, 3))
    with pytest.raises(ValueError, match="filters"):
        Convolution1D(0, 3)
    with pytest.raises(ValueError, match="ndim=4"):
        Convolution2D(2, 3)(np.zeros((2, 5, 5), "float32"))


# --- backward pass of a convolutional layer ---------------------------------------------

CASES = {
    "single channel": dict(batch=1, size=(6, 5), kernel=(3, 3), channels=(1, 1)),
    "multi channel": dict(batch=2, size=(7, 6), kernel=(2, 3), channels=(3, 2)),
}


def _layer_problem(case: dict) -> tuple[np.ndarray, ...]:
    (h, w), (kh, kw), (c_in, c_out) = case["size"], case["kernel"], case["channels"]
    x = RNG.normal(size=(case["batch"], h, w, c_in)).astype("float32")
    kernel = RNG.normal(size=(kh, kw, c_in, c_out)).astype("float32")
    bias = RNG.normal(size=(c_out,)).astype("float32")
    # A loss with a non-constant upstream gradient: L = sum(G ⊙ Z) + 1/2 sum(Z²),
    # so δ = ∂L/∂Z = G + Z.
    target = RNG.normal(size=(case["batch"], h - kh + 1, w - kw + 1, c_out)).astype("float32")
    return x, kernel, bias, target


def _loss(z: object, target: np.ndarray) -> object:
    return ops.sum(ops.multiply(target, z)) + 0.5 * ops.sum(ops.square(z))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_correlation_layer_backward_formulas(case):
    """Z = X ⋆ W + b (what Conv2D computes): ∂L/∂X = δ * W (full), ∂L/∂W = X ⋆ δ."""
    x, kernel, bias, target = _layer_problem(case)
    _, (dx, dw, db) = value_and_gradients(
        lambda x_, w_, b_: _loss(ops.conv(x_, w_, padding="valid") + b_, target), [x, kernel, bias]
    )
    z = to_numpy(ops.conv(x, kernel, padding="valid")) + bias
    delta = target + z
    kh, kw = case["kernel"]
    c_in, c_out = case["channels"]
    dx_formula, dx_rotated = np.zeros_like(x), np.zeros_like(x)
    dw_formula = np.zeros_like(kernel)
    for b in range(case["batch"]):
        for c in range(c_in):
            for o in range(c_out):
                d, k = delta[b, :, :, o], kernel[:, :, c, o]
                dx_formula[b, :, :, c] += to_numpy(convolve2d(d, k, "full"))
                # the same: zero-pad δ by k - 1 and correlate with the kernel rotated 180°
                padded = np.pad(d, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
                dx_rotated[b, :, :, c] += to_numpy(correlate2d(padded, np.rot90(k, 2), "valid"))
                dw_formula[:, :, c, o] += to_numpy(correlate2d(x[b, :, :, c], d, "valid"))
    np.testing.assert_allclose(dx_formula, dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx_rotated, dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw_formula, dw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(delta.sum(axis=(0, 1, 2)), db, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_convolution_layer_backward_formulas(case):
    """Z = X * K (Convolution2D): ∂L/∂X = δ ⋆ K (full correlation), ∂L/∂K = rot180(X ⋆ δ)."""
    x, kernel, _, target = _layer_problem(case)
    layer = Convolution2D(case["channels"][1], case["kernel"], use_bias=False)
    layer.build(x.shape)

    def loss(x_, k_):
        # stateless_call runs the layer's own `call` with k_ as its kernel, so the kernel
        # is an input that autodiff differentiates.
        z, _ = layer.stateless_call([k_], [], x_)
        return _loss(z, target)

    _, (dx, dk) = value_and_gradients(loss, [x, kernel])
    layer.set_weights([kernel])
    delta = target + to_numpy(layer(x))
    dx_formula, dk_formula = np.zeros_like(x), np.zeros_like(kernel)
    for b in range(case["batch"]):
        for c in range(case["channels"][0]):
            for o in range(case["channels"][1]):
                d = delta[b, :, :, o]
                dx_formula[b, :, :, c] += to_numpy(correlate2d(d, kernel[:, :, c, o], "full"))
                dk_formula[:, :, c, o] += np.rot90(
                    to_numpy(correlate2d(x[b, :, :, c], d, "valid")), 2
                )
    np.testing.assert_allclose(dx_formula, dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dk_formula, dk, rtol=1e-5, atol=1e-5)
