"""Generated sequence tasks: shapes, labels recomputed from the inputs, seeds and splits."""

from __future__ import annotations

import numpy as np
import pytest

from mp_keras import data
from mp_keras.data import sequences
from mp_keras.data.sequences import END, num_tokens

NAMES = ["tagging", "counting", "majority", "reverse", "sort"]


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_info(name):
    train, test = data.load(name, "train"), data.load(name, "test")
    assert (len(train), len(test)) == (4096, 1024)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int32
    assert train.x.shape[1:] == train.info.shape
    assert train.x.min() >= 0 and train.x.max() <= train.info.value_range[1]
    assert np.all(train.x == np.round(train.x))  # token ids stored as floats
    assert train.y.min() >= 0 and train.y.max() < train.info.num_classes
    assert name in data.list_datasets()


@pytest.mark.parametrize("name", NAMES)
def test_seeds_and_splits(name):
    first = data.load(name, "test", seed=3, num_examples=50)
    again = data.load(name, "test", seed=3, num_examples=50)
    other = data.load(name, "test", seed=4, num_examples=50)
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(first.y, again.y)
    assert len(first) == 50 and not np.array_equal(first.x, other.x)
    everything = data.load(name, "all", num_examples=100)
    assert len(everything) == 100


def test_tagging_labels_are_running_parities():
    ds = data.load("tagging", "test", num_examples=200)
    x = ds.x.astype(int)
    assert ds.x.shape == (200, sequences.TAGGING_LENGTH)
    for row in range(5):
        parity = [sum(x[row, : t + 1]) % 2 for t in range(x.shape[1])]
        assert ds.y[row].tolist() == parity
    assert 0.4 < ds.y.mean() < 0.6


def test_counting_counts_on_from_the_input_digit():
    ds = data.load("counting", "train", num_examples=100)
    assert ds.x.shape == (100, 1) and ds.y.shape == (100, sequences.COUNTING_LENGTH)
    np.testing.assert_array_equal(ds.y[:, 0], ds.x[:, 0])
    np.testing.assert_array_equal(np.diff(ds.y, axis=1) % 10, 1)
    assert set(ds.x[:, 0].astype(int)) == set(range(10))


def test_majority_label_is_the_unique_most_frequent_token():
    ds = data.load("majority", "test")
    counts = np.stack([(ds.x == k).sum(axis=1) for k in range(sequences.MAJORITY_TOKENS)], 1)
    np.testing.assert_array_equal(counts.argmax(axis=1), ds.y)
    top = np.sort(counts, axis=1)
    assert np.all(top[:, -1] > top[:, -2])  # no ties
    assert np.bincount(ds.y).min() > 0.2 * len(ds)  # roughly balanced classes


@pytest.mark.parametrize("name", ["reverse", "sort"])
def test_encoder_decoder_strings(name):
    ds = data.load(name, "test")
    assert ds.y.shape[1] == ds.x.shape[1] + 1  # the output is one token longer
    lengths = (ds.x != END).sum(axis=1)
    assert lengths.min() == sequences.SEQ2SEQ_MIN_LENGTH
    assert lengths.max() == sequences.SEQ2SEQ_MAX_LENGTH
    for x, y, n in zip(ds.x[:50].astype(int), ds.y[:50], lengths[:50]):
        assert np.all(x[n:] == END) and np.all(y[n:] == END)  # padding, end token
        digits = x[:n]
        assert y[:n].tolist() == (digits[::-1] if name == "reverse" else np.sort(digits)).tolist()


def test_vocabulary_sizes():
    assert [num_tokens(n) for n in NAMES] == [10, 10, 4, 11, 11]
    assert num_tokens(data.load("reverse", "test", num_examples=1).info) == 11


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        data.load("tagging", "valid")
    with pytest.raises(ValueError, match="num_examples"):
        data.load("reverse", "train", num_examples=0)
