"""The benchmark's two trainers run the same VAE on this backend (figures: docs/)."""

import keras

from mp_keras.benchmark import compare_trainers


def test_both_trainers_train_the_same_model():
    result = compare_trainers(steps=5, repeats=1, batch_size=32)
    assert result["backend"] == keras.backend.backend()
    assert set(result["steps_per_second"]) == {"engine", "keras_builtin"}
    assert all(rate > 0 for rate in result["steps_per_second"].values())
    engine, builtin = result["final_loss"]["engine"], result["final_loss"]["keras_builtin"]
    assert abs(engine - builtin) < 0.1 * engine  # same model, same data, same loss


def test_the_plain_version_is_the_same_model():
    """The plain PyTorch/JAX VAE of the benchmark (no Keras) starts where the engine does."""
    import pytest

    from mp_keras.benchmark import PLAIN

    backend = keras.backend.backend()
    if backend not in PLAIN:
        pytest.skip(f"no plain version for {backend}")
    plain = PLAIN[backend](steps=5, batch_size=32, warmup=20)  # as compare_trainers
    engine = compare_trainers(steps=5, repeats=1, batch_size=32)["final_loss"]["engine"]
    assert plain["steps_per_second"] > 0
    assert abs(plain["final_loss"] - engine) < 0.1 * engine
