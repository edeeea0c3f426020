"""Universal approximation tool: errors fall with width; joint training is exact."""

from __future__ import annotations

import argparse
import itertools

import keras
import numpy as np
import pytest

from mp_keras.tools import universal_approximation as ua
from tests.harness import to_numpy


def test_max_error_falls_with_width_and_figure_is_written(tmp_path):
    png = tmp_path / "ua.png"
    widths = (1, 4, 32)
    errors = ua.run_universal_approximation(
        png, widths=widths, epochs=1000, restarts=3, num_points=64, seed=0
    )
    assert list(errors) == list(widths)
    # One unit is a single step: it cannot follow sin(2 pi x) + cos(6 pi x) / 2 (range 3).
    assert errors[1] > 0.8
    assert errors[32] < 0.2 * errors[1]
    for narrow, wide in itertools.pairwise(widths):
        assert errors[wide] <= 1.1 * errors[narrow], errors
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_networks_in_one_model_train_as_if_alone():
    """Summed losses, disjoint parameters, per-coordinate Adam: same as training alone."""
    x = np.linspace(0.0, 1.0, 32, dtype="float32")[:, None]
    y = np.sin(2 * np.pi * x).astype("float32")
    joint = ua.build_networks((3, 5), restarts=1, seed=0)
    alone = ua.build_networks((3,), restarts=1, seed=7)
    dense = next(layer for layer in joint.layers if isinstance(layer, keras.layers.Dense))
    kernel, bias = dense.get_weights()
    alone_dense = next(layer for layer in alone.layers if isinstance(layer, keras.layers.Dense))
    alone_dense.set_weights([kernel[:, :3], bias[:3]])  # the first network of `joint`
    for model, outputs in ((joint, 2), (alone, 1)):
        # A large epsilon: Adam turns float noise in near-zero gradients (saturated units)
        # into full-size steps, which would hide the equality behind rounding.
        optimizer = keras.optimizers.Adam(0.01, epsilon=1e-3)
        model.compile(optimizer=optimizer, loss=ua.summed_squared_error)
        ua.train_full_batch(model, x, np.tile(y, (1, outputs)), epochs=20)
    first = to_numpy(joint(x))[:, 0]
    np.testing.assert_allclose(first, to_numpy(alone(x))[:, 0], atol=1e-5)
    assert np.abs(first).max() > 0.1  # it did train


def test_targets_and_bad_arguments():
    _, f, fits, errors = ua.fit_widths(
        (2,), target=lambda t: 3.0 * t, epochs=2, restarts=1, num_points=8, num_eval_points=11
    )
    np.testing.assert_allclose(f, 3.0 * np.linspace(0, 1, 11))
    assert fits[2].shape == (11,) and errors[2] == pytest.approx(np.abs(fits[2] - f).max())
    np.testing.assert_allclose(ua.TARGETS["sines"](np.array([0.0, 0.25])), [0.5, 1.0], atol=1e-12)
    with pytest.raises(ValueError, match="Unknown target"):
        ua.fit_widths((1,), target="cos")
    with pytest.raises(ValueError, match="distinct positive"):
        ua.fit_widths((0, 2))
    with pytest.raises(ValueError, match="activation"):
        ua.build_networks((1,), activation="relu")


def test_command_line_entry(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    ua.add_arguments(parser)
    args = parser.parse_args(
        ["--out", str(tmp_path / "a.png"), "--widths", "1,4", "--epochs", "5", "--restarts", "1"]
    )
    assert ua.run(args) == 0
    printed = capsys.readouterr().out
    assert "max |error|" in printed and (tmp_path / "a.png").exists()
    assert len([line for line in printed.splitlines() if line.strip()[:1].isdigit()]) == 2
