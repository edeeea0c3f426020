"""digit_strokes: pen paths extracted from the embedded digits, and drawn back."""

from __future__ import annotations

import numpy as np
import pytest

from mp_keras import data
from mp_keras.data import strokes
from mp_keras.data.strokes import STROKE_LENGTH, render_strokes, strokes_from_images, thin


@pytest.fixture(scope="module")
def test_split():
    return strokes.load_strokes("test")


def test_split_shapes_dtypes_and_info(test_split):
    x, y = test_split.x, test_split.y
    assert x.shape == (297, STROKE_LENGTH, 2) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(y, data.load("digits", "test").y)  # the digits' own labels
    assert np.abs(x).max() <= 1.0 and set(y.tolist()) == set(range(10))
    assert test_split.info.num_classes == 10 and test_split.info.value_range == (-1.0, 1.0)
    loader, description = strokes.DATASETS["digit_strokes"]
    again = loader("digit_strokes", "test", 123, None)  # the seed changes nothing
    np.testing.assert_array_equal(again.x, x)
    again.x[:] = 0.0  # callers get copies, not the cache
    np.testing.assert_array_equal(strokes.load_strokes("test").x, x)
    assert "(32, 2)" in description
    short = strokes.load_strokes("test", length=8, num_examples=5)
    assert short.x.shape == (5, 8, 2)
    np.testing.assert_allclose(short.x[:, [0, -1]], x[:5, [0, -1]], atol=1e-6)  # same ends


def test_paths_are_evenly_spaced_and_continuous(test_split):
    steps = np.sqrt((np.diff(test_split.x, axis=1) ** 2).sum(-1))  # (297, 31)
    # Equal arc-length spacing: every chord is at most the arc step, most nearly equal it.
    ratio = steps / steps.max(axis=1, keepdims=True)
    assert np.median(ratio) > 0.95
    assert steps.max() < 0.4  # no jump across the picture (its side is 2)
    length = steps.sum(axis=1)
    assert 1.5 < np.median(length) < 8.0  # longer than a stroke across, not a scribble


def test_simple_shapes_are_traced_as_drawn():
    canvas = np.zeros((4, 12, 12))
    canvas[0, 1:11, 6] = 1.0  # a bar: "1"
    canvas[1, 1:11, 3] = 1.0  # an "L": down, then right
    canvas[1, 10, 3:10] = 1.0
    rows, cols = np.mgrid[:12, :12]
    radius = np.hypot(rows - 5.5, cols - 5.5)
    canvas[2] = (np.abs(radius - 4.0) < 0.8).astype(float)  # a ring: "0"
    canvas[3, 1:5, 6] = canvas[3, 7:11, 6] = 1.0  # a broken bar
    bar, ell, ring, broken = strokes_from_images(canvas, length=24, upsample=1)
    assert np.ptp(bar[:, 0]) < 1e-6 and (np.diff(bar[:, 1]) < 0).all()  # straight down
    np.testing.assert_allclose(bar[[0, -1], 1], [0.82, -0.82], atol=0.01)
    assert ell[0, 1] > 0.8 and ell[-1, 0] > 0.6 and ell[-1, 1] < -0.7  # top, then foot's end
    angle = np.unwrap(np.arctan2(ring[:, 1], ring[:, 0]))
    assert abs(angle[-1] - angle[0]) > 1.8 * np.pi  # once round
    assert np.ptp(np.hypot(ring[:, 0], ring[:, 1])) < 0.25  # on the circle
    assert broken[:, 1].min() < -0.7 and broken[:, 1].max() > 0.7  # both pieces, joined


def test_thinning_leaves_one_pixel_wide_curves():
    bar = np.zeros((7, 12), bool)
    bar[2:5, 1:11] = True
    skeleton = thin(bar)
    assert skeleton.any(axis=1).sum() == 1 and skeleton.sum() >= 6  # one row, most of it
    rows, cols = np.mgrid[:15, :15]
    ring = np.abs(np.hypot(rows - 7, cols - 7) - 5) < 1.5
    skeleton = thin(ring)
    padded = np.pad(skeleton, 1).astype(int)
    neighbours = (
        sum(np.roll(np.roll(padded, dr, 0), dc, 1) for dr in (-1, 0, 1) for dc in (-1, 0, 1))[
            1:-1, 1:-1
        ]
        - skeleton
    )
    assert skeleton.sum() > 20 and (neighbours[skeleton] >= 2).all()  # a closed curve
    assert not (skeleton & ~ring).any()


def test_rendered_paths_are_recognisable_digits(test_split):
    from sklearn.neighbors import KNeighborsClassifier

    train = strokes.load_strokes("train")
    images = render_strokes(train.x, size=16).reshape(len(train), -1)
    tests = render_strokes(test_split.x, size=16).reshape(len(test_split), -1)
    classifier = KNeighborsClassifier(3).fit(images, train.y)
    accuracy = float((classifier.predict(tests) == test_split.y).mean())
    assert accuracy > 0.85, accuracy
    # The drawn ink lies on the digit's ink: rendered at 8 x 8, it is where the image is.
    small = render_strokes(test_split.x, size=8)
    digits = data.load("digits", "test").x[..., 0]
    assert (small * digits).sum() / small.sum() > 0.6


def test_render_and_figure(tmp_path):
    diagonal = np.array([[[-1.0, 1.0], [1.0, -1.0]]])  # top left to bottom right
    image = render_strokes(diagonal, size=9)[0]
    np.testing.assert_allclose(np.diag(image), 1.0)
    np.testing.assert_allclose(image, image.T)
    assert image[0, -1] == 0.0
    x, y = strokes.load_strokes("test", num_examples=40).x, strokes.load_strokes("test").y[:40]
    rows = strokes.label_rows(x, y, per_row=3)
    assert sorted(rows) == sorted({str(k) for k in y}) and all(len(r) <= 3 for r in rows.values())
    strokes.save_strokes_figure(rows, tmp_path / "strokes.png")
    from PIL import Image

    with Image.open(tmp_path / "strokes.png") as png:
        assert png.format == "PNG" and min(png.size) > 100


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"\(n, height, width\)"):
        strokes_from_images(np.zeros((2, 8)))
    with pytest.raises(ValueError, match="empty"):
        strokes_from_images(np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="length must be an int >= 2"):
        strokes_from_images(np.ones((1, 8, 8)), length=1)
    with pytest.raises(ValueError, match=r"\(n, length, 2\)"):
        render_strokes(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="split"):
        strokes.load_strokes("valid")
