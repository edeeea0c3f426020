"""Shared checks that every mp_keras model runs (see `run_standard_checks`).

Each model's own test file adds only what is special about it: its mathematics and
invariants.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")


def export_test_on(*others: str) -> Any:
    """Marks an export test to run on TensorFlow and on the backends `others` only.

    On TensorFlow the export runs in the test's process; from JAX or PyTorch it starts a
    TensorFlow worker (5-15 s), so a model is exported from TensorFlow and one other
    backend rather than from all three (PyTorch for chapters 6.5-6.7: JAX's test run is
    the longest of CI's streams).
    """
    import pytest

    here = keras.backend.backend()
    return pytest.mark.skipif(
        here not in ("tensorflow", *others),
        reason=f"exported from tensorflow and {', '.join(others)}; see export_test_on",
    )


def to_numpy(x: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def check_config_round_trip(model: keras.Model) -> keras.Model:
    """`from_config(get_config())` rebuilds a model with the same config (JSON-able)."""
    config = model.get_config()
    json.dumps(config)  # constructor arguments must be plain values
    clone = type(model).from_config(copy.deepcopy(config))  # from_config may consume it
    assert clone.get_config() == config
    return clone


def check_shapes(model: keras.Model, x: np.ndarray, expected: tuple[int | None, ...]) -> None:
    """Eager output of `model(x)` and the symbolic one on a `keras.Input` have `expected`."""
    eager = to_numpy(model(x))
    assert eager.shape == tuple(x.shape[:1]) + tuple(expected[1:]), eager.shape
    symbolic = model(keras.Input(shape=x.shape[1:], batch_size=None))
    assert tuple(symbolic.shape) == (None, *expected[1:]), symbolic.shape


def check_fit_step(model: keras.Model, x: np.ndarray, y: np.ndarray | None = None) -> dict:
    """One `fit` epoch of two steps runs and logs finite values."""
    history = model.fit(x, y, batch_size=max(1, len(x) // 2), epochs=1, verbose=0)
    logs = {k: v[-1] for k, v in history.history.items()}
    assert "loss" in logs
    assert all(np.isfinite(v) for v in logs.values()), logs
    return logs


def check_save_load(model: keras.Model, x: np.ndarray, path: Path, atol: float = 1e-6) -> Any:
    """A `.keras` round trip gives the same outputs and the same optimizer state."""
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), atol=atol)
    if getattr(model, "optimizer", None) is not None and model.optimizer.built:
        before = [to_numpy(v) for v in model.optimizer.variables]
        after = [to_numpy(v) for v in loaded.optimizer.variables]
        assert len(before) == len(after)
        for a, b in zip(before, after):
            np.testing.assert_allclose(a, b, atol=atol)
    return loaded


def run_standard_checks(
    make_model: Callable[[], keras.Model],
    x: np.ndarray,
    expected_shape: tuple[int | None, ...],
    tmp_path: Path,
    y: np.ndarray | None = None,
    call_input: np.ndarray | None = None,
) -> keras.Model:
    """Config round trip, eager and symbolic shapes, one fit step, `.keras` round trip.

    `x` (and `y`) is training data; `call_input` is what `model(...)` takes when that is
    not the data (a GAN's `call` takes noise).
    """
    model = make_model()
    check_config_round_trip(model)
    probe = x if call_input is None else call_input
    check_shapes(model, probe, expected_shape)
    model.compile()
    check_fit_step(model, x, y)
    check_save_load(model, probe, tmp_path / "model.keras")
    return model


def run_python(code: str, backend: str, timeout: int = 300) -> str:
    """Runs `code` in a fresh Python with `KERAS_BACKEND=backend`; returns its stdout."""
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"subprocess on {backend} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def ring_distance(samples: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Distance of each 2-D sample to the nearest mode centre."""
    diff = samples[:, None, :] - centres[None, :, :]
    return np.sqrt((diff**2).sum(-1)).min(axis=1)


def check_autoregressive(
    model: keras.Model, x: np.ndarray, order: np.ndarray | None = None, condition: Any = None
) -> np.ndarray:
    """The autoregressive property of `model.conditional_logits`, proven by gradients.

    For one example `x` (shape `(1, *data_shape)`, any real values), output i must not
    depend on any input j at or after i in the order (d out_i / d x_j = 0 for
    rank(j) >= rank(i)), and must depend on some earlier input. Returns the Jacobian
    `(dims, dims)` indexed `[output, input]` in flat (row-major) numbering.
    """
    from mp_keras.engine import jacobian

    dims = int(np.prod(x.shape[1:]))
    order = model.ordering() if order is None else np.asarray(order)
    rank = np.empty(dims, int)
    rank[order] = np.arange(dims)

    def logits(v: Any) -> Any:  # one row per copy of x: a single backward pass
        if condition is None:
            return model.conditional_logits(v)
        labels = keras.ops.convert_to_tensor(np.reshape(condition, (1,)))
        return model.conditional_logits(v, keras.ops.repeat(labels, keras.ops.shape(v)[0]))

    jac = jacobian(logits, x.astype("float32"), independent_batch=True).reshape(dims, dims)
    later = rank[None, :] >= rank[:, None]  # [i, j]: j is not before i
    leaks = np.argwhere(later & (np.abs(jac) > 0))
    assert not len(leaks), f"outputs depend on later inputs: (output, input) = {leaks[:5]}"
    earlier = ~later
    assert (np.abs(jac[earlier]) > 0).any(), "no output depends on any earlier input"
    return jac


def check_normalises(model: keras.Model, condition: Any = None, atol: float = 1e-5) -> float:
    """exp(log_prob) summed over every binary input of a small model equals 1."""
    import itertools

    shape = tuple(model.data_shape)
    dims = int(np.prod(shape))
    assert dims <= 16, f"{dims} binary dimensions are too many to enumerate"
    every = np.array(list(itertools.product([0.0, 1.0], repeat=dims)), "float32")
    every = every.reshape(-1, *shape)
    kwargs = {} if condition is None else {"condition": np.full(len(every), condition, "int32")}
    total = float(np.exp(to_numpy(model.log_prob(every, **kwargs)).astype("float64")).sum())
    assert abs(total - 1.0) < atol, total
    return total


def randomize_weights(model: keras.Model, seed: int = 0, scale: float = 0.5) -> None:
    """Gives every trainable weight random normal values (zero-initialised layers would
    otherwise hide dependencies from the gradient checks)."""
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(scale=scale, size=tuple(variable.shape)).astype("float32"))


def binary_images(shape: tuple[int, ...], seed: int = 0, p: float = 0.3) -> np.ndarray:
    """Random 0/1 float32 data of `shape`, each value 1 with probability `p`."""
    return (np.random.default_rng(seed).random(shape) < p).astype("float32")


def random_probe(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    """One real-valued example `(1, *shape)`, the input of the gradient checks."""
    return np.random.default_rng(seed).normal(size=(1, *shape)).astype("float32")
