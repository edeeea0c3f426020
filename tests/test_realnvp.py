"""FactorOut (exact inverse, log-det against the Jacobian, nesting, the split prior) and
the multi-scale RealNVP image model (standard checks, change of variables, digits fit)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.engine import jacobian
from mp_keras.export import export_model
from mp_keras.layers._bijector import Bijector
from mp_keras.layers.bijectors import (
    AffineCoupling,
    Chain,
    Squeeze,
    channel_mask,
    checkerboard_mask,
)
from mp_keras.layers.multiscale import FactorOut
from mp_keras.models.realnvp import RealNVP
from tests.harness import (
    BACKENDS,
    check_config_round_trip,
    export_test_on,
    randomize_weights,
    run_python,
    run_standard_checks,
    to_numpy,
)

SHAPE = (4, 4, 2)  # FactorOut's input everywhere; the inner sees (4, 4, 1)
IMAGE = (8, 8, 1)  # the digits' shape: one RealNVP architecture everywhere
HIDDEN = (8,)  # everywhere: the conv kernels of FactorOut's tests and RealNVP's agree, so
# JAX compiles their initialisers once
RNG = np.random.default_rng(0)


def one_level():
    """Squeeze (4, 4, 1) -> (2, 2, 4), a channel coupling; a checkerboard before it."""
    return FactorOut(
        Chain(
            [
                AffineCoupling(channel_mask(4, 0), HIDDEN, seed=0),
                Squeeze(),
                AffineCoupling(checkerboard_mask(4, 4, 1), HIDDEN, seed=1),
            ]
        )
    )


def two_levels():
    """one_level with a second FactorOut on (2, 2, 4): a checkerboard on (2, 2, 2), then
    a squeeze to (1, 1, 8)."""
    deepest = Chain([Squeeze(), AffineCoupling(checkerboard_mask(2, 2, 0), HIDDEN, seed=2)])
    return FactorOut(
        Chain([FactorOut(deepest), AffineCoupling(channel_mask(4, 0), HIDDEN, seed=0), Squeeze()])
    )


def built(bijector, seed=1):
    x = RNG.normal(size=(2, *SHAPE)).astype("float32")
    bijector.inverse(x)
    randomize_weights(bijector, seed=seed, scale=0.3)
    return bijector, x


def slogdet(fn, v):
    jac = jacobian(fn, v, independent_batch=True)
    return float(np.linalg.slogdet(jac.reshape(v.size, v.size).astype("float64"))[1])


class _Flatten(Bijector):
    """(h, w, c) -> (1, 1, h w c): a latent no squeeze gives (FactorOut's reshape path)."""

    def _inverse(self, x):
        v = keras.ops.reshape(x, (-1, 1, 1, int(np.prod(x.shape[1:]))))
        return v, keras.ops.zeros_like(v[:, 0, 0, 0])

    def _forward(self, z):
        x = keras.ops.reshape(z, (-1, 4, 4, 1))
        return x, keras.ops.zeros_like(z[:, 0, 0, 0])


@pytest.mark.parametrize("make", [one_level, two_levels, lambda: FactorOut(_Flatten())])
def test_factor_out_inverts_and_its_log_det_is_the_jacobians_and_the_inners(make):
    bijector, x = built(make())
    z, inv_log_det = bijector.inverse(x)
    z = to_numpy(z)
    assert z.shape == x.shape
    np.testing.assert_array_equal(z[..., :1], x[..., :1])  # the first half: factored out
    back, fwd_log_det = bijector.forward(z)
    np.testing.assert_allclose(to_numpy(back), x, atol=1e-5)
    np.testing.assert_allclose(to_numpy(fwd_log_det), -to_numpy(inv_log_det), atol=1e-4)
    again = to_numpy(bijector.inverse(to_numpy(bijector.forward(z)[0]))[0])
    np.testing.assert_allclose(again, z, atol=1e-5)
    inner_log_det = to_numpy(bijector.inner.inverse(x[..., 1:])[1])
    np.testing.assert_allclose(to_numpy(inv_log_det), inner_log_det, atol=1e-6)
    # The forward log-det is checked too: it is minus this one (above).
    expected_inv = slogdet(lambda v: bijector.inverse(v)[0], x[:1])
    assert abs(float(to_numpy(inv_log_det)[0]) - expected_inv) < 1e-3
    if make is one_level:  # the couplings moved it: a non-trivial log-det
        assert abs(expected_inv) > 0.1


def test_factor_out_undoes_the_inner_squeezes():
    x = np.arange(2 * 32, dtype="float32").reshape(2, *SHAPE)
    layer = FactorOut(Chain([Squeeze(), Squeeze()]))  # (4, 4, 1) -> (1, 1, 16) and back
    z, log_det = layer.inverse(x)
    np.testing.assert_array_equal(to_numpy(z), x)
    np.testing.assert_array_equal(to_numpy(log_det), [0.0, 0.0])
    assert layer.inner_latent_shape == (1, 1, 16)
    forward_first = FactorOut(Squeeze())  # `build` finds the inner latent's shape
    np.testing.assert_array_equal(to_numpy(forward_first.forward(x)[0]), x)


def test_a_channel_coupling_before_the_factor_out_is_a_learned_split_prior():
    factor, x = built(one_level())
    prior = AffineCoupling(channel_mask(2, 1), HIDDEN, seed=3)  # keeps the continuing half
    both = Chain([factor, prior])  # latent to data: the prior acts first from the data
    both.inverse(x)
    randomize_weights(prior, seed=4, scale=0.3)
    z, log_det = both.inverse(x)
    alone, alone_log_det = factor.inverse(x)
    moved, prior_log_det = prior.inverse(x)
    moved = to_numpy(moved)
    np.testing.assert_array_equal(moved[..., 1:], x[..., 1:])  # h, the continuing half, kept
    assert np.abs(moved[..., :1] - x[..., :1]).min() > 0  # z_out = (x - mu(h)) exp(-log sigma(h))
    z, alone = to_numpy(z), to_numpy(alone)
    np.testing.assert_allclose(z[..., 1:], alone[..., 1:], atol=1e-6)  # the inner is unaffected
    np.testing.assert_allclose(z[..., :1], moved[..., :1], atol=1e-6)
    expected = to_numpy(alone_log_det) + to_numpy(prior_log_det)
    np.testing.assert_allclose(to_numpy(log_det), expected, atol=1e-5)


def test_factor_out_config_round_trips_and_inputs_are_checked():
    for make in (one_level, two_levels):
        bijector, x = built(make())
        config = bijector.get_config()
        clone = FactorOut.from_config(config)
        assert clone.get_config() == config
        clone.inverse(x)
        clone.set_weights(bijector.get_weights())
        np.testing.assert_allclose(
            to_numpy(clone.inverse(x)[0]), to_numpy(bijector.inverse(x)[0]), atol=1e-6
        )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(two_levels())
    )
    assert isinstance(restored.inner.bijectors[0], FactorOut)
    with pytest.raises(ValueError, match="even number of channels"):
        FactorOut(Squeeze()).inverse(np.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match=r"images \(batch, height, width, channels\)"):
        FactorOut(Squeeze()).inverse(np.zeros((1, 16), "float32"))
    with pytest.raises(ValueError, match="Bijector"):
        FactorOut(keras.layers.Dense(2))


def tiny(shape=IMAGE):
    """Two scales: a checkerboard, squeeze to (4, 4, 4), a channel coupling, factor out
    two channels, two checkerboards on (4, 4, 2) (for 8x8 images)."""
    return RealNVP(shape, 2, couplings_per_scale=1, hidden_units=HIDDEN, num_levels=17)


def digits_like(num=16, seed=0):
    return np.random.default_rng(seed).integers(0, 17, (num, *IMAGE)).astype("float32") / 16


def test_standard_checks_and_a_short_fit_on_digits_lowers_the_bits_per_dim(tmp_path):
    train = data.load("digits", "train", num_examples=512).x
    test = data.load("digits", "test", num_examples=256).x  # one batch of density_metrics
    model = tiny()
    before = model.density_metrics(test)["bits_per_dim"]
    # One model and one batch size for both fits: each traces and compiles a train step.
    run_standard_checks(lambda: model, train[:16], (None, 4, 4, 4), tmp_path)
    history = model.fit(train, epochs=2, batch_size=8, verbose=0).history
    after = model.density_metrics(test)["bits_per_dim"]
    assert after < before - 0.5, (before, after)
    assert history["bits_per_dim"][-1] < history["bits_per_dim"][0]
    assert model.latent_shape == (4, 4, 4)
    names = [type(b).__name__ for b in model.chain.bijectors]
    assert names == [
        "FactorOut",
        "AffineCoupling",
        "Squeeze",
        "AffineCoupling",
        "LogitTransform",
        "Dequantize",
    ]
    assert len(model.chain.bijectors[0].inner.bijectors) == 2  # the last scale's 1 + 1
    clone = check_config_round_trip(model)
    assert (clone.num_scales, clone.couplings_per_scale, clone.hidden_units) == (2, 1, HIDDEN)
    samples = to_numpy(model.sample(4, seed=1, temperature=0.7))
    assert samples.shape == (4, *IMAGE) and samples.min() > -0.2 and samples.max() < 1.2


def test_the_model_inverts_and_log_prob_is_the_change_of_variables():
    model = tiny((4, 4, 1))  # 16 dimensions, the shapes of the FactorOut tests
    randomize_weights(model, seed=2, scale=0.1)
    x = np.random.default_rng(1).integers(0, 17, (2, 4, 4, 1)).astype("float32") / 16
    z, log_det = model.chain.inverse(x)
    z = to_numpy(z)
    assert z.shape == (2, 2, 2, 4)
    np.testing.assert_allclose(to_numpy(model.chain.forward(z)[0]), x, atol=1e-5)
    expected = slogdet(lambda v: model.chain.inverse(v)[0], x[:1])
    assert abs(float(to_numpy(log_det)[0]) - expected) < 1e-3 * max(1.0, abs(expected))
    base = -0.5 * (z[:1] ** 2).sum() - 0.5 * 16 * np.log(2 * np.pi)
    np.testing.assert_allclose(to_numpy(model.log_prob(x[:1]))[0], base + expected, rtol=1e-4)
    # The random weights moved the couplings off the identity: logit + dequantize alone
    # give another log-det.
    fixed = model.chain.bijectors[-2:]
    v, plain = x, 0.0
    for bijector in reversed(fixed):
        v, part = bijector.inverse(v)
        plain = plain + to_numpy(part)
    assert np.abs(to_numpy(log_det) - plain).min() > 0.1


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"divisible by 4: input_shape"):
        RealNVP((6, 6, 1), num_scales=3)
    with pytest.raises(ValueError, match="images"):
        RealNVP((64,))
    with pytest.raises(ValueError, match="num_scales"):
        RealNVP(IMAGE, num_scales=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 8, 8, 1\)"):
        tiny().log_prob(np.zeros((2, 4, 4, 1), "float32"))


@export_test_on("torch")
def test_export_passes_tflite_parity(tmp_path):
    model = tiny()
    randomize_weights(model, scale=0.1)
    model.save(tmp_path / "realnvp.keras")
    manifest = export_model(
        tmp_path / "realnvp.keras", tmp_path / "export", imports=["mp_keras.models.realnvp"]
    )
    assert manifest["passed"]


LOAD_AND_RUN = """
import json, numpy as np, keras, mp_keras.models.realnvp
model = keras.saving.load_model({path!r})
x = np.load({inputs!r})
print(json.dumps(keras.ops.convert_to_numpy(model.log_prob(x)).tolist()))
"""


@pytest.mark.slow
def test_a_trained_model_loads_on_the_other_backends(tmp_path):
    model = tiny()
    model.compile(optimizer="adam")
    model.fit(digits_like(32), epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "realnvp.keras")
    x = digits_like(4, seed=3)
    np.save(tmp_path / "x.npy", x)
    reference = to_numpy(model.log_prob(x))
    for other in BACKENDS:
        if other == keras.backend.backend():
            continue
        code = LOAD_AND_RUN.format(
            path=str(tmp_path / "realnvp.keras"), inputs=str(tmp_path / "x.npy")
        )
        values = json.loads(run_python(code, backend=other).strip().splitlines()[-1])
        np.testing.assert_allclose(values, reference, atol=1e-4, err_msg=other)
