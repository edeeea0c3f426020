"""NADE: the O(n d) recursion equals the definition, autoregressive, normalised, learns."""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import pytest

from mp_keras.engine import compiled
from mp_keras.models.nade import NADE
from tests.harness import (
    REPO,
    check_autoregressive,
    check_normalises,
    randomize_weights,
    run_standard_checks,
    to_numpy,
)
from tests.harness import (
    binary_images as binary,
)


def test_standard_checks(tmp_path):
    model = run_standard_checks(
        lambda: NADE(input_shape=(2, 2, 1), hidden_units=8, seed=0),
        binary((16, 2, 2, 1)),
        (None, 2, 2, 1),
        tmp_path,
    )
    assert model.count_params() == 2 * 4 * 8 + 4 + 8  # W, V shared by all steps; b, c


# (2, 2, 1) is one block of the blocked recursion; (5, 7, 1) is 35 dimensions, three
# blocks of BLOCK_SIZE = 16 with the last one padded.
@pytest.mark.parametrize("shape", [(2, 2, 1), (5, 7, 1)])
def test_recursion_equals_the_definition(shape):
    model = NADE(input_shape=shape, hidden_units=8, seed=0)
    randomize_weights(model, seed=3, scale=1.0)
    # Compiled, so that JAX traces each function once instead of dispatching op by op.
    fast_fn, naive_fn = compiled(model.conditional_logits), compiled(model.naive_conditional_logits)
    real = np.random.default_rng(2).normal(size=(4, *shape)).astype("float32")
    for x in (binary((4, *shape), seed=1, p=0.5), real):
        fast, naive = to_numpy(fast_fn(x)), to_numpy(naive_fn(x))
        assert fast.shape == naive.shape == x.shape
        np.testing.assert_allclose(fast, naive, atol=1e-5)
    # The first conditional sees no input at all: V[0] . sigmoid(b) + c_0 for every x.
    v, b, c = (to_numpy(w) for w in (model.V, model.b, model.c))
    first = v[0] @ (1.0 / (1.0 + np.exp(-b))) + c[0]
    np.testing.assert_allclose(fast.reshape(4, -1)[:, 0], first, atol=1e-5)


def test_autoregressive_and_normalised():
    model = NADE(input_shape=(2, 2, 1), hidden_units=8, activation="tanh")
    randomize_weights(model)
    jac = check_autoregressive(model, np.random.default_rng(1).normal(size=(1, 2, 2, 1)))
    assert (np.abs(jac[np.tril_indices(4, k=-1)]) > 0).all()  # every earlier input is seen
    check_normalises(model)
    # Across blocks too: 35 dimensions in three blocks, every earlier input seen.
    model = NADE(input_shape=(35,), hidden_units=8, activation="tanh")
    randomize_weights(model)
    jac = check_autoregressive(model, np.random.default_rng(1).normal(size=(1, 35)))
    assert (np.abs(jac[np.tril_indices(35, k=-1)]) > 0).all()


def test_learns_structured_data_and_samples_it():
    x = binary((256, 4), seed=2, p=0.5)
    x[:, 2] = 1.0 - x[:, 0]  # a negated copy and a copy: independent bits cannot fit them
    x[:, 3] = x[:, 1]
    model = NADE(input_shape=(4,), hidden_units=8, seed=0)
    before = model.nll(x)
    model.compile(optimizer=keras.optimizers.Adam(0.1))
    model.fit(x, epochs=6, batch_size=32, verbose=0)
    after = model.nll(x)
    assert after < before - 1.0
    assert after < 2 * np.log(2) + 0.2  # two fair coins; the rest is determined
    samples = to_numpy(model.sample(256, seed=0))
    assert (samples[:, 2] != samples[:, 0]).mean() > 0.9
    assert (samples[:, 3] == samples[:, 1]).mean() > 0.9


def test_sampling_is_seeded_and_binary():
    model = NADE(input_shape=(2, 2, 1), hidden_units=8, seed=0)
    randomize_weights(model)
    first, again, other = (to_numpy(model.sample(16, seed=s)) for s in (5, 5, 6))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert set(np.unique(first)) <= {0.0, 1.0}


def test_non_binary_inputs_are_refused():
    model = NADE(input_shape=(4,), hidden_units=8)
    model.compile()
    with pytest.raises(ValueError, match="binary"):
        model.fit(np.full((8, 4), 0.5, "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="binary"):
        model.nll(np.full((2, 4), 2.0, "float32"))
    with pytest.raises(ValueError, match=r"\(batch, 4\)"):
        model.log_prob(np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match="hidden_units"):
        NADE(input_shape=(4,), hidden_units=0)


def test_cost_benchmark_runs():
    spec = importlib.util.spec_from_file_location(
        "nade_cost", REPO / "apps" / "benchmarks" / "nade_cost.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.measure(sizes=(2, 4), hidden_units=8, batch_size=2, repeats=1)
    assert set(result) == {"recursion"} and set(result["recursion"]) == {2, 4}
    assert min(result["recursion"].values()) > 0
    assert "ratio" in module.report(result)
    assert module.train_step_seconds(hidden_units=4, batch_size=2, steps=1) > 0
