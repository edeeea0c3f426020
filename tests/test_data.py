"""Tests of mp_keras.data: embedded datasets, file readers, the TFDS loader and pipelines.

Everything runs offline: TFDS is exercised through its failure path (downloads switched off,
empty data dir) and through a stand-in builder that serves arrays from memory.
"""

from __future__ import annotations

import gzip
import struct
import time
import types

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.data import files as data_files
from mp_keras.data import tfds as data_tfds

EMBEDDED = ["digits", "digits_binarized", "ring", "grid", "moons", "checkerboard"]


def _rows(x: np.ndarray) -> list[bytes]:
    """One hashable, sortable key per example."""
    return sorted(row.tobytes() for row in np.ascontiguousarray(x).reshape(len(x), -1))


# --------------------------------------------------------------------------- registry


def test_list_datasets_names_every_source():
    names = data.list_datasets()
    assert set(EMBEDDED) <= set(names)
    assert {"tfds:NAME", "npz:PATH", "idx:IMAGES[,LABELS]"} <= set(names)
    assert all(isinstance(d, str) and d for d in names.values())


def test_unknown_name_lists_available_datasets():
    with pytest.raises(ValueError, match="Unknown dataset") as err:
        data.load("no_such_data")
    for name in [*EMBEDDED, "tfds:NAME", "npz:PATH", "idx:IMAGES"]:
        assert name in str(err.value)


@pytest.mark.parametrize("name", [*EMBEDDED, "npz:/nowhere.npz", "tfds:mnist"])
def test_bad_split_names_the_valid_splits(name):
    with pytest.raises(ValueError, match="'train', 'test', 'all'"):
        data.load(name, "validation")


@pytest.mark.parametrize("num_examples", [0, -3, 2.5, True])
def test_bad_num_examples(num_examples):
    with pytest.raises(ValueError, match="num_examples"):
        data.load("digits", num_examples=num_examples)


# --------------------------------------------------------------------------- embedded


@pytest.mark.parametrize("name", EMBEDDED)
@pytest.mark.parametrize("split", ["train", "test", "all"])
def test_embedded_arrays_match_their_info(name, split):
    ds = data.load(name, split)
    info = ds.info
    assert info.name == name
    assert ds.x.dtype == np.float32 and ds.y.dtype == np.int32
    assert ds.x.shape[1:] == info.shape and ds.y.shape == (len(ds),)
    assert 0 <= ds.y.min() and ds.y.max() < info.num_classes
    low, high = info.value_range
    assert low <= ds.x.min() and ds.x.max() <= high
    assert info.binary == bool(np.isin(ds.x, [0.0, 1.0]).all())
    assert info.description


@pytest.mark.parametrize(
    ("name", "shape", "num_classes", "sizes"),
    [
        ("digits", (8, 8, 1), 10, (1500, 297)),
        ("digits_binarized", (8, 8, 1), 10, (1500, 297)),
        ("ring", (2,), 8, (4096, 1024)),
        ("moons", (2,), 2, (4096, 1024)),
    ],
)
def test_embedded_shapes_and_sizes(name, shape, num_classes, sizes):
    train, test, full = (data.load(name, s) for s in ("train", "test", "all"))
    assert train.info.shape == shape and train.info.num_classes == num_classes
    assert (len(train), len(test)) == sizes
    # "all" is train followed by test.
    np.testing.assert_array_equal(full.x, np.concatenate([train.x, test.x]))
    np.testing.assert_array_equal(full.y, np.concatenate([train.y, test.y]))


def test_digits_split_is_a_fixed_partition_of_the_bundled_images():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[..., None]
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert not set(_rows(train.x)) & set(_rows(test.x))
    assert _rows(np.concatenate([train.x, test.x])) == _rows(images)
    # The documented permutation, independent of the seed argument.
    order = np.random.default_rng(0).permutation(len(images))
    np.testing.assert_array_equal(train.x, images[order[:1500]])
    np.testing.assert_array_equal(test.y, bunch.target[order[1500:]])
    np.testing.assert_array_equal(data.load("digits", seed=7).x, train.x)
    assert train.info.value_range == (0.0, 1.0) and not train.info.binary


def test_digits_binarized_is_exactly_binary_and_aligned():
    digits, binarized = data.load("digits", "all"), data.load("digits_binarized", "all")
    assert binarized.info.binary
    assert set(np.unique(binarized.x).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(binarized.x, (digits.x > 0.5).astype(np.float32))
    np.testing.assert_array_equal(binarized.y, digits.y)


def test_digits_num_examples_keeps_the_first_examples():
    head = data.load("digits", "test", num_examples=10)
    np.testing.assert_array_equal(head.x, data.load("digits", "test").x[:10])
    assert len(data.load("digits", num_examples=10_000)) == 1500


def test_returned_arrays_do_not_alias_the_cache():
    ds = data.load("digits")
    ds.x[:] = -1.0
    assert data.load("digits").x.min() == 0.0


def test_ring_samples_lie_on_the_ring_near_their_mode():
    ds = data.load("ring", num_examples=2000)
    centres = data.ring_centres()
    assert centres.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), data.RING_RADIUS, rtol=1e-6)
    radius_error = np.abs(np.linalg.norm(ds.x, axis=1) - 2.0)
    assert np.mean(radius_error < 0.1) > 0.999  # 5 standard deviations
    nearest = np.argmin(np.linalg.norm(ds.x[:, None, :] - centres[None], axis=2), axis=1)
    np.testing.assert_array_equal(nearest, ds.y)
    assert set(np.unique(ds.y).tolist()) == set(range(8))


def test_moons_are_standardised_and_balanced():
    ds = data.load("moons")
    np.testing.assert_allclose(ds.x.mean(axis=0), 0.0, atol=0.05)
    np.testing.assert_allclose(ds.x.std(axis=0), 1.0, atol=0.05)
    assert np.bincount(ds.y).tolist() == [2048, 2048]


@pytest.mark.parametrize("name", ["ring", "moons"])
def test_generated_sets_are_deterministic_in_seed(name):
    a, b = data.load(name, seed=3), data.load(name, seed=3)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, data.load(name, seed=4).x)
    # Train and test are independent draws, also across neighbouring seeds.
    assert not np.array_equal(data.load(name, "test", seed=3).x[:100], a.x[:100])
    assert not np.array_equal(data.load(name, "test", seed=2).x[:100], a.x[:100])


@pytest.mark.parametrize("name", ["ring", "moons"])
def test_generated_num_examples_sets_the_size(name):
    assert len(data.load(name, num_examples=10_000)) == 10_000
    assert len(data.load(name, "test", num_examples=7)) == 7
    assert len(data.load(name, "all", num_examples=100)) == 100


def test_dataset_validates_its_arrays():
    info = data.DatasetInfo("t", (2,), None, False, (0.0, 1.0), "Test.")
    with pytest.raises(TypeError, match="float32"):
        data.Dataset(np.zeros((3, 2)), None, info)
    with pytest.raises(ValueError, match=r"info\.shape"):
        data.Dataset(np.zeros((3, 3), np.float32), None, info)
    with pytest.raises(ValueError, match="int32"):
        data.Dataset(np.zeros((3, 2), np.float32), np.zeros(3, np.int64), info)


# --------------------------------------------------------------------------- npz


def test_npz_round_trip_scales_uint8_and_splits_80_20(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(50, 6, 5), dtype=np.uint8)
    y = rng.integers(0, 3, size=50)
    path = tmp_path / "tiny.npz"
    np.savez(path, x=x, y=y)

    train, test, full = (data.load(f"npz:{path}", s) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(full)) == (40, 10, 50)
    assert train.x.shape == (40, 6, 5, 1) and train.x.dtype == np.float32
    assert train.y.dtype == np.int32 and train.info.num_classes == 3
    assert train.info.name == f"npz:{path}" and train.info.value_range == (0.0, 1.0)
    np.testing.assert_allclose(full.x[..., 0], x / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(full.y, y)
    # The 80/20 split is a partition of the file, fixed by default_rng(0).
    assert _rows(np.concatenate([train.x, test.x])) == _rows(full.x)
    order = np.random.default_rng(0).permutation(50)
    np.testing.assert_array_equal(test.y, y[order[40:]])


def test_npz_keras_style_keys_and_explicit_test_split(tmp_path):
    path = tmp_path / "mnist_like.npz"
    x_train = np.full((4, 3, 3), 255, np.uint8)
    x_test = np.zeros((2, 3, 3), np.uint8)
    np.savez(path, x_train=x_train, y_train=[0, 1, 2, 3], x_test=x_test, y_test=[4, 5])
    train, test = data.load(f"npz:{path}", "train"), data.load(f"npz:{path}", "test")
    assert train.x.shape == (4, 3, 3, 1) and test.x.shape == (2, 3, 3, 1)
    assert train.x.min() == 1.0 and test.x.max() == 0.0
    assert test.y.tolist() == [4, 5] and train.info.num_classes == 6
    assert len(data.load(f"npz:{path}", "all")) == 6


def test_npz_float_unlabeled_and_binary_data(tmp_path):
    points = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float64)
    np.savez(tmp_path / "points.npz", images=points)
    ds = data.load(f"npz:{tmp_path / 'points.npz'}", "all")
    assert ds.y is None and ds.info.num_classes is None and ds.info.shape == (2,)
    np.testing.assert_allclose(ds.x, points, rtol=1e-6)
    assert ds.info.value_range == (float(ds.x.min()), float(ds.x.max()))

    bits = np.random.default_rng(0).integers(0, 2, size=(10, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "bits.npz", x=bits)
    ds = data.load(f"npz:{tmp_path / 'bits.npz'}", "all")
    assert ds.info.binary and ds.x.max() == 1.0  # 0/1 pixels are not divided by 255


def test_npz_missing_key_lists_found_and_expected_keys(tmp_path):
    path = tmp_path / "odd.npz"
    np.savez(path, pixels=np.zeros((3, 2, 2)), targets=np.zeros(3))
    with pytest.raises(ValueError, match="no image array") as err:
        data.load(f"npz:{path}")
    message = str(err.value)
    assert "'pixels'" in message and "'targets'" in message
    assert "'x'" in message and "'images'" in message


def test_npz_inconsistent_arrays(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((3, 2)), y=np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="expected 3 labels"):
        data.load(f"npz:{path}")
    np.savez(path, x=np.zeros((3, 2)), y=np.zeros(3), x_test=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="y_test"):
        data.load(f"npz:{path}")
    np.savez(path, x=np.zeros((3, 2)), y=[0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match="integer class indices"):
        data.load(f"npz:{path}")


def test_npz_missing_or_wrong_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.npz"):
        data.load(f"npz:{tmp_path / 'missing.npz'}")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match=r"\.npz archive"):
        data.load(f"npz:{tmp_path / 'text.npz'}")


# --------------------------------------------------------------------------- IDX


def _write_idx(path, array: np.ndarray, magic: int, *, compress: bool = False) -> None:
    """Writes an IDX file by hand from the format description, not with our reader's code."""
    payload = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(">u1").tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(25, 7, 6), dtype=np.uint8)
    labels = rng.integers(0, 10, size=25, dtype=np.uint8)
    suffix = ".gz" if compress else ""
    image_path, label_path = tmp_path / f"img-idx3-ubyte{suffix}", tmp_path / f"lbl{suffix}"
    _write_idx(image_path, images, 0x00000803, compress=compress)
    _write_idx(label_path, labels, 0x00000801, compress=compress)

    np.testing.assert_array_equal(data.read_idx(image_path), images)
    full = data.load(f"idx:{image_path},{label_path}", "all")
    assert full.x.shape == (25, 7, 6, 1) and full.x.dtype == np.float32
    np.testing.assert_allclose(full.x[..., 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(full.y, labels)
    assert full.info.name == f"idx:{image_path},{label_path}"
    train, test = (data.load(f"idx:{image_path},{label_path}", s) for s in ("train", "test"))
    assert (len(train), len(test)) == (20, 5)
    assert _rows(np.concatenate([train.x, test.x])) == _rows(full.x)

    unlabeled = data.load(f"idx:{image_path}", "all")
    assert unlabeled.y is None and unlabeled.info.num_classes is None


def test_idx_bad_magic_number(tmp_path):
    images = np.zeros((3, 2, 2), np.uint8)
    labels = np.zeros(3, np.uint8)
    _write_idx(tmp_path / "images", images, 0x00000803)
    _write_idx(tmp_path / "labels", labels, 0x00000801)
    # Swapped files: each has the other's magic number.
    with pytest.raises(ValueError, match="magic number 0x00000801; expected 0x00000803"):
        data.load(f"idx:{tmp_path / 'labels'},{tmp_path / 'images'}")
    (tmp_path / "junk").write_bytes(b"\x12\x34\x56\x78" + bytes(10))
    with pytest.raises(ValueError, match="magic number"):
        data.load(f"idx:{tmp_path / 'junk'}")


def test_idx_size_and_count_mismatches(tmp_path):
    _write_idx(tmp_path / "images", np.zeros((3, 2, 2), np.uint8), 0x00000803)
    _write_idx(tmp_path / "labels", np.zeros(4, np.uint8), 0x00000801)
    with pytest.raises(ValueError, match="expected 3 labels"):
        data.load(f"idx:{tmp_path / 'images'},{tmp_path / 'labels'}")
    truncated = (tmp_path / "images").read_bytes()[:-1]
    (tmp_path / "truncated").write_bytes(truncated)
    with pytest.raises(ValueError, match="header announces shape"):
        data_files.read_idx(tmp_path / "truncated")
    with pytest.raises(FileNotFoundError):
        data.load(f"idx:{tmp_path / 'absent'}")


# --------------------------------------------------------------------------- TFDS


def test_tfds_offline_failure_is_fast_and_helpful(tmp_path, monkeypatch):
    monkeypatch.setenv("MP_KERAS_ALLOW_DOWNLOAD", "0")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(data.DatasetUnavailableError) as err:
        data.load("tfds:mnist", "test")
    assert time.monotonic() - start < 10  # seconds; well under one in practice
    assert isinstance(err.value, RuntimeError)
    message = str(err.value)
    for hint in ("could not be downloaded", "network", str(tmp_path), "TFDS_DATA_DIR"):
        assert hint in message
    for alternative in ("'digits'", "npz:PATH", "idx:IMAGES"):
        assert alternative in message
    assert not list(tmp_path.iterdir())  # nothing was written


def test_tfds_download_errors_become_unavailable(monkeypatch):
    class FailingBuilder:
        def is_prepared(self):
            return False

        def download_and_prepare(self):
            raise OSError("no route to host")

    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(tfds, "builder", lambda name, data_dir=None: FailingBuilder())
    monkeypatch.setattr(data_tfds, "_check_network", lambda: None)
    monkeypatch.setenv("MP_KERAS_ALLOW_DOWNLOAD", "1")
    with pytest.raises(data.DatasetUnavailableError, match="no route to host") as err:
        data.load("tfds:mnist")
    assert isinstance(err.value.__cause__, OSError)


# A real TFDS builder whose data is generated in memory, so preparing it needs no network.
_TINY_SPLITS = {
    "train": np.random.default_rng(10).integers(0, 256, size=(12, 4, 4, 1), dtype=np.uint8),
    "test": np.random.default_rng(11).integers(0, 256, size=(5, 4, 4, 1), dtype=np.uint8),
}


@pytest.fixture(scope="module")
def prepared_tfds_dir(tmp_path_factory):
    tfds = pytest.importorskip("tensorflow_datasets")

    class MpKerasTinyImages(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(shape=(4, 4, 1)),
                        "label": tfds.features.ClassLabel(num_classes=3),
                    }
                ),
                supervised_keys=("image", "label"),
                description="Tiny images for mp_keras tests.",
            )

        def _split_generators(self, dl_manager):
            return {name: self._generate_examples(name) for name in _TINY_SPLITS}

        def _generate_examples(self, split):
            for i, image in enumerate(_TINY_SPLITS[split]):
                yield i, {"image": image, "label": i % 3}

    data_dir = tmp_path_factory.mktemp("tfds")
    MpKerasTinyImages(data_dir=str(data_dir)).download_and_prepare()
    return data_dir


def test_tfds_reads_a_locally_prepared_dataset(prepared_tfds_dir, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(prepared_tfds_dir))
    monkeypatch.setenv("MP_KERAS_ALLOW_DOWNLOAD", "0")
    name = "tfds:mp_keras_tiny_images"
    train, test = data.load(name, "train"), data.load(name, "test")
    assert (len(train), len(test)) == (12, 5)
    assert train.x.shape == (12, 4, 4, 1) and train.x.dtype == np.float32
    assert train.y.dtype == np.int32 and train.info.num_classes == 3
    assert train.info.description == "Tiny images for mp_keras tests."
    assert train.info.value_range == (0.0, 1.0) and not train.info.binary
    for ds, split in ((train, "train"), (test, "test")):
        assert _rows(ds.x) == _rows(_TINY_SPLITS[split] / np.float32(255.0))
    assert len(data.load(name, "all")) == 17
    assert len(data.load(name, "all", num_examples=7)) == 7


class _FakeBuilder:
    """Stands in for a prepared TFDS builder, serving in-memory arrays."""

    def __init__(self, features: dict, splits: dict[str, int], supervised_keys=None):
        self.features = features
        self.requested_splits: list[str] = []
        self.info = types.SimpleNamespace(
            splits={k: types.SimpleNamespace(num_examples=n) for k, n in splits.items()},
            supervised_keys=supervised_keys,
            features={"label": types.SimpleNamespace(num_classes=10)},
            description="A fake dataset.\nMore text.",
        )
        self._offsets = {}
        start = 0
        for name, size in splits.items():
            self._offsets[name] = start
            start += size

    def is_prepared(self):
        return True

    def as_dataset(self, split, batch_size, as_supervised):
        assert batch_size == -1
        self.requested_splits.append(split)
        if split == "all":
            part = slice(None)
        else:  # "name[start:stop]"
            name, bounds = split.rstrip("]").split("[")
            start, stop = (int(b) for b in bounds.split(":"))
            offset = self._offsets[name]
            part = slice(offset + start, offset + stop)
        arrays = {key: value[part] for key, value in self.features.items()}
        if as_supervised:
            return arrays["image"], arrays["label"]
        return arrays


@pytest.fixture
def fake_tfds(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    builders = {}
    monkeypatch.setattr(tfds, "builder", lambda name, data_dir=None: builders[name])
    return builders


def test_tfds_supervised_images_are_scaled_with_int32_labels(fake_tfds):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 5, 5, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, size=30)
    builder = _FakeBuilder(
        {"image": images, "label": labels}, {"train": 20, "test": 10}, ("image", "label")
    )
    fake_tfds["fake_mnist"] = builder

    test = data.load("tfds:fake_mnist", "test")
    assert builder.requested_splits == ["test[0:10]"]
    assert test.info.name == "tfds:fake_mnist" and test.info.description == "A fake dataset."
    assert test.x.shape == (10, 5, 5, 1) and test.x.dtype == np.float32
    np.testing.assert_allclose(test.x, images[20:] / 255.0, rtol=1e-6)
    assert test.y.dtype == np.int32 and test.y.tolist() == labels[20:].tolist()
    assert test.info.num_classes == 10 and test.info.value_range == (0.0, 1.0)

    head = data.load("tfds:fake_mnist", "train", num_examples=5)
    assert builder.requested_splits[-1] == "train[0:5]" and len(head) == 5
    assert len(data.load("tfds:fake_mnist", "all", num_examples=25)) == 25


def test_tfds_unsupervised_binary_images_without_test_split(fake_tfds):
    bits = np.random.default_rng(0).integers(0, 2, size=(50, 4, 4), dtype=np.uint8)
    builder = _FakeBuilder({"image": bits}, {"train": 50})
    fake_tfds["fake_binarized"] = builder

    train = data.load("tfds:fake_binarized", "train")
    test = data.load("tfds:fake_binarized", "test")
    assert builder.requested_splits == ["train[0:40]", "train[40:50]"]
    assert train.y is None and train.info.num_classes is None
    assert train.x.shape == (40, 4, 4, 1)  # channel axis added
    assert train.info.binary and test.x.max() == 1.0  # 0/1 pixels kept, not divided by 255


# --------------------------------------------------------------------------- pipeline


def _epoch(ds) -> list[np.ndarray]:
    return [np.asarray(batch[0] if isinstance(batch, tuple) else batch) for batch in ds]


def test_pipeline_batches_with_and_without_labels():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10, dtype=np.int32)
    batches = list(data.pipeline(x, y, batch_size=4, shuffle=False))
    assert [tuple(b[0].shape) for b in batches] == [(4, 2), (4, 2), (2, 2)]
    np.testing.assert_array_equal(np.concatenate([np.asarray(b[1]) for b in batches]), y)
    assert batches[0][0].dtype.name == "float32" and batches[0][1].dtype.name == "int32"

    dropped = list(data.pipeline(x, batch_size=4, drop_remainder=True))
    assert [tuple(b.shape) for b in dropped] == [(4, 2), (4, 2)]
    repeated = data.pipeline(x, batch_size=4, repeat=True).take(6)
    assert [tuple(b.shape) for b in repeated] == [(4, 2)] * 6


def test_pipeline_accepts_a_dataset():
    ds = data.load("ring", num_examples=10)
    xb, yb = next(iter(data.pipeline(ds, batch_size=10, shuffle=False)))
    np.testing.assert_array_equal(np.asarray(xb), ds.x)
    np.testing.assert_array_equal(np.asarray(yb), ds.y)
    with pytest.raises(ValueError, match="not a Dataset and y"):
        data.pipeline(ds, ds.y)


def test_pipeline_shuffle_is_seeded_and_complete():
    x = np.arange(100, dtype=np.float32)[:, None]
    first = np.concatenate(_epoch(data.pipeline(x, batch_size=16, seed=5)))
    again = np.concatenate(_epoch(data.pipeline(x, batch_size=16, seed=5)))
    other = np.concatenate(_epoch(data.pipeline(x, batch_size=16, seed=6)))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, x)
    assert sorted(first[:, 0].tolist()) == x[:, 0].tolist()

    # Each pass over the same pipeline is reshuffled.
    ds = data.pipeline(x, batch_size=100, seed=5)
    assert not np.array_equal(_epoch(ds)[0], _epoch(ds)[0])


def test_pipeline_rejects_bad_arguments():
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="y has 3"):
        data.pipeline(x, np.zeros(3))
    with pytest.raises(ValueError, match="batch_size"):
        data.pipeline(x, batch_size=0)


def test_pipeline_feeds_model_fit_on_the_current_backend():
    ds = data.load("moons", num_examples=256)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
    # shuffle=False: the pipeline shuffles; Keras warns that its own shuffle is ignored.
    history = model.fit(data.pipeline(ds, batch_size=64), epochs=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 2
    assert np.isfinite(history.history["loss"]).all()
