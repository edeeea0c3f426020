"""Autoencoder: corruption statistics, denoising beats its noisy input, checks, benchmark."""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import pytest

from mp_keras import data
from mp_keras.models.autoencoder import Autoencoder, psnr
from tests.harness import REPO, run_standard_checks, to_numpy


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        (dict(architecture="mlp", corruption="noise", reconstruction="mse"), (4, 4, 1)),
        # 5 -> 3 down, 3 -> 6 up, cropped back to 5.
        (
            dict(architecture="conv", corruption="mask", mask_size=2, reconstruction="bernoulli"),
            (5, 5, 1),
        ),
    ],
    ids=["mlp", "conv"],
)
def test_standard_checks(kwargs, shape, tmp_path):
    x = np.random.default_rng(0).random((16, *shape)).astype("float32")
    model = run_standard_checks(
        lambda: Autoencoder(shape, latent_dim=3, hidden_units=(4,), seed=0, **kwargs),
        x,
        (None, *shape),
        tmp_path,
    )
    assert to_numpy(model.encode(x[:5])).shape == (5, 3)
    assert to_numpy(model.decode(np.zeros((2, 3), "float32"))).shape == (2, *shape)


def test_gaussian_noise_has_the_requested_std():
    model = Autoencoder((8, 8, 1), corruption="noise", noise_std=0.3, hidden_units=(4,))
    noise = to_numpy(model.corrupt(np.zeros((1000, 8, 8, 1), "float32"), seed=0))
    assert abs(noise.mean()) < 0.005
    assert abs(noise.std() - 0.3) < 0.003


def test_salt_and_pepper_hits_the_requested_fraction():
    model = Autoencoder((8, 8, 1), corruption="salt_and_pepper", corruption_rate=0.2)
    x = np.full((1000, 8, 8, 1), 0.5, "float32")
    y = to_numpy(model.corrupt(x, seed=0))
    hit = y != 0.5
    assert set(np.unique(y[hit]).tolist()) == {0.0, 1.0}
    assert abs(hit.mean() - 0.2) < 0.005  # 3 standard errors of 64,000 draws
    assert abs((y[hit] == 0).mean() - 0.5) < 0.015


def test_mask_is_one_square_patch_anywhere_inside():
    model = Autoencoder((8, 8, 2), corruption="mask", mask_size=4, hidden_units=(4,))
    y = to_numpy(model.corrupt(np.ones((2000, 8, 8, 2), "float32"), seed=0))
    masked = y == 0
    np.testing.assert_array_equal(masked[..., 0], masked[..., 1])  # every channel
    masked = masked[..., 0]
    np.testing.assert_array_equal(masked.sum(axis=(1, 2)), 16)  # exactly the 4x4 area
    rows, cols = masked.any(axis=2), masked.any(axis=1)
    np.testing.assert_array_equal(rows.sum(1), 4)  # the 16 pixels span 4 rows and 4 columns,
    np.testing.assert_array_equal(cols.sum(1), 4)  # so they form one square
    corners = rows.argmax(1) * 5 + cols.argmax(1)
    counts = np.bincount(corners, minlength=25)
    assert len(counts) == 25 and counts.min() > 40  # all 5 x 5 positions, ~80 each


def test_corruption_is_seeded_and_never_applied_at_inference():
    model = Autoencoder((8, 8, 1), latent_dim=4, hidden_units=(8,), corruption="noise", seed=0)
    x = np.random.default_rng(1).random((8, 8, 8, 1)).astype("float32")
    np.testing.assert_array_equal(to_numpy(model.corrupt(x, 5)), to_numpy(model.corrupt(x, 5)))
    assert not np.allclose(to_numpy(model.corrupt(x, 5)), to_numpy(model.corrupt(x, 6)))
    assert not np.allclose(to_numpy(model.corrupt(x)), to_numpy(model.corrupt(x)))
    clean = to_numpy(model.decode(model.encode(x)))
    np.testing.assert_array_equal(to_numpy(model(x)), clean)
    model.compile()
    loss = model.evaluate(x, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(loss, ((clean - x) ** 2).sum(axis=(1, 2, 3)).mean(), rtol=1e-5)
    rows = model.figure_rows(x, seed=5)  # what a figure shows: c(x), g(f(c(x))), x
    assert list(rows) == ["corrupted", "reconstructed", "clean"]
    np.testing.assert_allclose(rows["corrupted"], np.clip(to_numpy(model.corrupt(x, 5)), 0, 1))
    plain = Autoencoder((8, 8, 1), hidden_units=(8,))
    np.testing.assert_array_equal(to_numpy(plain.corrupt(x, seed=0)), x)
    assert list(plain.figure_rows(x)) == ["reconstructed", "clean"]


def test_overcomplete_denoising_autoencoder_beats_its_noisy_input():
    train, test = data.load("digits", "train").x, data.load("digits", "test").x
    model = Autoencoder(
        (8, 8, 1),
        latent_dim=96,  # overcomplete: more than the 64 pixels
        hidden_units=(64,),
        corruption="noise",
        noise_std=0.3,
        reconstruction="bernoulli",
        seed=0,
    )
    assert to_numpy(model.encode(test[:2])).shape == (2, 96)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    # The model seeds its weights and noise; without shuffling, every backend sees the
    # same batches.
    history = model.fit(train, epochs=3, batch_size=64, shuffle=False, verbose=0)
    assert history.history["reconstruction"][-1] < 0.8 * history.history["reconstruction"][0]
    noisy = to_numpy(model.corrupt(test, seed=123))
    before = psnr(test, np.clip(noisy, 0, 1))  # clipping alone removes some noise
    after = psnr(test, to_numpy(model(noisy)))
    assert before < 13.5 and after > before + 1.0, (before, after)


def test_wrong_inputs_raise_value_errors():
    model = Autoencoder((8, 8, 1), latent_dim=4, hidden_units=(8,))
    for bad in (np.zeros((2, 8, 8), "float32"), np.zeros((2, 64), "float32")):
        with pytest.raises(ValueError, match=r"\(batch, 8, 8, 1\)"):
            model(bad)
    with pytest.raises(ValueError, match=r"\(batch, 4\)"):
        model.decode(np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, 8, 8, 1\)"):
        model.corrupt(np.zeros((2, 8, 8, 3), "float32"), seed=0)
    with pytest.raises(ValueError, match="height, width, channels"):
        Autoencoder((64,), architecture="conv")
    with pytest.raises(ValueError, match="height, width, channels"):
        Autoencoder((64,), corruption="mask")
    with pytest.raises(ValueError, match="corruption must be one of"):
        Autoencoder((8, 8, 1), corruption="blur")
    with pytest.raises(ValueError, match="does not fit"):
        Autoencoder((8, 8, 1), corruption="mask", mask_size=9)
    bernoulli = Autoencoder((8, 8, 1), hidden_units=(8,), reconstruction="bernoulli")
    bernoulli.compile()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bernoulli.fit(np.full((4, 8, 8, 1), 2.0, "float32"), verbose=0)
    with pytest.raises(ValueError, match="targets"):
        bernoulli.fit(np.zeros((4, 8, 8, 1), "float32"), np.zeros(4), verbose=0)


def test_benchmark_quick(tmp_path, capsys):
    path = REPO / "apps" / "benchmarks" / "chapter5_autoencoders.py"
    spec = importlib.util.spec_from_file_location("chapter5_autoencoders", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # One autoencoder (inpainting, the one with extra metrics): on JAX each costs a
    # compilation, and the denoisers run the same code with another corruption.
    results = module.main(["--quick", "--tasks", "mask", "--figures", str(tmp_path)])
    table = capsys.readouterr().out
    assert "| digits 8x8 | inpainting, square of half the side |" in table
    (inpainting,) = results["autoencoders"]
    assert inpainting["mse_in_patch_input"] > 0 and np.isfinite(inpainting["psnr_output"])
    linear = results["linear"][0]
    assert linear["pca_train_error"] <= linear["gd_train_error"] + 1e-5  # PCA is the optimum
    assert [p.name for p in tmp_path.iterdir()] == ["digits_mask.png"]
