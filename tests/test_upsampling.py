"""Upsampling layers: the notes' 2x2 -> 4x4 examples, NumPy references, gradients."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras.engine import value_and_gradients
from mp_keras.layers.pooling import MaxPooling2DWithIndices
from mp_keras.layers.upsampling import (
    BedOfNailsUpsampling2D,
    MaxUnpooling2D,
    NearestNeighborUpsampling2D,
)
from tests.harness import to_numpy

NOTES_INPUT = np.array([[1, 2], [3, 4]], "float32").reshape(1, 2, 2, 1)


def plane(y):
    return to_numpy(y)[0, :, :, 0].tolist()


def transposed_convolution_reference(x, kernel, stride):
    """Scatter-add: each input value adds value * kernel at stride `stride` (no padding)."""
    batch, height, width, _ = x.shape
    kh, kw, filters, _ = kernel.shape  # Keras' Conv2DTranspose layout: (kh, kw, out, in)
    out = np.zeros((batch, (height - 1) * stride + kh, (width - 1) * stride + kw, filters))
    for b, i, j in np.ndindex(batch, height, width):
        # (kh, kw, out, in) @ (in,) -> (kh, kw, out)
        patch = kernel @ x[b, i, j]
        out[b, i * stride : i * stride + kh, j * stride : j * stride + kw] += patch
    return out


# === The notes' examples ===


def test_nearest_neighbour_notes_example():
    y = NearestNeighborUpsampling2D(2)(NOTES_INPUT)
    assert plane(y) == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]


def test_bed_of_nails_notes_example():
    y = BedOfNailsUpsampling2D(2)(NOTES_INPUT)
    assert plane(y) == [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]


def test_max_unpooling_notes_example():
    # Pool a 4x4 input, remember where the maxima were, unpool new values there.
    x = np.array([[1, 2, 6, 3], [3, 5, 2, 1], [1, 2, 2, 1], [7, 3, 4, 8]], "float32")
    pooled, indices = MaxPooling2DWithIndices(2)(x.reshape(1, 4, 4, 1))
    assert plane(pooled) == [[5, 6], [7, 8]]
    y = MaxUnpooling2D(2)([NOTES_INPUT, indices])
    assert plane(y) == [[0, 0, 2, 0], [0, 1, 0, 0], [0, 0, 0, 0], [3, 0, 0, 4]]


def test_transposed_convolution_notes_example():
    # 3x3 kernel of ones, stride 2: each value adds a 3x3 block of itself; blocks overlap
    # on row and column 2, where the neighbours' values add up.
    layer = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="valid", use_bias=False)
    layer.build((None, 2, 2, 1))
    layer.set_weights([np.ones((3, 3, 1, 1), "float32")])
    expected = [
        [1, 1, 3, 2, 2],
        [1, 1, 3, 2, 2],
        [4, 4, 10, 6, 6],
        [3, 3, 7, 4, 4],
        [3, 3, 7, 4, 4],
    ]
    assert plane(layer(NOTES_INPUT)) == expected
    # padding="same" keeps the first n * s = 4 rows and columns (crops bottom and right).
    same = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", use_bias=False)
    same.build((None, 2, 2, 1))
    same.set_weights([np.ones((3, 3, 1, 1), "float32")])
    assert plane(same(NOTES_INPUT)) == [row[:4] for row in expected[:4]]


# === Batches, channels and references ===


@pytest.mark.parametrize("size", [2, (2, 3)])
def test_nearest_neighbour_equals_repeat_and_keras(size):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype("float32")
    sh, sw = (size, size) if isinstance(size, int) else size
    y = to_numpy(NearestNeighborUpsampling2D(size)(x))
    np.testing.assert_array_equal(y, np.repeat(np.repeat(x, sh, axis=1), sw, axis=2))
    keras_y = to_numpy(keras.layers.UpSampling2D((sh, sw), interpolation="nearest")(x))
    np.testing.assert_array_equal(y, keras_y)


@pytest.mark.parametrize("size", [2, (3, 2)])
def test_bed_of_nails_places_values_at_the_top_left(size):
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 5)).astype("float32")
    sh, sw = (size, size) if isinstance(size, int) else size
    expected = np.zeros((2, 3 * sh, 4 * sw, 5), "float32")
    expected[:, ::sh, ::sw] = x
    np.testing.assert_array_equal(to_numpy(BedOfNailsUpsampling2D(size)(x)), expected)


def test_unpooling_the_pooled_values_keeps_only_the_maxima():
    rng = np.random.default_rng(2)
    x = rng.permutation(2 * 6 * 8 * 3).reshape(2, 6, 8, 3).astype("float32")
    pooled, indices = MaxPooling2DWithIndices(2)(x)
    y = to_numpy(MaxUnpooling2D(2)([pooled, indices]))
    # Each window keeps its maximum where it was; everything else is 0.
    window_max = np.repeat(np.repeat(to_numpy(pooled), 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(y, np.where(x == window_max, x, 0.0))
    assert np.count_nonzero(y) == pooled.shape[1] * pooled.shape[2] * 2 * 3


def test_unpooling_gradient_reads_the_remembered_positions():
    x = np.random.default_rng(3).permutation(4 * 6 * 2).reshape(1, 4, 6, 2).astype("float32")
    _, indices = MaxPooling2DWithIndices(2)(x)
    w = np.random.default_rng(4).normal(size=(1, 4, 6, 2)).astype("float32")
    values = np.ones((1, 2, 3, 2), "float32")

    def weighted_sum(v):
        return keras.ops.sum(keras.ops.multiply(w, MaxUnpooling2D(2)([v, indices])))

    _, (grad,) = value_and_gradients(weighted_sum, [values])
    # d/dv_ij = w at the remembered position of window (i, j).
    planes = w.transpose(0, 3, 1, 2).reshape(1, 2, 24)
    flat = to_numpy(indices).transpose(0, 3, 1, 2).reshape(1, 2, 6)
    expected = np.take_along_axis(planes, flat, axis=-1).reshape(1, 2, 2, 3).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(grad, expected, atol=1e-6)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_transposed_convolution_is_a_scatter_add(padding):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 4, 2)).astype("float32")
    kernel = rng.normal(size=(3, 3, 4, 2)).astype("float32")
    layer = keras.layers.Conv2DTranspose(4, 3, strides=2, padding=padding, use_bias=False)
    layer.build((None, 3, 4, 2))
    layer.set_weights([kernel])
    expected = transposed_convolution_reference(x, kernel, 2)  # (2, 7, 9, 4)
    if padding == "same":
        expected = expected[:, :6, :8]
    np.testing.assert_allclose(to_numpy(layer(x)), expected, atol=1e-5)


# === Keras plumbing ===


@pytest.mark.parametrize(
    "layer", [NearestNeighborUpsampling2D((2, 3)), BedOfNailsUpsampling2D((2, 3))]
)
def test_symbolic_shapes_and_config_round_trip(layer):
    y = layer(keras.Input((4, 5, 6)))
    assert tuple(y.shape) == (None, 8, 15, 6)
    clone = type(layer).from_config(layer.get_config())
    assert clone.size == (2, 3)


def test_max_unpooling_symbolic_and_config():
    inputs = keras.Input((8, 6, 3))
    values, indices = MaxPooling2DWithIndices(2)(inputs)
    unpooled = MaxUnpooling2D(2)([values, indices])
    assert tuple(unpooled.shape) == (None, 8, 6, 3)
    model = keras.Model(inputs, unpooled)
    x = np.random.default_rng(6).normal(size=(2, 8, 6, 3)).astype("float32")
    clone = keras.Model.from_config(model.get_config())
    np.testing.assert_array_equal(to_numpy(clone(x)), to_numpy(model(x)))


def test_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        MaxUnpooling2D(2)([np.zeros((1, 2, 2, 1), "float32"), np.zeros((1, 2, 3, 1), "int32")])
    with pytest.raises(ValueError, match="size"):
        BedOfNailsUpsampling2D((2, 0))
    with pytest.raises(ValueError, match="height, width and channels"):
        NearestNeighborUpsampling2D(2)(np.zeros((2, 2), "float32"))
