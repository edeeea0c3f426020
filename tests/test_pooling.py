"""MaxPooling2DWithIndices: values as Keras' max pooling, indices, gradients, bad inputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras.engine import value_and_gradients
from mp_keras.layers.pooling import MaxPooling2DWithIndices
from tests.harness import to_numpy


def distinct_inputs(shape, seed=0):
    # A permutation: no ties, so the arg-max (and the gradient's target) is unique.
    rng = np.random.default_rng(seed)
    return (rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape)).astype("float32")


def argmax_mask(x, pool_size):
    """1 where each window of `x` (batch, H, W, C) has its maximum, else 0 (NumPy loop)."""
    ph, pw = pool_size
    mask = np.zeros_like(x)
    for b, i, j, c in np.ndindex(x.shape[0], x.shape[1] // ph, x.shape[2] // pw, x.shape[3]):
        window = x[b, i * ph : (i + 1) * ph, j * pw : (j + 1) * pw, c]
        a, d = np.unravel_index(np.argmax(window), window.shape)
        mask[b, i * ph + a, j * pw + d, c] = 1.0
    return mask


@pytest.mark.parametrize("pool_size", [(2, 2), (2, 3), (3, 1)])
def test_values_equal_keras_max_pooling(pool_size):
    x = distinct_inputs((2, 6, 6, 3))
    values, indices = MaxPooling2DWithIndices(pool_size)(x)
    expected = to_numpy(keras.layers.MaxPooling2D(pool_size)(x))
    np.testing.assert_array_equal(to_numpy(values), expected)
    assert to_numpy(indices).dtype == np.int32


def test_indices_are_flat_positions_of_the_maxima():
    x = distinct_inputs((2, 6, 8, 3), seed=1)
    values, indices = (to_numpy(t) for t in MaxPooling2DWithIndices(2)(x))
    planes = x.transpose(0, 3, 1, 2).reshape(2, 3, 48)  # (batch, channels, H * W)
    flat = indices.transpose(0, 3, 1, 2).reshape(2, 3, -1)
    gathered = np.take_along_axis(planes, flat, axis=-1).reshape(2, 3, 3, 4).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(gathered, values)
    # Each index lies in its own window: row // 2 and col // 2 give the output position.
    rows, cols = indices // 8, indices % 8
    np.testing.assert_array_equal(rows // 2, np.arange(3)[None, :, None, None] + 0 * rows)
    np.testing.assert_array_equal(cols // 2, np.arange(4)[None, None, :, None] + 0 * cols)


def test_notes_example_by_hand():
    x = np.array([[1, 2, 0, 1], [3, 0, 5, 4], [0, 1, 1, 0], [2, 0, 0, 6]], "float32")
    values, indices = MaxPooling2DWithIndices(2)(x.reshape(1, 4, 4, 1))
    assert to_numpy(values)[0, ..., 0].tolist() == [[3, 5], [2, 6]]
    # Maxima at (1, 0), (1, 2), (3, 0), (3, 3) -> row * 4 + col.
    assert to_numpy(indices)[0, ..., 0].tolist() == [[4, 6], [12, 15]]


def test_ties_go_to_the_first_maximum_and_so_does_the_gradient():
    x = np.ones((1, 2, 2, 1), "float32")
    _, indices = MaxPooling2DWithIndices(2)(x)
    assert to_numpy(indices).ravel().tolist() == [0]
    _, (grad,) = value_and_gradients(lambda v: keras.ops.sum(MaxPooling2DWithIndices(2)(v)[0]), [x])
    assert to_numpy(grad).ravel().tolist() == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "layer",
    [keras.layers.MaxPooling2D(2), MaxPooling2DWithIndices(2)],
    ids=["keras", "with_indices"],
)
def test_gradient_flows_only_to_the_argmax(layer):
    x = distinct_inputs((2, 4, 6, 3), seed=2)
    w = np.random.default_rng(3).normal(size=(2, 2, 3, 3)).astype("float32")

    def weighted_sum(inputs):
        pooled = layer(inputs)
        pooled = pooled[0] if isinstance(pooled, tuple) else pooled
        return keras.ops.sum(keras.ops.multiply(w, pooled))

    _, (grad,) = value_and_gradients(weighted_sum, [x])
    # d/dx_k sum_ij w_ij max_{R_ij} x = w_ij if k is the arg-max of R_ij, else 0.
    expected = argmax_mask(x, (2, 2)) * np.repeat(np.repeat(w, 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(grad, expected, atol=1e-6)
    assert np.count_nonzero(grad) == w.size


def test_symbolic_shapes_and_config_round_trip():
    layer = MaxPooling2DWithIndices((2, 4), name="pool")
    values, indices = layer(keras.Input((8, 8, 5)))
    assert tuple(values.shape) == tuple(indices.shape) == (None, 4, 2, 5)
    assert indices.dtype == "int32"
    clone = MaxPooling2DWithIndices.from_config(layer.get_config())
    assert clone.pool_size == (2, 4) and clone.name == "pool"


def test_bad_inputs():
    with pytest.raises(ValueError, match="divisible by pool_size"):
        MaxPooling2DWithIndices(2)(np.zeros((1, 5, 4, 1), "float32"))
    with pytest.raises(ValueError, match="rank 4"):
        MaxPooling2DWithIndices(2)(np.zeros((4, 4, 1), "float32"))
    with pytest.raises(ValueError, match="pool_size"):
        MaxPooling2DWithIndices(0)
