"""Captions data: the vocabulary, tokenisation, prompts, and images that match their captions."""

from __future__ import annotations

import numpy as np
import pytest

from mp_keras import data
from mp_keras.data import captions


def test_tokenize_pads_and_round_trips():
    texts = ["a large red triangle at the top left", "a circle", "a blue shape"]
    tokens = captions.tokenize(texts)
    assert tokens.dtype == np.int32 and tokens.shape == (3, captions.MAX_LENGTH)
    assert (tokens[1, 2:] == captions.PAD_ID).all() and (tokens[0] != captions.PAD_ID).all()
    assert captions.detokenize(tokens) == texts
    assert captions.tokenize("a circle").shape == (1, captions.MAX_LENGTH)
    assert captions.VOCABULARY[captions.PAD_ID] == captions.PAD


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a purple circle", "purple"),
        ("a photo of a circle", r"\['of', 'photo'\]"),
        ("a <pad>", "<pad>"),
        ("", "empty"),
        ("a large red triangle at the top left a", "9 words"),
    ],
)
def test_tokenize_rejects_bad_captions(text, message):
    with pytest.raises(ValueError, match=message):
        captions.tokenize([text])


def test_caption_prompts_cover_every_class():
    for attribute, names in captions.ATTRIBUTES.items():
        prompts = captions.caption_prompts(attribute)
        assert len(prompts) == len(names)
        assert all(name in prompt for name, prompt in zip(names, prompts))
        assert captions.detokenize(captions.tokenize(prompts)) == prompts
    with pytest.raises(ValueError, match="attribute must be one of"):
        captions.caption_prompts("texture")


def test_generation_is_seeded_and_typed():
    a = captions.generate_captions(20, seed=3, image_size=16)
    b = captions.generate_captions(20, seed=3, image_size=16)
    c = captions.generate_captions(20, seed=4, image_size=16)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    images, tokens, labels = a
    assert images.shape == (20, 16, 16, 3) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert tokens.shape == (20, captions.MAX_LENGTH) and tokens.dtype == np.int32
    for attribute, names in captions.ATTRIBUTES.items():
        assert labels[attribute].shape == (20,) and labels[attribute].max() < len(names)
    for bad in (dict(image_size=8), dict(drop_prob=1.0), dict(num_examples=0)):
        with pytest.raises(ValueError):
            captions.generate_captions(**{"num_examples": 4, **bad})


def test_images_show_what_their_captions_say():
    size = 32
    images, tokens, labels = captions.generate_captions(300, seed=1, image_size=size, drop_prob=0)
    texts = captions.detokenize(tokens)
    for i in range(len(texts)):
        expected = captions.caption(
            labels["shape"][i],
            labels["colour"][i],
            labels["size"][i],
            labels["position"][i],
            [True] * 4,
        )
        assert texts[i] == expected
    # The shape is where its colour channel stands out from the other two.
    lead = images.max(-1) - np.median(images, -1)
    area = np.zeros(len(images))
    for i, image in enumerate(images):
        mask = lead[i] > 0.4
        channel = labels["colour"][i]
        assert image[mask].mean(0).argmax() == channel
        rows, cols = np.nonzero(mask)
        top, left = rows.mean() < size / 2, cols.mean() < size / 2
        assert labels["position"][i] == 2 * (not top) + (not left)
        area[i] = mask.sum()
    small, large = area[labels["size"] == 0], area[labels["size"] == 1]
    assert small.max() < large.min()


def test_drop_prob_leaves_attributes_out():
    _, tokens, _ = captions.generate_captions(400, seed=0, image_size=16, drop_prob=0.3)
    lengths = (tokens != captions.PAD_ID).sum(1)
    assert lengths.min() == 2 and lengths.max() == captions.MAX_LENGTH  # "a shape" ... full
    full = np.mean(lengths == captions.MAX_LENGTH)
    assert 0.7**4 - 0.08 < full < 0.7**4 + 0.08
    _, tokens, _ = captions.generate_captions(50, seed=0, image_size=16, drop_prob=0.0)
    assert ((tokens != captions.PAD_ID).sum(1) == captions.MAX_LENGTH).all()


def test_dataset_loader_pairs_images_with_tokens():
    loader, description = captions.DATASETS["captions"]
    assert "captions" in description or "caption" in description
    train = loader("captions", "train", 0, 30)
    test = loader("captions", "test", 0, 30)
    assert train.x.shape == (30, 32, 32, 3) and train.y.shape == (30, captions.MAX_LENGTH)
    assert not np.array_equal(train.x, test.x)
    labels = captions.captions_labels("train", 0, 30)
    texts = captions.detokenize(train.y)
    for i, text in enumerate(texts):
        words = text.split()
        shape = captions.ATTRIBUTES["shape"][labels["shape"][i]]
        assert shape in words or "shape" in words
    both = loader("captions", "all", 0, 12)
    assert len(both) == 12


@pytest.mark.skipif(
    "captions" not in data.list_datasets(), reason="not yet registered in mp_keras.data"
)
def test_registered_in_the_data_registry():
    ds = data.load("captions", "test", num_examples=5)
    assert ds.x.shape == (5, 32, 32, 3) and ds.y.shape == (5, captions.MAX_LENGTH)


def test_captions_16_is_the_same_pairs_at_16_pixels():
    big, small = (
        data.load("captions", "test", num_examples=40),
        data.load("captions_16", "test", num_examples=40),
    )
    assert small.x.shape == (40, 16, 16, 3) and small.info.shape == (16, 16, 3)
    np.testing.assert_array_equal(small.y, big.y)  # the same captions
    labels = captions.captions_labels("test", num_examples=40)
    colour = small.x.reshape(40, -1, 3).max(axis=1).argmax(axis=1)  # the shape's tint
    np.testing.assert_array_equal(colour, labels["colour"])
    assert len(data.load("captions_16", "all", num_examples=12)) == 12
