"""PixelRNN and its Row LSTM: masks, row recurrence, autoregressive property, training."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras.engine import value_and_gradients
from mp_keras.layers.row_lstm import RowLSTM, raster_mask
from mp_keras.models.pixelrnn import PixelRNN
from tests.harness import (
    binary_images as binary,
)
from tests.harness import (
    check_autoregressive,
    check_config_round_trip,
    check_normalises,
    randomize_weights,
    run_standard_checks,
    to_numpy,
)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def tiny(**kwargs) -> PixelRNN:
    """The tests' model: every test shares its kernel shapes, so backends that compile
    per shape (JAX, eagerly) compile them once."""
    config = {"input_shape": (4, 4, 1), "hidden_units": 4, "num_layers": 1}
    return PixelRNN(**{**config, "first_kernel_size": 3, "seed": 0, **kwargs})


def randomized(seed: int = 0, **kwargs) -> PixelRNN:
    """`tiny` with random normal weights (zero-initialised, then randomised)."""
    model = tiny(kernel_initializer="zeros", **kwargs)
    randomize_weights(model, seed=seed)
    return model


def row_lstm_reference(layer: RowLSTM, x: np.ndarray) -> np.ndarray:
    """The Row LSTM equations in NumPy, one row at a time, convolutions as explicit sums."""
    k_in = to_numpy(layer.input_kernel)[0] * layer.input_mask[0]  # (k, in, 4u)
    k_ss = to_numpy(layer.state_kernel)[0]  # (k, u, 4u)
    bias, units = to_numpy(layer.bias), layer.units
    batch, height, width, _ = x.shape

    def conv_along_row(row, kernel):  # "same" cross-correlation over the width
        p = kernel.shape[0] // 2
        padded = np.pad(row, [(0, 0), (p, p), (0, 0)])
        return sum(padded[:, j : j + width] @ kernel[j] for j in range(kernel.shape[0]))

    h = np.zeros((batch, width, units))
    c = np.zeros((batch, width, units))
    out = []
    for r in range(height):
        z = conv_along_row(x[:, r], k_in) + conv_along_row(h, k_ss) + bias
        f, i, o = (sigmoid(z[..., n * units : (n + 1) * units]) for n in range(3))
        g = np.tanh(z[..., 3 * units :])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1)


def test_standard_checks(tmp_path):
    run_standard_checks(tiny, binary((16, 4, 4, 1)), (None, 4, 4, 1), tmp_path)


def test_raster_masks():
    a = raster_mask((3, 3), 1, 2, "A")[..., 0, 0]
    b = raster_mask((3, 3), 1, 2, "B")[..., 0, 0]
    np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    # Three colour groups at the centre, [in, out]: A lets R -> G, B and G -> B through;
    # B also each group to itself.
    centre_a = raster_mask((1, 1), 3, 3, "A", channels=3)[0, 0]
    centre_b = raster_mask((1, 1), 3, 3, "B", channels=3)[0, 0]
    np.testing.assert_array_equal(centre_a, np.triu(np.ones(3), 1))
    np.testing.assert_array_equal(centre_b, np.triu(np.ones(3)))


def test_row_lstm_matches_numpy_reference():
    rng = np.random.default_rng(0)
    layer = RowLSTM(4, kernel_initializer="zeros", unroll=True)
    layer.build((None, None, 4, 4))
    randomize_weights(layer, seed=1)
    # One row: zero previous state, so h = o * tanh(i * g) from the masked input path.
    one_row = rng.normal(size=(1, 1, 4, 4)).astype("float32")
    expected = row_lstm_reference(layer, one_row)
    np.testing.assert_allclose(to_numpy(layer(one_row)), expected, atol=1e-5)
    # Several rows exercise the state-to-state path and the cell memory, looped or scanned.
    rows = rng.normal(size=(1, 4, 4, 4)).astype("float32")
    expected = row_lstm_reference(layer, rows)
    np.testing.assert_allclose(to_numpy(layer(rows)), expected, atol=1e-5)
    layer.unroll = False
    np.testing.assert_allclose(to_numpy(layer(rows)), expected, atol=1e-5)
    clone = check_config_round_trip(layer)
    assert (clone.units, clone.input_kernel_size, clone.unroll) == (4, 3, False)


def test_row_lstm_row_r_ignores_later_rows_and_right_pixels():
    layer = RowLSTM(4, kernel_initializer="zeros", unroll=True)
    x = np.random.default_rng(2).normal(size=(1, 4, 4, 4)).astype("float32")
    layer.build(x.shape)
    randomize_weights(layer, seed=3)

    def grad_of_sum(rows, cols):  # |d sum(h[rows, cols]) / dx| per input pixel
        _, (g,) = value_and_gradients(lambda v: keras.ops.sum(layer(v)[:, rows, cols]), [x])
        return np.abs(g[0]).sum(axis=-1)  # (height, width)

    for r in range(4):
        g = grad_of_sum(slice(0, r + 1), slice(None))
        assert not g[r + 1 :].any(), r  # rows <= r never see rows > r
        assert g[r].all(), r  # and see all of row r (the input path along the row)
    for w in range(3):
        g = grad_of_sum(0, slice(0, w + 1))
        assert not g[0, w + 1 :].any(), w  # type B: nothing right of the pixel
        assert g[0, : w + 1].all(), w
    g = grad_of_sum(2, 0)
    assert g[1, 1] > 0 and g[0, 2] > 0  # the state path widens by a column per row up
    assert g[1, 2] == 0 and g[0, 3] == 0  # the triangular receptive field


def test_autoregressive_property():
    model = randomized(num_layers=2)
    x = np.random.default_rng(1).normal(size=(1, 4, 4, 1))
    jac = np.abs(check_autoregressive(model, x))
    # Each pixel after the first sees its left neighbour (the type-A conv), and every
    # pixel below the first row the one above it (first conv and the state path).
    for i in range(1, 16):
        if i % 4:
            assert jac[i, i - 1] > 0, i
        if i >= 4:
            assert jac[i, i - 4] > 0, i


def test_autoregressive_over_colour_channels():
    # Two channels per pixel, generated in order: the second sees the first.
    model = randomized(seed=1, input_shape=(4, 4, 2))
    jac = np.abs(check_autoregressive(model, np.random.default_rng(4).normal(size=(1, 4, 4, 2))))
    # Where its ReLUs are not all off, a second channel sees the first of its pixel.
    assert sum(jac[i + 1, i] > 0 for i in range(0, 32, 2)) >= 10


def test_normalises():
    check_normalises(randomized(input_shape=(2, 2, 1)))


def test_learns_copied_rows_and_samples_them():
    # Each image is one random row repeated: only the first row is uncertain.
    x = np.repeat(binary((256, 1, 4, 1), seed=6, p=0.5), 4, axis=1)
    keras.utils.set_random_seed(0)
    model = tiny(hidden_units=8)  # 4 units: the zero-bias ReLUs sometimes start all off
    kernel = to_numpy(model.first_conv.kernel)
    model.compile(optimizer=keras.optimizers.Adam(0.03))
    # Batches of 16, the shapes of the other tests (JAX compiles each new shape eagerly).
    before = model.nll(x, batch_size=16)
    history = model.fit(x, epochs=10, batch_size=32, verbose=0)
    after = model.nll(x, batch_size=16)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert after < 0.5 * before, (before, after)
    assert after < 4 * np.log(2) + 0.5, after  # four fair coins; rows 2-4 are copies
    # The masked weights get zero gradient: training leaves them as they were.
    masked = model.first_conv.mask == 0
    np.testing.assert_array_equal(to_numpy(model.first_conv.kernel)[masked], kernel[masked])
    # Seeded ancestral sampling reproduces itself and has learned the copies.
    samples = to_numpy(model.sample(64, seed=1))
    np.testing.assert_array_equal(samples, to_numpy(model.sample(64, seed=1)))
    assert samples.shape == (64, 4, 4, 1) and set(np.unique(samples)) == {0.0, 1.0}
    assert (samples[:, 1:] == samples[:, :1]).mean() > 0.95
    assert len(np.unique(samples[:, 0, :, 0], axis=0)) > 8  # the first rows vary


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_shape": (16,)}, "height, width, channels"),
        ({"first_kernel_size": 4}, "first_kernel_size must be odd"),
        ({"state_kernel_size": 0}, "state_kernel_size must be a positive integer"),
        ({"input_shape": (4, 4, 3)}, "multiple of the 3 channels"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)


def test_bad_inputs_raise():
    model = tiny()
    with pytest.raises(ValueError, match=r"\(batch, 4, 4, 1\)"):
        model.log_prob(np.zeros((2, 4, 5, 1), "float32"))
    model.compile()
    with pytest.raises(ValueError, match="binary"):
        model.fit(np.full((4, 4, 4, 1), 0.5, "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="odd"):
        RowLSTM(4, state_kernel_size=2)
