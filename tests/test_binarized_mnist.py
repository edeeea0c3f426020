"""binarized_mnist: the packed archive layout, its splits, and the shared reference file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mp_keras import data
from mp_keras.data.binarized_mnist import ENV_PATH

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "binarized_mnist.npz"


@pytest.fixture
def archive(tmp_path):
    rng = np.random.default_rng(0)
    images = {
        key: (rng.random((n, 784)) < 0.2).astype(np.uint8)
        for key, n in [("train", 5), ("valid", 2), ("test", 3)]
    }
    path = tmp_path / "bmnist.npz"
    np.savez(path, **{key: np.packbits(x, axis=1) for key, x in images.items()})
    return path, images


def test_packed_archive_unpacks_row_major(archive):
    path, images = archive
    for split in ("train", "valid", "test"):
        ds = data.load(f"npz:{path}", split)
        assert ds.x.shape == (len(images[split]), 28, 28, 1) and ds.y is None
        np.testing.assert_array_equal(ds.x.reshape(len(ds.x), -1), images[split])
        assert ds.info.binary and ds.info.name == "binarized_mnist"
    assert len(data.load(f"npz:{path}", "all").x) == 10
    assert len(data.load(f"npz:{path}", "train", num_examples=2).x) == 2


def test_the_name_reads_the_archive_named_by_the_environment(archive, monkeypatch):
    path, images = archive
    monkeypatch.setenv(ENV_PATH, str(path))
    np.testing.assert_array_equal(
        data.load("binarized_mnist", "test").x.reshape(3, -1), images["test"]
    )


def test_bad_archives_and_splits_raise(tmp_path, archive):
    path, _ = archive
    with pytest.raises(ValueError, match="split"):
        data.load(f"npz:{path}", "validation")
    bad = tmp_path / "bad.npz"
    np.savez(
        bad,
        train=np.zeros((2, 10), np.uint8),
        valid=np.zeros((1, 10), np.uint8),
        test=np.zeros((1, 10), np.uint8),
    )
    with pytest.raises(ValueError, match="28x28 binary images"):
        data.load(f"npz:{bad}", "train")


@pytest.mark.skipif(not SHARED.is_file(), reason="../shared/data/binarized_mnist.npz not present")
def test_the_reference_file_has_the_standard_split():
    sizes = {split: len(data.load(f"npz:{SHARED}", split).x) for split in ("valid", "test")}
    assert sizes == {"valid": 10_000, "test": 10_000}
    test = data.load(f"npz:{SHARED}", "test").x
    assert 0.12 < test.mean() < 0.14  # the README's "pixel mean about 0.13"
