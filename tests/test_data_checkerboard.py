"""The `checkerboard` toy set: uniform points on the black squares, seeded splits."""

from __future__ import annotations

import numpy as np

from mp_keras import data


def test_points_lie_on_their_black_square_and_cover_all_eight():
    ds = data.load("checkerboard", num_examples=4000)
    assert ds.x.shape == (4000, 2) and ds.x.dtype == np.float32
    assert ds.y.shape == (4000,) and ds.y.dtype == np.int32
    assert ds.info.shape == (2,) and ds.info.num_classes == 8 and not ds.info.binary
    assert ds.info.value_range == (-2.0, 2.0)
    assert ds.x.min() >= -2.0 and ds.x.max() <= 2.0
    # Column i, row j of the unit squares from the lower-left corner: black when i + j is even.
    cells = np.floor(ds.x + 2.0).astype(int)
    assert np.all(cells.sum(axis=1) % 2 == 0)
    corners = data.checkerboard_squares()
    assert corners.shape == (8, 2)
    np.testing.assert_array_equal(cells - 2, corners[ds.y].astype(int))
    assert np.bincount(ds.y, minlength=8).min() > 400  # every square, about 500 each
    # Uniform within the square: offsets from the corner have mean 1/2 and variance 1/12.
    offsets = ds.x - corners[ds.y]
    np.testing.assert_allclose(offsets.mean(axis=0), 0.5, atol=0.02)
    np.testing.assert_allclose(offsets.var(axis=0), 1 / 12, atol=0.005)


def test_splits_are_seeded_and_differ():
    train, test = data.load("checkerboard"), data.load("checkerboard", "test")
    assert (len(train), len(test)) == (4096, 1024)
    np.testing.assert_array_equal(train.x, data.load("checkerboard", seed=0).x)
    assert not np.array_equal(train.x, data.load("checkerboard", seed=1).x)
    assert not np.array_equal(train.x[:100], test.x[:100])
    both = data.load("checkerboard", "all")
    np.testing.assert_array_equal(both.x, np.concatenate([train.x, test.x]))
    assert "checkerboard" in data.list_datasets()
