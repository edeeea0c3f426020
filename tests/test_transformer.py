"""Transformer: binary-image density (autoregressive by gradient, normalised), cached
decoding equal to full reruns, the addition task, input checks, export parity."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras.data import addition
from mp_keras.engine import compiled
from mp_keras.export import export_model
from mp_keras.models.transformer import Transformer
from tests.harness import (
    binary_images,
    check_autoregressive,
    check_config_round_trip,
    check_normalises,
    export_test_on,
    random_probe,
    randomize_weights,
    run_standard_checks,
    to_numpy,
)

# One size per use, so that a backend compiling per shape (JAX) compiles each op once.
IMAGES = dict(input_shape=(2, 2, 1), embed_dim=16, num_heads=2, num_layers=1)
TOKENS = dict(vocab_size=5, max_length=6, embed_dim=16, num_heads=2, num_layers=2)


def tokens(shape, seed=0, vocab=5):
    return np.random.default_rng(seed).integers(0, vocab, shape).astype("float32")


def test_standard_checks_and_binary_samples(tmp_path):
    keras.utils.set_random_seed(0)

    def make():
        model = Transformer(**IMAGES, seed=0)
        model.sample(8, seed=7)  # traces the decoding step before the weights change
        return model

    model = run_standard_checks(make, binary_images((16, 2, 2, 1)), (None, 2, 2, 1), tmp_path)
    randomize_weights(model, seed=5)  # new weights: a trace holding the old ones is stale
    samples = to_numpy(model.sample(8, seed=7))
    assert samples.shape == (8, 2, 2, 1) and set(np.unique(samples)) <= {0.0, 1.0}
    # Sampling after the change uses the new weights: a copy that never sampled agrees.
    copy = Transformer.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    np.testing.assert_array_equal(samples, to_numpy(copy.sample(8, seed=7)))


def test_autoregressive_by_gradient():
    model = Transformer(**IMAGES, positions="sinusoidal", seed=0)
    randomize_weights(model, seed=1, scale=0.5)
    jac = check_autoregressive(model, random_probe((2, 2, 1)))  # [output, input]
    assert (np.abs(jac[np.tril_indices(4, -1)]) > 0).all()  # every pixel sees all of x_<i
    # Sinusoidal positions are a fixed table: one weight matrix fewer to train.
    assert len(model.trainable_weights) == len(Transformer(**IMAGES).trainable_weights) - 1


def test_log_prob_of_the_sixteen_images_sums_to_one():
    model = Transformer(**IMAGES, seed=0)
    randomize_weights(model, seed=2)
    check_normalises(model, atol=1e-5)


def test_token_logits_at_t_move_only_with_earlier_tokens():
    model = Transformer(**TOKENS, seed=0)
    randomize_weights(model, seed=3, scale=0.3)
    x = tokens((1, 6))
    changed = np.repeat(x, 7, axis=0)  # row j + 1: token j changed; row 0 the original
    changed[np.arange(1, 7), np.arange(6)] = (x[0] + 1) % 5
    logits = to_numpy(compiled(model.logits)(changed))  # (7, time, vocab)
    moved = np.abs(logits[1:] - logits[:1]).max(axis=-1) > 1e-6  # [j, t]
    np.testing.assert_array_equal(moved, np.triu(np.ones((6, 6), bool), k=1))  # t > j only


def test_cached_decoding_equals_rerunning_the_full_model():
    model = Transformer(**TOKENS, seed=0)
    randomize_weights(model, seed=4, scale=0.3)
    x = tokens((7, 6), seed=5)
    logits = compiled(model.logits)  # no gradient needed: one compiled program (JAX)
    full = to_numpy(logits(x))  # (batch, time, vocab)
    decode_step = compiled(model.decode_step)
    cache_k, cache_v = model.empty_cache(7)
    token = np.full(7, model.start_token, "int32")
    for t in range(6):  # teacher forcing through the step: every position's logits
        step = decode_step(token, np.array([t], "int32"), cache_k, cache_v)
        cache_k, cache_v = step["cache_k"], step["cache_v"]
        np.testing.assert_allclose(to_numpy(step["logits"]), full[:, t], atol=1e-4)
        token = x[:, t].astype("int32")
    prompt = x[:, :2]
    results = {}
    for name, kwargs in (("sampled", dict(seed=11, temperature=0.7)), ("greedy", {})):
        cached = to_numpy(model.generate(prompt=prompt, greedy=name == "greedy", **kwargs))
        uncached = to_numpy(
            model.generate(prompt=prompt, greedy=name == "greedy", cache=False, **kwargs)
        )
        np.testing.assert_array_equal(cached, uncached)
        np.testing.assert_array_equal(cached[:, :2], prompt)
        assert cached.shape == (7, 6) and cached.min() >= 0 and cached.max() < 5
        results[name] = cached
    greedy = results["greedy"].astype("float32")  # each new token: the argmax given the past
    np.testing.assert_array_equal(greedy[:, 2:], to_numpy(logits(greedy))[:, 2:].argmax(-1))
    again = to_numpy(model.generate(prompt=prompt, seed=11, temperature=0.7))
    other = to_numpy(model.generate(prompt=prompt, seed=12, temperature=0.7))
    np.testing.assert_array_equal(again, results["sampled"])  # noise drawn up front from seed
    assert (other != again).any()


def test_addition_split_holds_out_pairs_and_strings_round_trip():
    train, test = addition.split_pairs(2, "train"), addition.split_pairs(2, "test")
    seen = set(zip(*train))
    assert len(seen) == 9000 and len(test[0]) == 1000
    assert not seen & set(zip(*test))
    x = addition.encode(*test, digits=2)
    strings = addition.decode(x)
    assert all(s == f"{a:02d}+{b:02d}={a + b}" for s, a, b in zip(strings, *test))
    assert addition.answer_accuracy(x, *test) == 1.0
    wrong = x.copy()
    wrong[:10, addition.prompt_length(2)] = (wrong[:10, addition.prompt_length(2)] + 1) % 10
    assert addition.answer_accuracy(wrong, *test) == pytest.approx(0.99)


def test_training_on_tiny_addition_lowers_the_loss():
    keras.utils.set_random_seed(0)
    x, _, _ = addition.load_addition(1, "train")  # 90 strings "a+b=c<end>..." of 7 tokens
    model = Transformer(vocab_size=addition.VOCAB_SIZE, max_length=7, embed_dim=16, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x.astype("float32"), epochs=5, batch_size=10, verbose=0).history["loss"]
    assert history[0] > 12.0  # 7 uniform tokens of 14 would be 7 ln 14 = 18.5 nats
    # A perfect model pays only for the two random operands, 2 ln 10 = 4.6 nats; after 45
    # steps the model pays about 7.5 (the format and part of the sums learnt).
    assert history[-1] < min(0.6 * history[0], 8.5)


def test_bad_inputs_raise_naming_what_was_expected():
    images, seqs = Transformer(**IMAGES), Transformer(**TOKENS)
    images.compile()
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        images.fit(np.full((4, 2, 2, 1), 0.5, "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"\(batch, 2, 2, 1\)"):
        images.log_prob(np.zeros((2, 3, 3, 1), "float32"))
    with pytest.raises(ValueError, match=r"integers in \[0, 5\)"):
        seqs.log_prob(np.full((2, 6), 5.0, "float32"))
    with pytest.raises(ValueError, match=r"integers in \[0, 5\)"):
        seqs.generate(prompt=np.full((1, 2), 1.5))
    with pytest.raises(ValueError, match="max_length=6"):
        seqs(np.zeros((2, 7), "float32"))
    with pytest.raises(ValueError, match="max_length=6"):
        seqs.generate(prompt=np.zeros((1, 4)), length=3)
    with pytest.raises(ValueError, match="learns from the inputs alone"):
        images.fit(binary_images((4, 2, 2, 1)), np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match="vocab_size=2"):
        Transformer(vocab_size=3, input_shape=(2, 2, 1))
    with pytest.raises(ValueError, match="must divide embed_dim"):
        Transformer(vocab_size=5, max_length=6, embed_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="max_length"):
        Transformer(vocab_size=5)


@export_test_on("torch")
def test_export_passes_tflite_parity(tmp_path):
    model = Transformer(**TOKENS, positions="sinusoidal", dropout=0.1, seed=0)
    check_config_round_trip(model)
    randomize_weights(model, seed=6, scale=0.3)
    model.compile()
    model.save(tmp_path / "transformer.keras")
    manifest = export_model(tmp_path / "transformer.keras", tmp_path / "export")
    assert manifest["passed"]
    text = str(manifest)
    assert "decode_step" in text and "log_prob" in text
