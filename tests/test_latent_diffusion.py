"""LatentDiffusion: a DDPM on the latents of a frozen autoencoder: standard checks, the
frozen autoencoder, adapt, the nested save/load, sampling, guidance, checks, export."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.diffusion import ddpm_sample
from mp_keras.export import export_model
from mp_keras.models.autoencoder import Autoencoder
from mp_keras.models.latent_diffusion import LatentDiffusion
from mp_keras.models.vae import VAE
from tests.harness import export_test_on, randomize_weights, run_standard_checks, to_numpy


@pytest.fixture(scope="module")
def digits():
    ds = data.load("digits", "train")
    return ds.x[:64], ds.y[:64]


def autoencoder(kind="autoencoder"):
    """An untrained autoencoder (its random weights are as frozen as trained ones)."""
    if kind == "vae":
        return VAE((8, 8, 1), latent_dim=3, hidden_units=(16,), likelihood="gaussian", seed=0)
    return Autoencoder((8, 8, 1), latent_dim=4, hidden_units=(16,), seed=0)


def small(autoencoder, **kwargs):
    defaults = dict(hidden_units=(16,), time_dim=8, timesteps=10, ema_momentum=None, seed=0)
    return LatentDiffusion(autoencoder, **{**defaults, **kwargs})


def test_standard_checks_keep_the_autoencoder_frozen(digits, tmp_path):
    x = digits[0]
    frozen_model = autoencoder()
    frozen = [to_numpy(w) for w in frozen_model.weights]
    model = run_standard_checks(lambda: small(frozen_model), x, (None, 4), tmp_path)
    # The autoencoder is outside the phase and did not move during fit.
    assert not frozen_model.trainable and not frozen_model.trainable_weights
    phase_ids = {id(v) for v in model.phases()[0].variables}
    assert not phase_ids & {id(v) for v in frozen_model.weights}
    assert {id(v) for v in model.trainable_variables} == phase_ids
    for before, after in zip(frozen, frozen_model.weights):
        np.testing.assert_array_equal(before, to_numpy(after))
    # fit adapted the standardisation on its data: the latents have mean 0 and std 1.
    assert model.is_adapted
    z = to_numpy(model.encode_data(x))
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1.0, rtol=1e-3)
    # The .keras round trip restores the nested autoencoder, its weights, the statistics
    # (the harness compared loaded(x) with model(x): encoder, statistics and network).
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.autoencoder, Autoencoder) and not loaded.autoencoder.trainable
    assert len(loaded.trainable_weights) == len(model.trainable_weights)
    for a, b in zip(frozen_model.weights, loaded.autoencoder.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert loaded.is_adapted
    np.testing.assert_allclose(
        to_numpy(loaded.decode_data(z[:4])), to_numpy(model.decode_data(z[:4])), atol=1e-6
    )
    shift = to_numpy(model.latent_shift)  # a second fit does not adapt again
    model.fit(x * 0.5, epochs=1, batch_size=32, verbose=0)
    np.testing.assert_array_equal(to_numpy(model.latent_shift), shift)
    samples = to_numpy(model.sample(3, seed=2))
    assert samples.shape == (3, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 1


def test_vae_latents_are_the_posterior_mean_and_adapt_by_hand(digits):
    x = digits[0]
    vae = autoencoder("vae")
    model = small(vae)
    assert model.process_shape == (3,) and not model.is_adapted
    model.adapt(x, batch_size=24)
    latents = to_numpy(vae.encode(x)[0]).astype("float64")  # the posterior mean
    np.testing.assert_allclose(to_numpy(model.latents(x)), latents, atol=1e-6)
    np.testing.assert_allclose(to_numpy(model.latent_shift), latents.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(model.latent_scale), latents.std(0), rtol=1e-5)
    z = to_numpy(model.encode_data(x[:4]))
    np.testing.assert_allclose(z, (latents[:4] - latents.mean(0)) / latents.std(0), atol=1e-4)
    # decode_data undoes the standardisation before the decoder, then clips.
    np.testing.assert_allclose(
        to_numpy(model.decode_data(z)),
        np.clip(to_numpy(vae.decode(latents[:4].astype("float32"))), 0, 1),
        atol=1e-5,
    )
    assert not vae.trainable_weights


def test_sampling_is_the_ddpm_on_latents_then_decoded(digits):
    x = digits[0]
    model = small(autoencoder(), num_classes=10)
    model.adapt(x)
    randomize_weights(model.network, scale=0.2)
    labels = np.array([0, 3, 7])
    # rho = 0 is the conditional sampler: Algorithm 3 on latents, then the decoder.
    generator = keras.random.SeedGenerator(4)
    z_T = keras.random.normal((3, model.latent_dim), seed=generator)
    condition = model.embed_condition(labels)
    z_0 = ddpm_sample(
        lambda z, t: model.network_noise(z, t, condition), model.schedule, z_T, generator
    )
    samples = to_numpy(model.sample(3, seed=4, labels=labels, guidance=0.0))
    np.testing.assert_allclose(samples, to_numpy(model.decode_data(z_0)), atol=1e-5)
    assert samples.shape == (3, 8, 8, 1)
    # Per-example guidance (the export's input) broadcasts over the latent vector.
    z_t, t = np.ones((3, model.latent_dim), "float32"), np.array([2, 5, 9])
    rho = keras.ops.convert_to_tensor(np.array([0.0, 1.0, 2.0], "float32"))
    eps_c = to_numpy(model.predict_noise(z_t, t, labels))
    eps_u = to_numpy(model.predict_noise(z_t, t))
    np.testing.assert_allclose(
        to_numpy(model.predict_noise(z_t, t, labels, guidance=rho)),
        (1 + to_numpy(rho)[:, None]) * eps_c - to_numpy(rho)[:, None] * eps_u,
        atol=1e-5,
    )


def test_bad_inputs_raise_value_error(digits):
    x = digits[0]
    model = small(autoencoder())
    model.compile()

    def generator():
        while True:
            yield x[:8]

    cases = [
        (lambda: model.fit(x[:, :4], epochs=1, verbose=0), r"shape \(batch, 8, 8, 1\)"),
        (lambda: model.adapt(x[:, :, :4]), r"shape \(batch, 8, 8, 1\)"),
        (lambda: model(np.zeros((2, 7, 7, 1), "float32")), r"\(batch, 8, 8, 1\)"),
        (lambda: model.fit(generator(), steps_per_epoch=1, verbose=0), "adapt"),
        (lambda: model.adapt(np.full((4, 8, 8, 1), np.nan, "float32")), "finite"),
        (lambda: model.predict_noise(x[:2], 3), r"\(batch, 4\)"),
        (lambda: model.decode_data(np.zeros((2, 3), "float32")), r"\(batch, 4\)"),
        (lambda: model.denoise_step(np.zeros((2, 4), "float32"), 11, np.zeros((2, 4))), "1..10"),
        (lambda: model.sample(2, labels=1), "unconditional"),
        (lambda: LatentDiffusion(keras.layers.Dense(3)), "encode"),
        (lambda: small(model.autoencoder, output_range=(1.0, 0.0)), "output_range"),
    ]
    for run, message in cases:
        with pytest.raises(ValueError, match=message):
            run()


@export_test_on()
def test_export_denoise_step_and_decode_pass_tflite_parity(digits, tmp_path):
    x = digits[0]
    model = small(autoencoder())
    model.adapt(x)
    randomize_weights(model.network, scale=0.3)
    model.save(tmp_path / "latent.keras")
    manifest = export_model(
        tmp_path / "latent.keras",
        tmp_path / "export",
        imports=["mp_keras.models.latent_diffusion"],
    )
    assert manifest["passed"]
    assert manifest["metadata"]["latent_dim"] == 4
    assert manifest["metadata"]["image_shape"] == [8, 8, 1]
