"""WaveNet: causality and receptive field by gradient, fast generation = naive generation,
the step = the full network, exact normalisation, global conditioning, checks, export.

The models share one size (8 classes, 8 channels, R = 8) and one data shape where they
can, so that a backend that compiles per shape (JAX) compiles each operation once.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from mp_keras.engine import compiled, jacobian
from mp_keras.export import export_model
from mp_keras.layers.causal_conv import CausalConv1D, WaveNetBlock
from mp_keras.models.wavenet import WaveNet
from tests.harness import (
    check_config_round_trip,
    export_test_on,
    randomize_weights,
    run_standard_checks,
    to_numpy,
)

# name -> (config, receptive field worked out by hand)
CONFIGS = {
    # causal conv of 2 taps (+1) and two blocks of dilations 1, 2 (+3 each): 1 + 1 + 6
    "two_blocks": ({}, 8),
    # a 1 x 1 input layer (+0), one block of 3-tap layers with dilations 1, 2: 1 + 2 * 3
    "three_taps": (
        {"kernel_size": 3, "initial_kernel_size": 1, "num_blocks": 1, "dilations_per_block": 2},
        7,
    ),
}
# One data shape everywhere (the standard checks' too): JAX compiles each operation once.
BATCH, TIME = 16, 12
LABELS = np.arange(BATCH, dtype="int32") % 3


def tiny(**kwargs):
    defaults = dict(
        num_classes=8,  # one width everywhere: few distinct weight shapes to initialise
        residual_channels=8,
        dilation_channels=8,
        skip_channels=8,
        num_blocks=2,
        dilations_per_block=2,
        seed=0,
    )
    return WaveNet(**{**defaults, **kwargs})


def classes(shape=(BATCH, TIME), seed=0, num_classes=8):
    return np.random.default_rng(seed).integers(0, num_classes, size=shape).astype("int32")


def randomized(seed=0, **kwargs):
    """A tiny model with random weights and biases, so that every tap and gate matters."""
    model = tiny(**kwargs)
    randomize_weights(model, seed=seed, scale=0.4)
    return model


def stepped_logits(model, x):
    """Logits of every position from `generation_step`, fed the true previous samples."""
    step = compiled(model.generation_step)  # one trace, not one per operation (JAX)
    queues = model.initial_queues(len(x))
    previous = np.full(len(x), model.silence, "int32")
    logits = []
    for t in range(x.shape[1]):
        out, queues = step(keras.ops.convert_to_tensor(previous), queues)
        logits.append(to_numpy(out))
        previous = x[:, t]
    return np.stack(logits, axis=1)


def test_standard_checks_then_training_lowers_the_loss(tmp_path):
    model = run_standard_checks(tiny, classes(), (None, TIME, 8), tmp_path)
    # A sawtooth 0, 1, ..., 7, 0, ... with a random phase: after the first sample each
    # one is the previous plus one, which the causal network can read. Same batch shape
    # as the standard fit step, so its compiled step is reused.
    phase = np.random.default_rng(1).integers(0, 8, size=(BATCH, 1))
    saw = ((phase + np.arange(TIME)) % 8).astype("int32")
    model.optimizer.learning_rate.assign(3e-2)
    history = model.fit(saw, epochs=40, batch_size=8, verbose=0).history
    uniform = TIME * np.log(8)  # 24.95 nats: every sample a guess among 8
    assert history["loss"][0] > 0.8 * uniform
    # Learned: only the first sample (the phase) stays uncertain, at most ln 8 nats.
    assert history["loss"][-1] < 2 * np.log(8), history["loss"]
    np.testing.assert_allclose(
        history["bits_per_dim"][-1], history["loss"][-1] / (TIME * np.log(2)), rtol=1e-4
    )
    assert model.bits_per_dim(saw) == pytest.approx(model.nll(saw) / (TIME * np.log(2)))


def test_causal_with_exactly_the_receptive_field_by_gradient():
    model = randomized()
    field = model.receptive_field
    assert field == CONFIGS["two_blocks"][1]
    x = np.random.default_rng(2).normal(size=(BATCH, TIME, 8)).astype("float32")
    w = keras.ops.convert_to_tensor(np.random.default_rng(3).normal(size=(8,)).astype("float32"))
    # Of example 0: an output whose window is cut by the start, and a full one.
    rows = np.array([5, TIME - 1])

    def projected(v):
        return keras.ops.take(keras.ops.matmul(model.network(v)[0], w), rows)

    grads = jacobian(projected, x)  # (rows, batch, time, classes)
    assert not np.abs(grads[:, 1:]).any()  # examples do not mix
    reads = np.abs(grads[:, 0]).sum(axis=-1) > 0  # [output row, input j]
    j = np.arange(TIME)[None, :]
    t = rows[:, None]
    np.testing.assert_array_equal(reads, (j <= t) & (j > t - field))  # nothing after t
    assert reads[-1, TIME - field] and reads[-1, TIME - 1]  # both ends of the window


@pytest.mark.parametrize("name", list(CONFIGS))
def test_generation_step_gives_the_full_network_logits_at_every_step(name):
    model = randomized(**CONFIGS[name][0])
    x = classes(seed=6)
    full = to_numpy(model.conditional_logits(x))
    np.testing.assert_allclose(stepped_logits(model, x), full, atol=2e-5)
    assert [tuple(q.shape) for q in model.initial_queues(BATCH)] == [
        (BATCH, *shape) for shape in model.queue_shapes
    ]
    # Changing input 3 changes exactly the outputs 3 .. 3 + R - 1 of the network.
    field = CONFIGS[name][1]
    assert model.receptive_field == field
    changed = x.copy()
    changed[:, 3] = (changed[:, 3] + 1) % 8
    a, b = (to_numpy(model.network(keras.ops.one_hot(v, 8))) for v in (x, changed))
    moved = np.abs(a - b).max(axis=(0, 2)) > 1e-6  # per output position
    np.testing.assert_array_equal(moved, (np.arange(TIME) >= 3) & (np.arange(TIME) < 3 + field))
    # The model's position t reads x_<t (position 0: silence alone): changing x_3 moves
    # positions 4 .. 3 + R only.
    other = to_numpy(model.conditional_logits(changed))
    moved = np.abs(full - other).max(axis=(0, 2)) > 1e-6
    np.testing.assert_array_equal(moved, (np.arange(TIME) > 3) & (np.arange(TIME) <= 3 + field))


def test_fast_and_naive_sampling_draw_identical_samples():
    model = randomized()
    # TIME > R: the naive window slides past the start of the sequence.
    fast = to_numpy(model.sample(BATCH, length=TIME, seed=7))
    naive = to_numpy(model.sample(BATCH, length=TIME, seed=7, method="naive"))
    assert fast.shape == (BATCH, TIME) and fast.dtype == np.int32
    np.testing.assert_array_equal(fast, naive)
    assert fast.min() >= 0 and fast.max() < 8 and len(np.unique(fast)) > 3


def test_log_prob_normalises_over_every_sequence():
    every = np.array(list(itertools.product(range(8), repeat=3)), "int32")  # 512 sequences
    unconditional, conditional = randomized(), randomized(seed=1, num_conditions=3)
    log_prob = compiled(lambda x: unconditional.log_prob(x))
    assert abs(np.exp(to_numpy(log_prob(every)).astype("float64")).sum() - 1.0) < 1e-5
    log_prob = compiled(lambda x, y: conditional.log_prob(x, y))
    for label in (0, 2):
        labels = keras.ops.convert_to_tensor(np.full(len(every), label, "int32"))
        total = np.exp(to_numpy(log_prob(every, labels)).astype("float64")).sum()
        assert abs(total - 1.0) < 1e-5


def test_global_condition_reaches_every_gate_of_its_own_examples_only():
    model = randomized(num_conditions=3)
    x = classes(seed=9)
    before = to_numpy(model.log_prob(x, condition=LABELS))
    other = to_numpy(model.log_prob(x, condition=(LABELS + 1) % 3))
    assert np.abs(before - other).min() > 1e-3
    for block in model.blocks:  # each block's embedding changes the likelihood
        table = block.condition_embedding.embeddings
        saved = to_numpy(table)
        table.assign(np.zeros_like(saved))
        assert np.abs(to_numpy(model.log_prob(x, condition=LABELS)) - before).min() > 1e-4
        changed = saved.copy()
        changed[1:] += 1.0  # the rows of labels 1 and 2 only
        table.assign(changed)
        after = to_numpy(model.log_prob(x, condition=LABELS))
        np.testing.assert_allclose(after[LABELS == 0], before[LABELS == 0], atol=1e-6)
        table.assign(saved)
    # Shorter than R: the naive window is the whole sequence.
    fast = to_numpy(model.sample(BATCH, length=6, seed=3, condition=LABELS))
    naive = to_numpy(model.sample(BATCH, length=6, seed=3, condition=LABELS, method="naive"))
    np.testing.assert_array_equal(fast, naive)


def test_bad_inputs_raise_naming_what_was_expected():
    model = tiny(input_length=12)
    model.compile()
    with pytest.raises(ValueError, match=r"rank 2 with shape \(batch, 12\)"):
        model(classes((2, 12, 1)))
    with pytest.raises(ValueError, match=r"shape \(batch, 12\)"):
        model.log_prob(classes((2, 10)))
    with pytest.raises(ValueError, match=r"values in \[0, 8\); got values such as \[8\]"):
        model.fit(np.full((4, 12), 8, "int32"), verbose=0)
    with pytest.raises(ValueError, match=r"\[-1\]"):
        model.nll(np.full((4, 12), -1, "int32"))
    with pytest.raises(ValueError, match="mu_law_encode"):
        model.fit(np.full((4, 12), 0.25, "float32"), verbose=0)
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.full((4, 12), np.nan, "float32"), verbose=0)
    with pytest.raises(ValueError, match="unconditional"):
        model.log_prob(classes((2, 12)), condition=np.zeros(2, "int32"))
    with pytest.raises(ValueError, match="learns from the inputs alone"):
        model.fit(classes((4, 12)), np.zeros(4, "int32"), verbose=0)
    with pytest.raises(ValueError, match="method must be one of"):
        model.sample(2, method="slow")
    with pytest.raises(ValueError, match="length must be a positive integer"):
        model.sample(2, length=0)
    with pytest.raises(ValueError, match="expects 5 queues"):
        model.generation_step(np.zeros(2, "int32"), [])
    conditional = tiny(num_conditions=3)
    conditional.compile()
    with pytest.raises(ValueError, match=r"expects labels in \[0, 3\)"):
        conditional.fit(classes((4, 12)), np.array([0, 1, 2, 3]), verbose=0)
    with pytest.raises(ValueError, match="got no labels"):
        conditional.fit(classes((4, 12)), verbose=0)
    with pytest.raises(ValueError, match="condition=labels"):
        conditional.sample(2, length=4)
    with pytest.raises(ValueError, match=r"condition in \[0, 3\)"):
        conditional.sample(2, length=4, condition=5)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        WaveNet(num_classes=1)
    with pytest.raises(ValueError, match="dilation_rate must be a positive int"):
        CausalConv1D(4, dilation_rate=0)


def test_layers_round_trip_and_step_like_call():
    model = randomized()
    conv = model.blocks[-1].dilated  # 2 taps, dilation 2
    x = np.random.default_rng(10).normal(size=(BATCH, TIME, 8)).astype("float32")
    full = to_numpy(conv(x))
    queue = keras.ops.zeros((BATCH, conv.queue_length, 8))
    for t in range(TIME):
        out, queue = conv.step(keras.ops.convert_to_tensor(x[:, t]), queue)
        np.testing.assert_allclose(to_numpy(out), full[:, t], atol=1e-5)
    np.testing.assert_allclose(to_numpy(queue), x[:, -2:], atol=0)  # the last (k - 1) d inputs
    kernel = to_numpy(conv.kernel)  # y[t] = x[t - 2] W_0 + x[t] W_1 + b
    expected = x @ kernel[1] + np.pad(x, ((0, 0), (2, 0), (0, 0)))[:, :TIME] @ kernel[0]
    np.testing.assert_allclose(full, expected + to_numpy(conv.bias), atol=1e-5)
    for layer in (CausalConv1D(3, 3, dilation_rate=2), WaveNetBlock(4, 6, 5, 4, num_conditions=2)):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    check_config_round_trip(tiny(num_conditions=3, input_length=16))


@export_test_on("torch")
def test_export_reproduces_log_prob_and_the_generation_step(tmp_path):
    model = tiny(num_conditions=3, input_length=TIME)
    model.compile()
    model.save(tmp_path / "wavenet.keras")
    manifest = export_model(tmp_path / "wavenet.keras", tmp_path / "export", num_samples=BATCH)
    assert manifest["passed"]
    endpoints = manifest["artifacts"][1]["endpoints"]
    assert set(endpoints) >= {"log_prob", "generation_step"}
    names = [leaf["name"] for leaf in endpoints["generation_step"]["inputs"]]
    assert len(names) == 2 + len(model.queue_shapes)  # sample, 5 queues, label


@pytest.mark.slow
def test_benchmark_script_quick_run(tmp_path, capsys):
    import importlib.util

    from tests.harness import REPO

    path = REPO / "apps" / "benchmarks" / "wavenet_generation.py"
    spec = importlib.util.spec_from_file_location("wavenet_generation", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--quick", "--figures", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith(f"| {keras.backend.backend()}")]
    assert len(rows) == 2 and all(row.endswith("| yes |") for row in rows)  # fast = naive
    assert "bits per sample" in table
    assert (tmp_path / "wavenet_tones_samples.png").stat().st_size > 10_000
