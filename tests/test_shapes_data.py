"""The `shapes` data set, joint image-and-mask augmentation, and the Oxford pets recipe."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mp_keras import data
from mp_keras.data.augment import augmented_pipeline, segmentation_augmenter
from mp_keras.data.segmentation_tfds import load_oxford_iiit_pet
from mp_keras.data.shapes import CLASS_NAMES, generate_shapes


@pytest.fixture(scope="module")
def train():
    return data.load("shapes", "train")


def test_splits_sizes_and_info(train):
    test = data.load("shapes", "test")
    assert (len(train), len(test)) == (2000, 400)
    assert train.x.shape == (2000, 32, 32, 1) and train.y.shape == (2000, 32, 32)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int32
    assert 0.0 <= train.x.min() and train.x.max() <= 1.0
    assert set(np.unique(train.y).tolist()) == {0, 1, 2, 3}
    assert train.info.num_classes == len(CLASS_NAMES) == 4
    assert train.info.shape == (32, 32, 1) and train.info.value_range == (0.0, 1.0)
    assert "shapes" in data.list_datasets()
    # Every image has at least one shape; the background is most of the pixels.
    assert (train.y.reshape(2000, -1).max(axis=1) > 0).all()
    assert 0.75 < np.mean(train.y == 0) < 0.95


def test_seeded_and_split(train):
    again = data.load("shapes", "train")
    np.testing.assert_array_equal(again.x, train.x)
    np.testing.assert_array_equal(again.y, train.y)
    other = data.load("shapes", "train", seed=1, num_examples=50)
    assert not np.array_equal(other.x, train.x[:50])
    test = data.load("shapes", "test")
    assert not np.array_equal(test.x[:50], train.x[:50])
    assert len(data.load("shapes", "test", num_examples=7)) == 7
    everything = data.load("shapes", "all")
    np.testing.assert_array_equal(everything.y, np.concatenate([train.y, test.y]))


def test_classes_have_their_geometry(train):
    """Squares fill their bounding box, circles about pi/4 of it, triangles about half."""
    fill = {1: [], 2: [], 3: []}
    for mask in train.y[:300]:
        # Different shapes never touch: a foreground pixel's neighbours are its own class
        # or background.
        for label in (1, 2, 3):
            grown = ndimage.binary_dilation(mask == label, structure=np.ones((3, 3)))
            assert not np.any(grown & (mask > 0) & (mask != label))
        components, count = ndimage.label(mask > 0, structure=np.ones((3, 3)))
        for box, k in zip(ndimage.find_objects(components), range(1, count + 1)):
            pixels = components[box] == k
            fill[int(mask[box][pixels][0])].append(pixels.sum() / pixels.size)
    assert np.allclose(fill[2], 1.0)
    # Small digital discs fill a little more than pi/4 (0.785); an equilateral triangle
    # fills between 0.43 and 0.58 of its box, and pixels add some.
    assert 0.62 < np.min(fill[1]) and np.max(fill[1]) < 0.95
    assert 0.74 < np.mean(fill[1]) < 0.84
    assert np.max(fill[3]) < 0.7 and 0.45 < np.mean(fill[3]) < 0.55


def test_shapes_stand_out_from_the_background(train):
    x, y = train.x[:200, ..., 0], train.y[:200]
    for image, mask in zip(x, y):
        assert image[mask > 0].mean() > image[mask == 0].mean() + 0.1


# === Joint augmentation ===


def aligned_fraction(images, masks):
    """Share of pixels whose grey level (set to class / 3 below) still says their class."""
    return float(np.mean(np.round(np.asarray(images)[..., 0] * 3) == np.asarray(masks)))


@pytest.mark.parametrize(
    "options",
    [
        dict(flip="horizontal_and_vertical", translation=0.2),
        dict(flip=None, translation=0.0, rotation=0.25),
    ],
    ids=["flip_translate", "rotate"],
)
def test_augmentation_moves_image_and_mask_together(train, options):
    # An image that is its own mask (class k drawn at grey level k / 3): after the same
    # transform, rounding the image must give back the mask.
    masks = train.y[:64]
    images = (masks[..., None] / 3.0).astype("float32")
    batches = augmented_pipeline(
        images, masks, num_classes=4, batch_size=32, shuffle=False, seed=3, **options
    )
    epochs = [[(xb.numpy(), yb.numpy()) for xb, yb in batches] for _ in range(2)]
    out_x = np.concatenate([xb for xb, _ in epochs[0]])
    out_y = np.concatenate([yb for _, yb in epochs[0]])
    assert out_y.dtype == np.int32 and out_y.shape == masks.shape
    assert set(np.unique(out_y).tolist()) <= {0, 1, 2, 3}
    # Whole-pixel moves keep every pixel; a rotation resamples the image bilinearly, so
    # only pixels on outlines can disagree.
    threshold = 1.0 if options.get("rotation", 0) == 0 else 0.97
    assert aligned_fraction(out_x, out_y) >= threshold
    changed = np.mean([not np.array_equal(a, b) for a, b in zip(out_y, masks)])
    assert changed > 0.6
    # Each pass over the data draws new transforms.
    second = np.concatenate([yb for _, yb in epochs[1]])
    assert not np.array_equal(second, out_y)


def test_augmented_shapes_keep_their_masks(train):
    augment = segmentation_augmenter(4, rotation=0.1, translation=0.1, seed=0)
    images, masks = (t.numpy() for t in augment(train.x[:32], train.y[:32]))
    for image, mask in zip(images[..., 0], masks):
        # Shapes are brighter than the background: the mask still marks the bright pixels.
        if (mask > 0).any() and (mask == 0).any():
            assert image[mask > 0].mean() > image[mask == 0].mean() + 0.1


def test_augmented_pipeline_feeds_fit():
    import keras

    from mp_keras.models.unet import UNet

    x, y = generate_shapes(16, seed=5)
    model = UNet(input_shape=(32, 32, 1), filters=(4, 8))
    model.compile()
    batches = augmented_pipeline(x, y, num_classes=4, batch_size=8)
    history = model.fit(batches, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert keras.backend.backend() in ("tensorflow", "jax", "torch")


def test_augmentation_arguments():
    with pytest.raises(ValueError, match="flip"):
        segmentation_augmenter(4, flip="diagonal")
    with pytest.raises(ValueError, match="masks"):
        augmented_pipeline(np.zeros((2, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="height, width"):
        augmented_pipeline(np.zeros((2, 8, 8, 1), "float32"), np.zeros((2, 8, 4), "int32"))


# === Oxford-IIIT Pet (TFDS): only the offline error can be checked here ===


def test_oxford_pets_fail_fast_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("MP_KERAS_ALLOW_DOWNLOAD", "0")
    with pytest.raises(data.DatasetUnavailableError, match="load\\('shapes'\\)") as err:
        load_oxford_iiit_pet("train", data_dir=str(tmp_path))
    assert "MP_KERAS_ALLOW_DOWNLOAD" in str(err.value)
    with pytest.raises(ValueError, match="image_size"):
        load_oxford_iiit_pet("train", image_size=4)
