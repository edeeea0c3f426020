"""PixelCNN and MaskedConv2D: masks, autoregressive property, blind spot, training.

The models share one size (4 x 4 x 1, 8 filters, 3 x 3 kernels) where they can, so
that a backend that compiles per shape (JAX) compiles each operation once.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras.layers.masked_conv import MaskedConv2D, channel_groups, pixelcnn_mask
from mp_keras.models.pixelcnn import PixelCNN
from mp_keras.tools.receptive_field import BLIND, SEEN, TARGET, dependence_map, receptive_field
from tests.harness import (
    binary_images as binary,
)
from tests.harness import (
    check_autoregressive,
    check_normalises,
    randomize_weights,
    run_standard_checks,
    to_numpy,
)
from tests.harness import (
    random_probe as probe,
)


def tiny(shape=(4, 4, 1), **kwargs):
    defaults = dict(filters=8, num_layers=2, first_kernel_size=3, seed=0)
    return PixelCNN(input_shape=shape, **{**defaults, **kwargs})


def test_standard_checks_then_training_lowers_the_loss(tmp_path):
    keras.utils.set_random_seed(0)
    model = run_standard_checks(tiny, binary((16, 4, 4, 1)), (None, 4, 4, 1), tmp_path)
    # Half the images all 0, half all 1: after the first pixel, each copies a neighbour.
    # Same batch shape as the standard fit step, so its compiled step is reused.
    modes = np.repeat(np.arange(16) % 2, 16).reshape(16, 4, 4, 1).astype("float32")
    model.optimizer.learning_rate.assign(3e-2)
    history = model.fit(modes, epochs=20, batch_size=8, verbose=0).history["loss"]
    assert history[0] > 8.0  # 16 fair coins would be 11.1 nats; the ideal is ln 2
    assert history[-1] < 0.5 * history[0]
    samples = to_numpy(model.sample(4, seed=7))
    np.testing.assert_array_equal(samples, to_numpy(model.sample(4, seed=7)))
    assert set(np.unique(samples)) <= {0.0, 1.0}


def test_masks_of_one_channel_hide_the_future_and_type_a_the_centre():
    one = np.zeros(1, int)
    np.testing.assert_array_equal(
        pixelcnn_mask((3, 3), one, one, "A")[..., 0, 0], [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    )
    np.testing.assert_array_equal(
        pixelcnn_mask((3, 5), one, one, "B")[..., 0, 0],
        [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]],
    )


def test_rgb_centre_masks_follow_r_then_g_then_b():
    assert channel_groups(6, 3).tolist() == [0, 0, 1, 1, 2, 2]
    assert channel_groups(3, 3).tolist() == [0, 1, 2]
    image, hidden = channel_groups(3, 3), channel_groups(6, 3)
    mask_a = pixelcnn_mask((3, 3), image, image, "A")
    # [input channel, output group] at the centre: A lets G read R, B read R and G.
    np.testing.assert_array_equal(mask_a[1, 1], [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(
        pixelcnn_mask((1, 1), image, hidden, "B")[0, 0],
        [[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1]],
    )
    assert mask_a[0].all() and not mask_a[2].any()  # the row above / the row below


def test_masked_conv_multiplies_and_keeps_the_kernel():
    layer = MaskedConv2D(8, 3, "A")
    x = probe((4, 4, 1))
    layer(x)
    layer.kernel.assign(np.ones((3, 3, 1, 8), "float32"))
    y = to_numpy(layer(x))[0, :, :, 0]
    assert np.isclose(y[1, 1], x[0, 0, :3, 0].sum() + x[0, 1, 0, 0])  # 3 above + 1 left
    np.testing.assert_array_equal(to_numpy(layer.kernel), np.ones((3, 3, 1, 8)))
    clone = MaskedConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="odd"):
        MaskedConv2D(4, 2)
    with pytest.raises(ValueError, match="'A' or 'B'"):
        MaskedConv2D(4, 3, mask_type="C")


@pytest.mark.parametrize(
    "kernel_size, mask_type, channels, filters",
    [(7, "A", 1, 4), (3, "B", 4, 4), ((3, 5), "B", 3, 6), (1, "B", 3, 3)],
)
def test_masked_conv_equals_the_whole_masked_kernel(kernel_size, mask_type, channels, filters):
    # `call` convolves only the rows of `kernel * mask` that are not zero; the output must
    # be that of the whole masked kernel with "same" padding.
    layer = MaskedConv2D(filters, kernel_size, mask_type, data_channels=1 + 2 * (channels == 3))
    x = np.random.default_rng(1).normal(size=(2, 5, 6, channels)).astype("float32")
    y = to_numpy(layer(x))
    kernel = np.random.default_rng(2).normal(size=tuple(layer.kernel.shape)).astype("float32")
    layer.kernel.assign(kernel)
    whole = keras.ops.conv(x, kernel * layer.mask, padding="same") + layer.bias
    np.testing.assert_allclose(to_numpy(layer(x)), to_numpy(whole), rtol=1e-5, atol=1e-5)
    assert y.shape == (2, 5, 6, filters)


def test_autoregressive_grey_and_the_blind_spot():
    # Four masked 3 x 3 layers (A + 3 B). Pixel (3, 0) reaches r rows up and at most r
    # columns right, so (2, 2), (2, 3) and (1, 3) are earlier but never seen.
    model = tiny(num_layers=3)
    randomize_weights(model, scale=0.3)
    x = probe((4, 4, 1))
    jac = check_autoregressive(model, x)  # [output, input], flat row-major order
    row = np.abs(jac[3 * 4 + 0]).reshape(4, 4) > 0
    blind = {(2, 2), (2, 3), (1, 3)}
    assert {tuple(p) for p in np.argwhere(~row[:3])} == blind
    # The tool gives the same map from one gradient.
    categories = dependence_map(model, (3, 0), x=x)
    assert {tuple(p) for p in np.argwhere(categories == BLIND)} == blind
    assert (categories == SEEN).sum() == 12 - 3 and categories[3, 0] == TARGET


def test_autoregressive_rgb_channels_r_then_g_then_b():
    model = tiny((2, 2, 3))
    randomize_weights(model, scale=0.3)
    x = probe((2, 2, 3))
    jac = check_autoregressive(model, x)  # flat (h, w, c): R, G, B of each pixel in turn
    # Pixel (0, 0): R reads nothing, G reads R, B reads R and G.
    assert (np.abs(jac[:3, :3]) > 0).tolist() == [
        [False, False, False],
        [True, False, False],
        [True, True, False],
    ]
    field = receptive_field(model, (1, 1, 2), x=x)  # the last dimension
    np.testing.assert_array_equal(field.reshape(-1) > 0, np.abs(jac[-1]) > 0)


def test_normalises_over_all_sixteen_images():
    model = tiny((2, 2, 1))
    randomize_weights(model)
    check_normalises(model)


def test_bad_inputs_raise_naming_what_was_expected():
    model = tiny()
    model.compile()
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        model.fit(np.full((4, 4, 4, 1), 0.5, "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"\(batch, 4, 4, 1\)"):
        model(np.zeros((2, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, 4, 4, 1\)"):
        model.log_prob(np.zeros((2, 5, 5, 1), "float32"))
    with pytest.raises(ValueError, match="unconditional"):
        model.log_prob(np.zeros((2, 4, 4, 1), "float32"), condition=np.zeros(2, "int32"))
    with pytest.raises(ValueError, match="height, width, channels"):
        PixelCNN(input_shape=(16,))
    with pytest.raises(ValueError, match="odd"):
        PixelCNN(input_shape=(4, 4, 1), kernel_size=4)


def test_class_conditional_log_prob_depends_on_the_label():
    model = tiny(num_classes=2)
    randomize_weights(model)
    x = binary((16, 4, 4, 1))
    zero = to_numpy(model.log_prob(x, condition=np.zeros(16, "int32")))
    one = to_numpy(model.log_prob(x, condition=np.ones(16, "int32")))
    assert np.abs(zero - one).min() > 1e-3
    with pytest.raises(ValueError, match="condition=labels"):
        model.log_prob(x)
