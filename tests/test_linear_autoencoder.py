"""LinearAutoencoder: PCA in closed form, and gradient descent finding the same subspace."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras.models.linear_autoencoder import LinearAutoencoder
from tests.harness import run_standard_checks, to_numpy

DIMS, RANK = 12, 3


def low_rank_data(num: int = 512, seed: int = 0) -> np.ndarray:
    """Gaussian data with three strong directions (std 2.0, 1.7, 1.4) over noise of 0.5."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(DIMS, DIMS)))
    stds = np.array([2.0, 1.7, 1.4] + [0.5] * (DIMS - RANK))
    return (rng.normal(size=(num, DIMS)) * stds @ basis.T + rng.normal(size=DIMS)).astype("float32")


def numpy_pca(x: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Top-k principal directions (columns) and the mean squared error of projecting on them."""
    flat = x.reshape(len(x), -1).astype("float64")
    _, singular, vt = np.linalg.svd(flat - flat.mean(0), full_matrices=False)
    return vt[:k].T, float((singular[k:] ** 2).sum() / len(x))


def max_principal_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Largest principal angle between the column spaces of a and b, in degrees."""
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return float(np.degrees(np.arccos(np.clip(cosines.min(), -1.0, 1.0))))


def test_standard_checks(tmp_path):
    x = np.random.default_rng(0).random((16, 4, 4, 1)).astype("float32")
    model = run_standard_checks(
        lambda: LinearAutoencoder(input_shape=(4, 4, 1), latent_dim=3, seed=0),
        x,
        (None, 4, 4, 1),
        tmp_path,
    )
    assert to_numpy(model.encode(x[:5])).shape == (5, 3)
    assert to_numpy(model.decode(np.zeros((2, 3), "float32"))).shape == (2, 4, 4, 1)


def test_from_pca_is_the_pca_projection():
    x = low_rank_data()
    directions, error = numpy_pca(x, RANK)
    model = LinearAutoencoder.from_pca(x, RANK)
    basis = model.decoder_basis()  # W_d = U_k
    np.testing.assert_allclose(basis.T @ basis, np.eye(RANK), atol=1e-5)
    np.testing.assert_allclose(to_numpy(model.encoder.kernel), basis, atol=1e-6)  # W_e = U_k^T
    np.testing.assert_allclose(to_numpy(model.bias), x.mean(0), atol=1e-5)
    assert max_principal_angle(basis, directions) < 0.01
    np.testing.assert_allclose(model.reconstruction_error(x), error, rtol=1e-5)
    # The codes are the principal scores (up to the sign of each direction).
    scores = (x - x.mean(0)) @ directions
    np.testing.assert_allclose(np.abs(to_numpy(model.encode(x))), np.abs(scores), atol=1e-4)
    # Keeping every component reconstructs exactly.
    full = LinearAutoencoder.from_pca(x, DIMS)
    assert full.reconstruction_error(x) < 1e-8
    rows = full.figure_rows(x)
    np.testing.assert_allclose(rows["reconstructed"], rows["clean"], atol=1e-4)


def test_gradient_descent_finds_the_principal_subspace():
    x = low_rank_data()
    directions, error = numpy_pca(x, RANK)
    model = LinearAutoencoder(input_shape=(DIMS,), latent_dim=RANK, seed=0)
    assert max_principal_angle(model.decoder_basis(), directions) > 20  # starts far away
    steps = 200
    schedule = keras.optimizers.schedules.CosineDecay(0.15, steps, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    # One epoch of `steps` identical full batches: full-batch gradient descent.
    history = model.fit(np.tile(x, (steps, 1)), batch_size=len(x), shuffle=False, verbose=0)
    assert max_principal_angle(model.decoder_basis(), directions) < 5.0
    assert error <= model.reconstruction_error(x) < 1.01 * error
    np.testing.assert_allclose(history.history["reconstruction"], history.history["loss"])


def test_input_checks():
    model = LinearAutoencoder(input_shape=(4, 4, 1), latent_dim=2)
    with pytest.raises(ValueError, match=r"\(batch, 4, 4, 1\)"):
        model(np.zeros((2, 16), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        model.decode(np.zeros((2, 3), "float32"))
    model.compile()
    with pytest.raises(ValueError, match="targets"):
        model.fit(np.zeros((4, 4, 4, 1), "float32"), np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match="at most 6 components"):
        LinearAutoencoder.from_pca(np.zeros((10, 6), "float32"), latent_dim=7)
    with pytest.raises(ValueError, match="latent_dim"):
        LinearAutoencoder(input_shape=(6,), latent_dim=0)
