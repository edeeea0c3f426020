"""Flows: the change-of-variables likelihood normalises, training lowers the NLL on moons,
sampling (seeds, temperature), NICE's volume-preserving log-det, input checks, export."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.export import export_model
from mp_keras.layers.bijectors import (
    AffineCoupling,
    checkerboard_mask,
)
from mp_keras.models.flow import Flow
from mp_keras.models.flow2d import Flow2D
from mp_keras.models.nice import NICE
from tests.harness import (
    check_config_round_trip,
    export_test_on,
    randomize_weights,
    run_standard_checks,
    to_numpy,
)

SIZE = dict(num_couplings=4, hidden_units=(16,))  # one 2-D architecture everywhere
IMAGE = (4, 4, 1)


def moons(num=512):
    return data.load("moons", num_examples=num).x.astype("float32")


def nice():
    """The discrete NICE of every image test (one architecture: JAX compiles once)."""
    return NICE(IMAGE, num_couplings=2, hidden_units=(8,), num_levels=17, seed=0)


def digits_like(num=16, seed=0):
    return np.random.default_rng(seed).integers(0, 17, (num, *IMAGE)).astype("float32") / 16


def test_standard_checks(tmp_path):
    run_standard_checks(lambda: Flow2D(**SIZE, seed=0), moons(16), (None, 2), tmp_path)


def test_the_density_integrates_to_one_over_the_plane():
    model = Flow2D(**SIZE, seed=0)
    randomize_weights(model, seed=3, scale=0.3)
    step = 0.04
    axis = np.arange(-10.0, 10.0, step) + step / 2
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2).astype("float32")
    density = np.exp(to_numpy(model.log_prob(grid)).astype("float64"))
    total = density.sum() * step**2
    assert abs(total - 1.0) < 0.01, total
    # The random weights moved the density away from the base N(0, I).
    base = -0.5 * (grid**2).sum(1) - np.log(2 * np.pi)
    assert np.abs(to_numpy(model.log_prob(grid[::97])) - base[::97]).max() > 0.1


def test_a_short_fit_on_moons_lowers_the_nll():
    x = moons(512)
    model = Flow2D(**SIZE, seed=0)
    before = model.nll(x)
    np.testing.assert_allclose(
        before, -np.mean(-0.5 * (x**2).sum(1) - np.log(2 * np.pi)), rtol=1e-5
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, epochs=4, batch_size=64, verbose=0)
    after = model.nll(x)
    assert after < before - 0.3, (before, after)
    bits = history.history["bits_per_dim"]
    np.testing.assert_allclose(bits[-1], history.history["loss"][-1] / (2 * np.log(2)), rtol=1e-5)
    np.testing.assert_allclose(model.bits_per_dim(x), after / (2 * np.log(2)), rtol=1e-6)


def test_sampling_seeds_and_temperature():
    model = Flow2D(**SIZE, seed=0)
    randomize_weights(model, seed=4, scale=0.3)
    first, again = (to_numpy(model.sample(1000, seed=5)) for _ in range(2))
    assert first.shape == (1000, 2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, to_numpy(model.sample(1000, seed=6)))
    # x = f(z): the latents of temperature-T samples have standard deviation T.
    for temperature in (0.5, 1.0):
        z = to_numpy(model(to_numpy(model.sample(1000, seed=7, temperature=temperature))))
        assert abs(z.std() - temperature) < 0.05 * temperature, (temperature, z.std())
    # encode is f^-1, decode is f: decode(encode(x)) is x.
    x = moons(8)
    np.testing.assert_allclose(to_numpy(model.decode(to_numpy(model.encode(x)))), x, atol=1e-5)
    with pytest.raises(ValueError, match="latents"):
        model.decode(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=0.0)
    with pytest.raises(ValueError, match="num"):
        model.sample(0)


def test_nice_is_volume_preserving_but_for_its_scaling():
    model = NICE((2,), **SIZE, seed=0)
    randomize_weights(model, seed=5, scale=0.3)
    x = moons(16)
    z = to_numpy(model(x))
    log_s = to_numpy(model.chain.bijectors[0].log_scale)
    expected = -0.5 * (z**2).sum(1) - np.log(2 * np.pi) - log_s.sum()
    np.testing.assert_allclose(to_numpy(model.log_prob(x)), expected, atol=1e-4)
    assert len(model.chain.bijectors) == 5  # scaling + 4 couplings, no data map
    clone = check_config_round_trip(model)
    assert clone.hidden_units == (16,) and clone.num_levels is None


def test_discrete_nice_logs_the_bits_per_dim_of_the_discrete_data():
    model = nice()
    x = digits_like(16, seed=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(x, epochs=2, batch_size=16, verbose=0).history  # noise drawn in fit
    dims = 16
    expected = (np.array(history["loss"]) + dims * np.log(16)) / (dims * np.log(2))
    np.testing.assert_allclose(history["bits_per_dim"], expected, rtol=1e-5)
    assert history["loss"][0] != history["loss"][1]
    metrics = model.density_metrics(x)
    assert metrics == model.density_metrics(x)  # the noise is seeded
    np.testing.assert_allclose(metrics["bits_per_dim"], metrics["nll"] / (dims * np.log(2)))
    assert abs(metrics["nll"] - (model.nll(x) + dims * np.log(16))) < 2.0  # noise moves little
    clone = check_config_round_trip(model)
    assert clone.num_levels == 17 and len(clone.chain.bijectors) == 5  # + logit, dequantize
    samples = to_numpy(model.sample(16, seed=1))
    assert samples.shape == (16, *IMAGE)
    assert samples.min() > -0.2 and samples.max() < 1.2  # the sigmoid bounds them


def test_bad_inputs_and_arguments_raise():
    model = Flow2D(**SIZE, seed=0)
    model.compile()
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        model.log_prob(np.zeros((4, 3), "float32"))
    with pytest.raises(ValueError, match="finite"):
        model.fit(np.full((8, 2), np.nan, "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="targets"):
        model.fit(moons(8), np.zeros(8), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nice().nll(digits_like() + 2.0)
    with pytest.raises(ValueError, match="num_couplings"):
        Flow2D(num_couplings=0)
    with pytest.raises(ValueError, match="Bijector"):
        Flow([keras.layers.Dense(2)], data_shape=(2,))
    with pytest.raises(ValueError, match="num_levels"):
        Flow([AffineCoupling(checkerboard_mask(4, 4))], data_shape=IMAGE, num_levels=1)


@export_test_on("torch")
def test_export_passes_tflite_parity(tmp_path):
    model = nice()
    randomize_weights(model, scale=0.3)
    model.save(tmp_path / "nice.keras")
    manifest = export_model(
        tmp_path / "nice.keras", tmp_path / "export", imports=["mp_keras.models.nice"]
    )
    assert manifest["passed"]


def test_recipes_are_registered_and_refuse_data_they_cannot_model():
    from mp_keras import data, registry

    digits = data.load("digits", "test", num_examples=4).info
    with pytest.raises(ValueError, match="Flow2D models 2-D points"):
        registry.get_recipe("flow2d").build(digits, 0)
    binary = data.load("digits_binarized", "test", num_examples=4).info
    with pytest.raises(ValueError, match="NICE models real-valued or many-level data"):
        registry.get_recipe("nice").build(binary, 0)
    assert registry.get_recipe("nice").build(digits, 0).num_levels == 17
    moons_info = data.load("moons", "test", num_examples=4).info
    for name, owner in (("realnvp", "RealNVP"), ("glow", "Glow")):
        with pytest.raises(ValueError, match=f"{owner} models images"):
            registry.get_recipe(name).build(moons_info, 0)
        with pytest.raises(ValueError, match=f"{owner} models real-valued or many-level"):
            registry.get_recipe(name).build(binary, 0)
    assert registry._image_levels("Glow", digits, images_only=True) == 17  # k / 16
