"""Sequence models of chapter 4: harness checks, learning their tasks, decoding invariants."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.export import export_model
from mp_keras.models.seq2seq import Seq2Seq, SequenceGenerator
from mp_keras.models.sequence import SequenceAccuracy, SequenceClassifier, SequenceTagger
from tests.harness import run_standard_checks, to_numpy


def make_tagger(**kwargs):
    return SequenceTagger(sequence_length=12, num_tokens=10, num_classes=2, **kwargs)


def make_classifier(**kwargs):
    return SequenceClassifier(sequence_length=11, num_tokens=4, num_classes=4, **kwargs)


def make_generator(**kwargs):
    return SequenceGenerator(num_tokens=10, num_classes=10, output_length=8, **kwargs)


def make_seq2seq(**kwargs):
    return Seq2Seq(input_length=6, output_length=7, num_tokens=11, num_classes=11, **kwargs)


def tokens(rng, shape, vocabulary):
    return rng.integers(0, vocabulary, size=shape).astype("float32")


@pytest.fixture()
def small_cases():
    """Short sequences keep the harness's compiled steps cheap; Seq2Seq keeps the defaults."""
    rng = np.random.default_rng(0)
    x5, x1, x3 = tokens(rng, (16, 5), 10), tokens(rng, (16, 1), 10), tokens(rng, (16, 3), 11)
    return {
        "tagger": (
            lambda: SequenceTagger(5, 10, 2, units=8, unroll=False),
            x5,
            (x5 % 2).astype("int32"),
        ),
        "classifier": (
            lambda: SequenceClassifier(5, 10, 3, cell="elman", units=8, unroll=False),
            x5,
            (x5[:, 0] % 3).astype("int32"),
        ),
        "generator": (
            lambda: SequenceGenerator(10, 10, 4, cell="elman", units=8, unroll=False),
            x1,
            ((x1 + np.arange(4)) % 10).astype("int32"),
        ),
        "seq2seq": (
            lambda: Seq2Seq(
                input_length=3, output_length=4, num_tokens=11, num_classes=11, units=8
            ),
            x3,
            np.concatenate([x3[:, ::-1], np.full((16, 1), 10)], axis=1).astype("int32"),
        ),
    }


@pytest.mark.parametrize(
    ("case", "shape"),
    [
        ("tagger", (None, 5, 2)),
        ("classifier", (None, 3)),
        ("generator", (None, 4, 10)),
        ("seq2seq", (None, 4, 11)),
    ],
)
def test_standard_checks(case, shape, small_cases, tmp_path):
    make, x, y = small_cases[case]
    model = run_standard_checks(make, x, shape, tmp_path, y=y)
    assert model.export_endpoints()


def fit_and_evaluate(model, dataset, epochs, num_examples=2048, learning_rate=1e-2):
    keras.utils.set_random_seed(0)
    train = data.load(dataset, "train", num_examples=num_examples)
    test = data.load(dataset, "test")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    model.fit(train.x, train.y, epochs=epochs, batch_size=64, verbose=0)
    return model.evaluate(test.x, test.y, batch_size=256, verbose=0, return_dict=True)


# The learning tests loop over time steps instead of unrolling them (unroll=False): the
# same numbers, and JAX compiles the loop several times faster.


def test_tagger_learns_running_parity():
    model = make_tagger(units=32, unroll=False)
    result = fit_and_evaluate(model, "tagging", epochs=4, num_examples=4096)
    assert result["accuracy"] > 0.9  # chance: 0.5 per step


def test_classifier_learns_the_majority_token():
    model = make_classifier(cell="elman", units=32, unroll=False)
    result = fit_and_evaluate(model, "majority", epochs=4, num_examples=4096)
    assert result["accuracy"] > 0.75  # chance: 0.25 (4 balanced classes)


def test_generator_learns_to_count():
    model = make_generator(cell="elman", units=32, unroll=False)
    result = fit_and_evaluate(model, "counting", epochs=3, num_examples=1024)
    assert result["sequence_accuracy"] > 0.9  # greedy decoding, every token right


def test_seq2seq_learns_to_reverse():
    result = fit_and_evaluate(make_seq2seq(units=64, unroll=False), "reverse", epochs=4)
    # Per token, always answering the end token scores about 0.43; whole strings by
    # chance almost never come out right.
    assert result["accuracy"] > 0.7
    assert result["sequence_accuracy"] > 0.3


@pytest.mark.parametrize("make", [make_tagger, make_seq2seq])
def test_unrolled_and_looped_recurrences_agree(make):
    unrolled, looped = make(units=8), make(units=8, unroll=False)
    looped.set_weights(unrolled.get_weights())
    x = np.random.default_rng(0).integers(0, 4, size=(3, unrolled._input_length()))
    x = x.astype("float32")
    np.testing.assert_allclose(to_numpy(looped(x)), to_numpy(unrolled(x)), atol=1e-6)


def test_teacher_forcing_on_its_own_outputs_is_greedy_decoding():
    # Greedy decoding feeds back its own argmax; teacher forcing with those very tokens
    # must then reproduce its logits step for step.
    model = make_seq2seq(units=8)
    x = data.load("reverse", "test", num_examples=8).x
    greedy = to_numpy(model(x))
    tokens = greedy.argmax(axis=-1)
    forced = to_numpy(model.teacher_forced_logits(x, tokens))
    np.testing.assert_allclose(forced, greedy, atol=1e-5)


@pytest.mark.parametrize("make", [make_generator, make_seq2seq], ids=["generator", "seq2seq"])
def test_exported_step_functions_reproduce_generation(make):
    model = make(cell="elman", units=8)
    x = data.load("counting" if make is make_generator else "reverse", "test", num_examples=8).x
    state = model.encode(x)
    token = np.full((8, 1), model.start_token, "float32")
    tokens = []
    for _ in range(model.output_length):
        step = model.decode_step(token, state)
        state = step["state"]
        token = to_numpy(step["logits"]).argmax(axis=-1)[:, None].astype("float32")
        tokens.append(token[:, 0])
    np.testing.assert_array_equal(np.stack(tokens, axis=1), to_numpy(model.generate(x)))


def test_sequence_accuracy_counts_exact_matches():
    model = make_seq2seq(units=8)
    model.compile()
    ds = data.load("reverse", "test", num_examples=64)
    predicted = to_numpy(model.generate(ds.x))
    predicted[:16] = ds.y[:16]  # 16 right by construction; feed the metric directly
    logits = np.eye(11, dtype="float32")[predicted]
    metric = SequenceAccuracy()
    metric.update_state(ds.y, logits)
    expected = np.mean(np.all(predicted == ds.y, axis=1))
    assert float(metric.result()) == pytest.approx(expected) and expected >= 0.25


def test_export(tmp_path):
    model = make_seq2seq(units=8)
    model.compile()
    model.save(tmp_path / "seq2seq.keras")
    manifest = export_model(tmp_path / "seq2seq.keras", tmp_path / "export")
    assert manifest["passed"]


@pytest.mark.slow
@pytest.mark.parametrize("make", [make_tagger, make_classifier, make_generator])
def test_export_other_models(make, tmp_path):
    model = make(units=8)
    model.compile()
    model.save(tmp_path / "model.keras")
    assert export_model(tmp_path / "model.keras", tmp_path / "export")["passed"]


def test_bad_inputs():
    tagger, seq2seq = make_tagger(units=8), make_seq2seq(units=8)
    tagger.compile()
    seq2seq.compile()
    y = np.zeros((4, 12), "int32")
    with pytest.raises(ValueError, match="rank 2"):
        tagger.fit(np.zeros((4, 12, 1), "float32"), y, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 12\)"):
        tagger.predict(np.zeros((4, 11), "float32"), verbose=0)
    with pytest.raises(ValueError, match="integers in \\[0, 10\\)"):
        tagger.fit(np.full((4, 12), 10.0, "float32"), y, verbose=0)
    with pytest.raises(ValueError, match="integers"):
        tagger.predict(np.full((4, 12), 0.5, "float32"), verbose=0)
    with pytest.raises(ValueError, match="finite"):
        tagger.fit(np.full((4, 12), np.nan, "float32"), y, verbose=0)
    with pytest.raises(ValueError, match=r"targets of shape \(batch, 7\)"):
        seq2seq.fit(np.zeros((4, 6), "float32"), np.zeros((4, 5), "int32"), verbose=0)
    with pytest.raises(ValueError, match="cell must be one of"):
        SequenceTagger(12, 10, 2, cell="gru")
    with pytest.raises(ValueError, match="num_classes"):
        SequenceClassifier(11, 4, 1)


def test_prediction_figure(tmp_path):
    from mp_keras.plots.sequences import save_sequence_figure

    rng = np.random.default_rng(0)
    x = tokens(rng, (4, 5), 10)
    for name, model, y in [
        ("classifier", SequenceClassifier(5, 10, 3, units=4, unroll=False), np.zeros(4, "int32")),
        ("seq2seq", Seq2Seq(5, 6, 10, 11, units=4, unroll=False), np.zeros((4, 6), "int32")),
    ]:
        path = tmp_path / f"{name}.png"
        save_sequence_figure(model, path, x, y, num=3)
        assert path.read_bytes()[:4] == b"\x89PNG"
