"""Glow: ActNorm's data-dependent initialisation inside fit, the invertible 1x1 convolution's
log-determinants (dense and LU), Glow's round trips and log-det, training on digits, export."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.engine import jacobian
from mp_keras.export import export_model
from mp_keras.layers.actnorm import ActNorm
from mp_keras.layers.bijectors import Squeeze
from mp_keras.layers.invertible_conv import Invertible1x1Conv
from mp_keras.models.flow import LOG_2PI, Flow
from mp_keras.models.glow import Glow
from tests.harness import (
    check_config_round_trip,
    export_test_on,
    randomize_weights,
    run_standard_checks,
    to_numpy,
)

IMAGE = (4, 4, 1)
SIZE = dict(num_scales=2, steps_per_scale=1, hidden_units=(8,))


def glow(**kwargs):
    """The discrete Glow of the image tests: 2 levels x 1 step."""
    return Glow(IMAGE, **{**SIZE, "num_levels": 17, "seed": 0, **kwargs})


def digits_like(num=16, seed=0):
    return np.random.default_rng(seed).integers(0, 17, (num, *IMAGE)).astype("float32") / 16


def log_abs_det_of_jacobian(fn, v):
    """log|det J| of `fn` at one example `v` (1, ...), from the engine's Jacobian."""
    jac = jacobian(fn, v, independent_batch=True)
    return float(np.linalg.slogdet(jac.reshape(v.size, v.size).astype("float64"))[1])


def squeezed(x):
    """Squeeze in NumPy, (n, h, w, c) -> (n, h/2, w/2, 4c) (the order of `Squeeze`)."""
    n, h, w, c = x.shape
    return (
        x.reshape(n, h // 2, 2, w // 2, 2, c)
        .transpose(0, 1, 3, 2, 4, 5)
        .reshape(n, h // 2, w // 2, 4 * c)
    )


# === ActNorm ===


def test_actnorm_initialises_from_the_first_training_batch_inside_fit(tmp_path):
    # Latent to data: ActNorm, then a squeeze; so from the data the squeeze comes first
    # and ActNorm's statistics are those of the squeezed batch.
    model = Flow([ActNorm(name="actnorm"), Squeeze()], data_shape=IMAGE, seed=0)
    layer = model.chain.bijectors[0]
    rng = np.random.default_rng(0)
    # Each position of a 2x2 block (a channel once squeezed) has its own mean and scale.
    block = np.tile(np.arange(1.0, 5.0).reshape(2, 2), (2, 2)).reshape(1, *IMAGE)
    x = (block + 0.5 * block * rng.normal(size=(32, *IMAGE))).astype("float32")
    # Before training ActNorm is the identity, and inference does not initialise it.
    base = -0.5 * (x**2).reshape(32, -1).sum(1) - 8 * LOG_2PI
    np.testing.assert_allclose(to_numpy(model.log_prob(x)), base, rtol=1e-5)
    assert float(to_numpy(layer.initialized)) == 0.0

    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=1, batch_size=32, verbose=0)  # one step, on the whole of x
    expected = squeezed(x)
    mean, std = expected.mean((0, 1, 2)), expected.std((0, 1, 2))
    assert float(to_numpy(layer.initialized)) == 1.0
    np.testing.assert_allclose(to_numpy(layer.init_loc), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(layer.init_log_scale), np.log(std), atol=1e-5)
    z = to_numpy(model(x))  # the latents of that batch: standardised per channel
    np.testing.assert_allclose(z.mean((0, 1, 2)), 0.0, atol=0.01)
    np.testing.assert_allclose(z.std((0, 1, 2)), 1.0, atol=0.01)
    # log p(x) = log N(z) - H W sum(log_scale), with the trained scale.
    log_scale = to_numpy(layer.log_scale)
    expected_log_prob = -0.5 * (z**2).reshape(32, -1).sum(1) - 8 * LOG_2PI - 4 * log_scale.sum()
    np.testing.assert_allclose(to_numpy(model.log_prob(x)), expected_log_prob, rtol=1e-5)

    # A second step (another batch) trains the offsets but keeps the statistics.
    model.fit(x * 0.5, epochs=1, batch_size=32, verbose=0)
    np.testing.assert_allclose(to_numpy(layer.init_loc), mean, rtol=1e-5, atol=1e-5)
    assert np.abs(to_numpy(layer.log_scale) - np.log(std)).max() > 0  # trained
    model.save(tmp_path / "actnorm.keras")
    loaded = keras.saving.load_model(tmp_path / "actnorm.keras")
    for a, b in zip(loaded.chain.bijectors[0].weights, layer.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    np.testing.assert_allclose(to_numpy(loaded.log_prob(x)), to_numpy(model.log_prob(x)))


def test_actnorm_log_det_is_positions_times_the_sum_of_log_scales():
    layer = ActNorm()
    x = np.random.default_rng(1).normal(size=(2, 2, 3, 2)).astype("float32")
    layer.inverse(x, training=True)
    randomize_weights(layer, seed=2, scale=0.3)  # the trainable offsets
    z, inv_log_det = layer.inverse(x)
    back, log_det = layer.forward(z)
    np.testing.assert_allclose(to_numpy(back), x, atol=1e-5)
    log_scale = to_numpy(layer.log_scale)
    np.testing.assert_allclose(to_numpy(log_det), [6 * log_scale.sum()] * 2, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(inv_log_det), -to_numpy(log_det), rtol=1e-5)
    expected = log_abs_det_of_jacobian(lambda v: layer.inverse(v)[0], x[:1])
    assert abs(float(to_numpy(inv_log_det)[0]) - expected) < 1e-3
    assert ActNorm.from_config(layer.get_config()).epsilon == layer.epsilon


# === Invertible 1x1 convolution ===


@pytest.mark.parametrize("lu", [True, False])
def test_invertible_conv_log_det_matches_slogdet_and_the_jacobian(lu):
    layer = Invertible1x1Conv(lu=lu, seed=3)
    x = np.random.default_rng(4).normal(size=(2, 2, 2, 3)).astype("float32")
    layer.inverse(x)
    w0 = to_numpy(layer.kernel())
    np.testing.assert_allclose(w0 @ w0.T, np.eye(3), atol=1e-5)  # a rotation at first
    randomize_weights(layer, seed=5, scale=0.3)
    w = to_numpy(layer.kernel()).astype("float64")
    z, inv_log_det = layer.inverse(x)
    # Data to latent is z = W x at each position; log|det| = H W log|det W|.
    np.testing.assert_allclose(to_numpy(z), np.einsum("ij,nhwj->nhwi", w, x), atol=1e-5)
    slogdet = np.linalg.slogdet(w)[1]
    np.testing.assert_allclose(to_numpy(inv_log_det), [4 * slogdet] * 2, atol=1e-4)
    assert abs(slogdet) > 0.05  # no longer volume-preserving
    expected = log_abs_det_of_jacobian(lambda v: layer.inverse(v)[0], x[:1])
    assert abs(float(to_numpy(inv_log_det)[0]) - expected) < 1e-3
    back, log_det = layer.forward(z)
    np.testing.assert_allclose(to_numpy(back), x, atol=1e-5)
    np.testing.assert_allclose(to_numpy(log_det), -to_numpy(inv_log_det), atol=1e-5)
    if lu:  # W = P L (U + diag(sign_s exp(log_s))), from the variables in NumPy
        lower = np.tril(to_numpy(layer.lower), -1) + np.eye(3)
        diagonal = to_numpy(layer.sign_s) * np.exp(to_numpy(layer.log_s))
        upper = np.triu(to_numpy(layer.upper), 1) + np.diag(diagonal)
        np.testing.assert_allclose(to_numpy(layer.permutation) @ lower @ upper, w, atol=1e-5)
        np.testing.assert_allclose(slogdet, to_numpy(layer.log_s).sum(), atol=1e-5)
        assert {v.name for v in layer.non_trainable_weights} == {"permutation", "sign_s"}
    clone = Invertible1x1Conv.from_config(layer.get_config())
    assert (clone.lu, clone.seed) == (lu, 3)


# === Glow ===


def test_standard_checks(tmp_path):
    model = run_standard_checks(glow, digits_like(16), (None, 2, 2, 4), tmp_path)
    actnorms = [v for v in model.non_trainable_variables if v.name == "initialized"]
    assert len(actnorms) == 2 and all(float(to_numpy(v)) == 1.0 for v in actnorms)


def test_round_trip_and_log_det_against_the_jacobian():
    model = Glow(IMAGE, **SIZE, lu=True, seed=0)  # continuous data
    x = np.random.default_rng(6).normal(size=(2, *IMAGE)).astype("float32")
    model.chain.inverse(x, training=True)  # initialises the ActNorms, as fit does
    randomize_weights(model, seed=7, scale=0.3)
    chain = model.chain
    z, log_det = chain.inverse(x)
    # FactorOut puts each level's latent back in its input's shape: the first squeeze's.
    assert tuple(z.shape) == (2, 2, 2, 4) and model.latent_shape == (2, 2, 4)
    back, fwd_log_det = chain.forward(z)
    np.testing.assert_allclose(to_numpy(back), x, atol=1e-4)
    np.testing.assert_allclose(to_numpy(fwd_log_det), -to_numpy(log_det), atol=1e-4)
    expected = log_abs_det_of_jacobian(lambda v: chain.inverse(v)[0], x[:1])
    assert abs(float(to_numpy(log_det)[0]) - expected) < 1e-3, (to_numpy(log_det), expected)
    assert abs(expected) > 0.1  # the random weights changed the volume
    z = to_numpy(z)
    base = -0.5 * (z**2).reshape(2, -1).sum(1) - 8 * LOG_2PI
    np.testing.assert_allclose(to_numpy(model.log_prob(x)), base + to_numpy(log_det), rtol=1e-5)
    # Levels: squeeze (2, 2, 4), one step, prior + split; squeeze (1, 1, 8), one step.
    names = [b.name for b in chain.bijectors]
    assert names == ["split_0", "prior_0", "coupling_0_0", "conv_0_0", "actnorm_0_0", "squeeze_0"]
    clone = check_config_round_trip(model)
    assert (clone.num_scales, clone.steps_per_scale, clone.lu) == (2, 1, True)


def test_a_short_fit_on_digits_lowers_the_bits_per_dim():
    x = data.load("digits", num_examples=256).x
    model = Glow((8, 8, 1), **SIZE, num_levels=17, seed=0)  # the kernels' shapes of the 4x4
    before = model.density_metrics(x)["bits_per_dim"]
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(x, epochs=4, batch_size=64, verbose=0).history
    after = model.density_metrics(x)["bits_per_dim"]
    assert after < before - 0.5, (before, after)
    assert history["bits_per_dim"][-1] < history["bits_per_dim"][0]


def test_bad_inputs_and_arguments_raise():
    with pytest.raises(ValueError, match="divisible by 4"):
        Glow((6, 8, 1), **SIZE)
    with pytest.raises(ValueError, match=r"images \(height, width, channels\)"):
        Glow((16,), **SIZE)
    with pytest.raises(ValueError, match="lu"):
        Glow(IMAGE, **SIZE, lu="yes")
    with pytest.raises(ValueError, match="steps_per_scale"):
        Glow(IMAGE, num_scales=2, steps_per_scale=0)
    with pytest.raises(ValueError, match="epsilon"):
        ActNorm(epsilon=0.0)
    with pytest.raises(ValueError, match="lu"):
        Invertible1x1Conv(lu=1)
    model = glow()
    with pytest.raises(ValueError, match=r"shape \(batch, 4, 4, 1\)"):
        model.log_prob(np.zeros((2, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.nll(digits_like() + 2.0)


@export_test_on("torch")
@pytest.mark.parametrize("lu", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_export_after_training_passes_tflite_parity(tmp_path, lu):
    model = glow(lu=lu)
    x = digits_like(16)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=1, batch_size=16, verbose=0)  # the ActNorms' statistics
    randomize_weights(model, seed=8, scale=0.1)  # log p ~ -1 to -5: float32 parity 1e-4
    model.save(tmp_path / "glow.keras")
    manifest = export_model(
        tmp_path / "glow.keras", tmp_path / "export", imports=["mp_keras.models.glow"]
    )
    assert manifest["passed"]
    lite = next(a for a in manifest["artifacts"] if a["format"] == "tflite")
    assert not lite["select_tf_ops"]  # W^-1 and log|det W| are folded into constants
