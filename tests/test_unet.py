"""UNet: harness checks, every upsampling trains, learning `shapes`, metric, export, checks."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.export import export_model
from mp_keras.models.unet import UPSAMPLINGS, SegmentationMeanIoU, UNet
from tests.harness import run_standard_checks, to_numpy


@pytest.fixture(scope="module")
def shapes():
    return data.load("shapes", "train", num_examples=64)


def small_unet(**kwargs):
    defaults = dict(input_shape=(32, 32, 1), num_classes=4, filters=(4, 8, 8))
    return UNet(**{**defaults, **kwargs})


def numpy_mean_iou(y_true, y_pred, num_classes):
    ious = []
    for k in range(num_classes):
        union = np.sum((y_true == k) | (y_pred == k))
        if union:
            ious.append(np.sum((y_true == k) & (y_pred == k)) / union)
    return float(np.mean(ious))


def test_standard_checks(shapes, tmp_path):
    model = run_standard_checks(
        small_unet, shapes.x[:16], (None, 32, 32, 4), tmp_path, y=shapes.y[:16]
    )
    probabilities = to_numpy(model.segment(shapes.x[:3]))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)


# "transposed", the default, is trained by the standard checks and test_learns_the_shapes.
@pytest.mark.parametrize("upsampling", [u for u in UPSAMPLINGS if u != "transposed"])
def test_every_upsampling_builds_and_lowers_the_loss(shapes, upsampling):
    keras.utils.set_random_seed(0)
    model = small_unet(upsampling=upsampling)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = shapes.x[:8], shapes.y[:8]
    assert to_numpy(model(x)).shape == (8, 32, 32, 4)
    history = model.fit(x, y, epochs=6, batch_size=8, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0], losses


def test_max_unpooling_puts_values_at_the_encoder_maxima(shapes):
    model = small_unet(upsampling="max_unpooling", batch_norm=False)
    network = model.network
    probe = keras.Model(
        network.input,
        [network.get_layer("encoder0_relu2").output, network.get_layer("up0").output],
    )
    skip, unpooled = (to_numpy(t) for t in probe(shapes.x[:4]))
    # Each 2x2 window of each channel holds at most one non-zero, at the skip's maximum.
    windows = unpooled.reshape(4, 16, 2, 16, 2, 4)
    assert np.count_nonzero(windows, axis=(2, 4)).max() == 1
    skip_max = skip.reshape(4, 16, 2, 16, 2, 4).max(axis=(2, 4), keepdims=True)
    at_max = skip.reshape(windows.shape) == skip_max
    assert np.all(at_max[windows != 0])


def test_learns_the_shapes():
    keras.utils.set_random_seed(0)
    train = data.load("shapes", "train", num_examples=400)
    test = data.load("shapes", "test", num_examples=200)
    model = UNet(filters=(16, 32))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(train.x, train.y, epochs=8, batch_size=32, verbose=0)
    result = model.evaluate(test.x, test.y, batch_size=64, verbose=0, return_dict=True)
    # Predicting background everywhere scores about 0.85 accuracy and 0.21 mean IoU; this
    # short run reaches about 0.92-0.94 and 0.45-0.55 (the benchmark's long one 0.97).
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    assert result["accuracy"] > 0.9, result
    assert result["mean_iou"] > 0.35, result
    # The compiled metric is the data set's mean IoU of the arg-max predictions.
    predicted = model.predict(test.x, batch_size=64, verbose=0).argmax(-1)
    expected = numpy_mean_iou(test.y, predicted, 4)
    np.testing.assert_allclose(result["mean_iou"], expected, atol=1e-5)


def test_mean_iou_matches_keras_and_a_hand_count():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=(4, 5, 6))
    logits = rng.normal(size=(4, 5, 6, 3)).astype("float32")
    ours, reference = SegmentationMeanIoU(3), keras.metrics.MeanIoU(3, sparse_y_pred=False)
    for batch in (slice(0, 2), slice(2, 4)):  # accumulates over batches
        ours.update_state(y[batch], logits[batch])
        reference.update_state(y[batch], logits[batch])
    expected = numpy_mean_iou(y, logits.argmax(-1), 3)
    assert float(ours.result()) == pytest.approx(expected, abs=1e-6)
    assert float(ours.result()) == pytest.approx(float(reference.result()), abs=1e-6)
    # A class absent from labels and predictions does not count; labels out of range
    # are ignored.
    metric = SegmentationMeanIoU(4)
    metric.update_state(np.array([[0, 1, 7]]), np.eye(4, dtype="float32")[[[0, 1, 1]]])
    assert float(metric.result()) == pytest.approx(1.0)
    metric.reset_state()
    assert float(metric.result()) == 0.0
    assert SegmentationMeanIoU.from_config(metric.get_config()).num_classes == 4


@pytest.mark.parametrize("upsampling", ["transposed", "max_unpooling"])
def test_export_to_tflite_with_parity(shapes, tmp_path, upsampling):
    model = small_unet(upsampling=upsampling)
    model.compile()
    model.fit(shapes.x[:8], shapes.y[:8], epochs=1, verbose=0)  # non-trivial BN statistics
    model.save(tmp_path / "unet.keras")
    manifest = export_model(tmp_path / "unet.keras", tmp_path / "export")
    assert manifest["passed"]
    assert (tmp_path / "export" / "model.tflite").is_file()


def test_bad_inputs(shapes):
    model = small_unet()
    model.compile()
    with pytest.raises(ValueError, match="rank 4"):
        model.fit(shapes.x[:4, ..., 0], shapes.y[:4], verbose=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 32, 32, 1\)"):
        model.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.full((4, 32, 32, 1), np.nan, "float32"), shapes.y[:4], verbose=0)
    with pytest.raises(ValueError, match=r"masks in \[0, 4\)"):
        model.fit(shapes.x[:4], shapes.y[:4] + 4, verbose=0)
    with pytest.raises(ValueError, match="masks of shape"):
        model.fit(shapes.x[:4], shapes.y[:4, :16], verbose=0)
    with pytest.raises(ValueError, match="integer class indices as masks"):
        model.fit(shapes.x[:4], shapes.y[:4] + 0.5, verbose=0)
    with pytest.raises(ValueError, match="masks of shape"):  # first batch of a dataset
        model.fit(data.pipeline(shapes.x[:4], shapes.y[:4, :16], batch_size=2), verbose=0)
    with pytest.raises(ValueError, match="divisible by 4"):
        UNet(input_shape=(30, 32, 1), filters=(4, 8, 16))
    with pytest.raises(ValueError, match="upsampling"):
        UNet(upsampling="bilinear")
    with pytest.raises(ValueError, match="num_classes"):
        UNet(num_classes=1)
