"""CLIP: the symmetric contrastive loss, the encoders' invariants, zero-shot use, checks."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from mp_keras.data import captions
from mp_keras.export import export_model
from mp_keras.models.clip import CLIP, contrastive_loss
from tests.harness import export_test_on, randomize_weights, run_standard_checks, to_numpy

SIZE = 16
VOCAB = len(captions.VOCABULARY)


def small(**kwargs):
    defaults = dict(
        image_shape=(SIZE, SIZE, 3),
        vocab_size=VOCAB,
        max_length=captions.MAX_LENGTH,
        embed_dim=16,
        filters=(16, 32),
        image_units=64,
        text_dim=16,
        num_heads=2,
        num_layers=1,
        seed=0,
    )
    return CLIP(**{**defaults, **kwargs})


@pytest.fixture(scope="module")
def pairs():
    x, tokens, labels = captions.generate_captions(64, seed=0, image_size=SIZE)
    return x, tokens, labels


def unit(rng, shape):
    v = rng.normal(size=shape).astype("float32")
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def tiny(**kwargs):
    return small(**{"embed_dim": 8, "filters": (4,), "image_units": 8, "text_dim": 8, **kwargs})


def test_standard_checks(pairs, tmp_path):
    x, tokens, _ = pairs
    model = run_standard_checks(tiny, x, (None, 8), tmp_path, y=tokens)
    assert to_numpy(model.encode_text(tokens[:5])).shape == (5, 8)
    assert to_numpy(model.similarity(x[:3], tokens[:5])).shape == (3, 5)


def test_loss_matches_formula_and_is_symmetric():
    rng = np.random.default_rng(0)
    image, text = unit(rng, (6, 4)), unit(rng, (6, 4))
    logits = 5.0 * image @ text.T

    def xent(rows):  # mean over i of -log softmax(rows)[i, i]
        rows = rows - rows.max(1, keepdims=True)
        log_p = rows - np.log(np.exp(rows).sum(1, keepdims=True))
        return -np.diag(log_p).mean()

    expected = 0.5 * (xent(logits) + xent(logits.T))
    loss = float(to_numpy(contrastive_loss(image, text, 5.0)))
    assert loss == pytest.approx(expected, rel=1e-5)
    assert float(to_numpy(contrastive_loss(text, image, 5.0))) == pytest.approx(loss, rel=1e-6)
    assert float(to_numpy(CLIP.contrastive_loss(image, text, 5.0))) == pytest.approx(loss)


def test_loss_is_minimal_on_matched_pairs():
    e = np.eye(8, dtype="float32")
    matched = float(to_numpy(contrastive_loss(e, e, 100.0)))
    shuffled = float(to_numpy(contrastive_loss(e, e[np.roll(np.arange(8), 1)], 100.0)))
    assert matched < 1e-6
    assert shuffled > 50.0  # each pair's own logit is 100 below the best
    uniform = float(to_numpy(contrastive_loss(e, e, 0.0)))
    assert uniform == pytest.approx(math.log(8), rel=1e-6)


def test_embeddings_are_unit_vectors_and_pads_are_masked(pairs):
    x, tokens, _ = pairs
    model = tiny()
    randomize_weights(model, scale=0.3)
    image, text = to_numpy(model.encode_image(x[:5])), to_numpy(model.encode_text(tokens[:5]))
    np.testing.assert_allclose(np.linalg.norm(image, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, rtol=1e-5)
    # The pad token's embedding never reaches the output (same shapes as the standard
    # checks: one eager compilation per shape on JAX).
    table = to_numpy(model.token_embedding.embeddings)
    table[captions.PAD_ID] = 50.0
    model.token_embedding.embeddings.assign(table)
    np.testing.assert_allclose(to_numpy(model.encode_text(tokens[:5])), text, atol=1e-5)
    # similarity = logit_scale * cosine
    scale = float(to_numpy(model.logit_scale))
    np.testing.assert_allclose(
        to_numpy(model.similarity(x[:5], tokens[:5])), scale * image @ text.T, atol=1e-4
    )


def test_logit_scale_starts_at_the_papers_value_and_is_clipped():
    model = tiny()
    assert float(to_numpy(model.logit_scale)) == pytest.approx(1 / 0.07, rel=1e-5)
    model.log_logit_scale.assign(math.log(1000.0))
    assert float(to_numpy(model.logit_scale)) == pytest.approx(100.0)


@pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="the same keras.ops on every backend; on JAX the standard checks fit CLIP, and "
    "JAX's test stream is CI's longest (apps/benchmarks/clip_zero_shot.py trains on JAX)",
)
def test_short_fit_beats_chance_at_zero_shot(pairs):
    # Colour and position separate within a few dozen steps; shape takes ~1000 (see the
    # slow test and apps/benchmarks/clip_zero_shot.py).
    keras.utils.set_random_seed(0)
    x, tokens, _ = captions.generate_captions(1024, seed=1, image_size=SIZE)
    held_out, full, labels = captions.generate_captions(200, seed=2, image_size=SIZE, drop_prob=0)
    model = small(num_layers=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(x, tokens, batch_size=64, epochs=6, verbose=0).history
    assert history["loss"][-1] < history["loss"][0] - 0.5
    for attribute, least in (("colour", 0.6), ("position", 0.6)):
        prompts = captions.tokenize(captions.caption_prompts(attribute))
        accuracy = np.mean(model.zero_shot_classify(held_out, prompts) == labels[attribute])
        assert accuracy > least, (attribute, accuracy)
    recall = model.retrieval_recall(held_out, full, k=(1, 5, 100))
    assert recall["recall@1"] <= recall["recall@5"] <= recall["recall@100"] == 1.0
    assert recall["recall@5"] > 5 / recall["captions"] + 0.2


@pytest.mark.slow
def test_longer_fit_learns_shapes():
    keras.utils.set_random_seed(0)
    x, tokens, _ = captions.generate_captions(8192, seed=1, image_size=SIZE)
    held_out, _, labels = captions.generate_captions(300, seed=2, image_size=SIZE, drop_prob=0)
    model = small(num_layers=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(x, tokens, batch_size=64, epochs=10, verbose=0)
    prompts = captions.tokenize(captions.caption_prompts("shape"))
    accuracy = np.mean(model.zero_shot_classify(held_out, prompts) == labels["shape"])
    assert accuracy > 0.5  # chance 1/3


def test_input_checks(pairs):
    x, tokens, _ = pairs
    model = tiny()
    model.compile()
    with pytest.raises(ValueError, match="outside the captions vocabulary"):
        model.zero_shot_classify(x, captions.tokenize(["a circle", "a hexagon"]))
    with pytest.raises(ValueError, match=r"tokens in \[0, 17\)"):
        model.zero_shot_classify(x, np.full((2, captions.MAX_LENGTH), VOCAB, "int32"))
    with pytest.raises(ValueError, match=r"images of shape \(batch, 16, 16, 3\)"):
        model.encode_image(np.zeros((2, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match="images of rank 4"):
        model.zero_shot_classify(np.zeros((2, 16, 16), "float32"), tokens[:3])
    with pytest.raises(ValueError, match=r"tokens of shape \(batch, 8\)"):
        model.encode_text(tokens[:, :5])
    with pytest.raises(ValueError, match="image-caption pairs"):
        model.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="all padding"):
        model.fit(x[:2], np.zeros((2, captions.MAX_LENGTH), "int32"), verbose=0)
    with pytest.raises(ValueError, match="as many captions as images"):
        model.retrieval_recall(x[:4], tokens[:3])
    with pytest.raises(ValueError, match="num_heads"):
        small(text_dim=9, num_heads=2)


@export_test_on()
def test_export_encoders_pass_tflite_parity(tmp_path):
    model = small()
    randomize_weights(model, scale=0.3)
    model.save(tmp_path / "clip.keras")
    manifest = export_model(
        tmp_path / "clip.keras", tmp_path / "export", imports=["mp_keras.models.clip"]
    )
    assert manifest["passed"]
