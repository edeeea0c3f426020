"""The generated datasets of chapter 1: `separable` and `xor`."""

from __future__ import annotations

import numpy as np
import pytest

from mp_keras import data
from mp_keras.data.toys import SEPARABLE_MARGIN, XOR_CORNERS, XOR_STD, separable_hyperplane


@pytest.mark.parametrize("name", ["separable", "xor"])
def test_listed_and_loadable(name):
    assert name in data.list_datasets()
    train = data.load(name, "train")
    test = data.load(name, "test")
    assert (len(train), len(test)) == (4096, 1024)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int32
    assert train.info.shape == (2,) and train.info.num_classes == 2
    assert set(np.unique(train.y)) == {0, 1}
    low, high = train.info.value_range
    assert train.x.min() >= low and train.x.max() <= high
    # Same seed, same data; train and test are different draws.
    np.testing.assert_array_equal(data.load(name, "train").x, train.x)
    assert not np.allclose(train.x[:100], test.x[:100])
    assert len(data.load(name, "all", num_examples=50)) == 50


def test_separable_has_its_margin_on_both_splits():
    for seed in (0, 3):
        w, b = separable_hyperplane(seed)
        for split in ("train", "test"):
            ds = data.load("separable", split, seed=seed, num_examples=500)
            score = ds.x.astype(np.float64) @ w + b
            assert np.abs(score).min() >= SEPARABLE_MARGIN - 1e-6
            np.testing.assert_array_equal(ds.y, (score > 0).astype(np.int32))
            assert 0.15 < ds.y.mean() < 0.85  # both classes are well represented
    assert not np.allclose(separable_hyperplane(0)[0], separable_hyperplane(1)[0])


def test_xor_clusters_and_labels():
    ds = data.load("xor", "train", num_examples=400)
    nearest = np.argmin(((ds.x[:, None, :] - XOR_CORNERS[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(np.bincount(nearest, minlength=4), [100, 100, 100, 100])
    corner = XOR_CORNERS[nearest].astype(int)
    np.testing.assert_array_equal(ds.y, corner[:, 0] ^ corner[:, 1])
    np.testing.assert_allclose((ds.x - XOR_CORNERS[nearest]).std(), XOR_STD, rtol=0.15)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_examples"):
        data.load("xor", num_examples=0)
    with pytest.raises(ValueError, match="split"):
        data.load("separable", "validation")
