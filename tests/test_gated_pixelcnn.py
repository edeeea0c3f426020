"""Gated PixelCNN: autoregressive property, no blind spot, class conditioning, training.

Same sizes as tests/test_pixelcnn.py (4 x 4 x 1, 8 filters, 3 x 3 kernels), so that a
backend that compiles per shape (JAX) compiles each operation once.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras.layers.masked_conv import GatedPixelCNNBlock, shift_down
from mp_keras.models.gated_pixelcnn import GatedPixelCNN
from mp_keras.tools.receptive_field import (
    BLIND,
    SEEN,
    dependence_map,
    receptive_field,
    save_receptive_field_figure,
)
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
    return GatedPixelCNN(input_shape=shape, **{**defaults, **kwargs})


def test_standard_checks_then_training_lowers_the_loss(tmp_path):
    keras.utils.set_random_seed(0)
    model = run_standard_checks(tiny, binary((16, 4, 4, 1)), (None, 4, 4, 1), tmp_path)
    # Half the images all 0, half all 1 (same batch shape as the standard fit step).
    modes = np.repeat(np.arange(16) % 2, 16).reshape(16, 4, 4, 1).astype("float32")
    model.optimizer.learning_rate.assign(3e-2)
    history = model.fit(modes, epochs=20, batch_size=8, verbose=0).history["loss"]
    assert history[0] > 8.0 and history[-1] < 0.5 * history[0]


def test_block_config_shift_and_residual_check():
    block = GatedPixelCNNBlock(8, kernel_size=3, mask_type="A", residual=False, num_classes=3)
    clone = GatedPixelCNNBlock.from_config(block.get_config())
    assert clone.get_config() == block.get_config()
    rows = np.arange(3, dtype="float32").reshape(1, 3, 1, 1) + 1.0
    assert to_numpy(shift_down(rows)).reshape(-1).tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="residual=True needs h with 8 channels"):
        GatedPixelCNNBlock(8).build((None, 4, 4, 1), (None, 4, 4, 1))
    with pytest.raises(ValueError, match="one odd int"):
        GatedPixelCNNBlock(8, kernel_size=(3, 3))


def test_autoregressive_grey_and_no_blind_spot():
    # Four layers of 3 x 3, as the PixelCNN in tests/test_pixelcnn.py that misses
    # (2, 2), (2, 3) and (1, 3) for pixel (3, 0): the vertical stack reaches them.
    model = tiny(num_layers=4)
    randomize_weights(model, scale=0.3)
    x = probe((4, 4, 1))
    jac = check_autoregressive(model, x)  # [output, input], flat row-major order
    row = np.abs(jac[3 * 4 + 0]).reshape(4, 4) > 0
    assert row[:3].all()  # all 12 earlier pixels
    categories = dependence_map(model, (3, 0), x=x)
    assert (categories == SEEN).sum() == 12 and not (categories == BLIND).any()


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


def test_normalises_for_each_label():
    model = tiny((2, 2, 1), num_classes=2)
    randomize_weights(model)
    for label in (0, 1):
        check_normalises(model, condition=label)


def test_receptive_field_figure(tmp_path):
    path = tmp_path / "receptive_field.png"
    maps = save_receptive_field_figure(path, image_size=4, num_layers=4, pixel=(3, 0), num_probes=1)
    assert path.stat().st_size > 1000
    assert {tuple(p) for p in np.argwhere(maps["PixelCNN"] == BLIND)} == {(2, 2), (2, 3), (1, 3)}
    assert int((maps["Gated PixelCNN"] == BLIND).sum()) == 0


def test_conditional_log_prob_depends_on_the_label():
    model = tiny(num_classes=2)
    randomize_weights(model)
    x = binary((16, 4, 4, 1))
    log_p = [to_numpy(model.log_prob(x, condition=np.full(16, k, "int32"))) for k in range(2)]
    assert np.abs(log_p[0] - log_p[1]).min() > 1e-3


def test_conditional_training_sampling_and_save_load(tmp_path):
    # Label 0: all-black images; label 1: all-white. The label decides every pixel.
    y = np.arange(64) % 2
    x = np.repeat(y.astype("float32")[:, None], 16, axis=1).reshape(64, 4, 4, 1)
    keras.utils.set_random_seed(0)
    model = tiny(num_classes=2)
    model.compile(optimizer=keras.optimizers.Adam(3e-2))
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0).history["loss"]
    assert history[0] > 5.0 and history[-1] < 0.1 * history[0]
    labels = np.array([0, 0, 0, 1, 1, 1])
    samples = to_numpy(model.sample(6, seed=3, condition=labels)).reshape(6, -1)
    assert samples[:3].mean() < 0.2 and samples[3:].mean() > 0.8
    model.save(tmp_path / "gated.keras")
    loaded = keras.saving.load_model(tmp_path / "gated.keras")
    np.testing.assert_allclose(
        to_numpy(loaded.log_prob(x[:16], condition=y[:16])),
        to_numpy(model.log_prob(x[:16], condition=y[:16])),
        atol=1e-5,
    )


def test_bad_inputs_raise_naming_what_was_expected():
    model = tiny(num_classes=2)
    model.compile()
    x = binary((4, 4, 4, 1))
    with pytest.raises(ValueError, match="no labels"):
        model.fit(x, verbose=0)
    with pytest.raises(ValueError, match=r"labels in \[0, 2\)"):
        model.fit(x, np.array([0, 1, 2, 1]), verbose=0)
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        model.fit(x * 0.5 + 0.25, np.zeros(4, "int32"), verbose=0)
    with pytest.raises(ValueError, match="condition=labels"):
        model.sample(2)
    with pytest.raises(ValueError, match="condition=labels"):
        model.log_prob(x)
    with pytest.raises(ValueError, match=r"\(batch, 4, 4, 1\)"):
        model.log_prob(np.zeros((2, 4, 4, 3), "float32"), condition=np.zeros(2, "int32"))
    with pytest.raises(ValueError, match=r"\(batch, 4, 4, 1\)"):
        model.log_prob(np.zeros((2, 3, 4, 1), "float32"), condition=np.zeros(2, "int32"))
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        GatedPixelCNN(input_shape=(4, 4, 1), num_layers=0)
