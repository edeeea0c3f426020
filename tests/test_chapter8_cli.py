"""Chapter 8 from the command line: the GAN recipes, sample quality in `train` and
`evaluate` (mode coverage on the toy mixtures, FD/KD/coverage on images)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from mp_keras import data, registry, training
from mp_keras.cli import main

CHAPTER_8 = ("gan", "unrolled_gan", "wgan", "wgan_gp", "dcgan")


def test_recipes_are_registered_and_build_the_right_classes():
    assert set(CHAPTER_8) <= set(registry.RECIPES)
    ring = data.load("ring", "test", num_examples=4).info
    digits = data.load("digits", "test", num_examples=4).info
    expected = {"unrolled_gan": "UnrolledGAN", "wgan": "WGAN", "wgan_gp": "WGANGP"}
    for name, cls_name in expected.items():
        assert type(registry.get_recipe(name).build(ring, 0)).__name__ == cls_name
    dcgan = registry.get_recipe("dcgan").build(digits, 0)
    assert dcgan.network == "dcgan" and dcgan.data_shape == (8, 8, 1)
    assert registry.get_recipe("dcgan", "paper").dataset == "tfds:mnist"
    with pytest.raises(ValueError, match="divisible by 4"):
        registry.get_recipe("dcgan").build(ring, 0)


def _tiny(recipe_name: str, **kwargs):
    recipe = registry.get_recipe(recipe_name)
    build = recipe.build

    def tiny(info, seed):
        model = build(info, seed)
        config = {**model.get_config(), **kwargs}
        return type(model).from_config(config)

    return registry.Recipe(**{**vars(recipe), "build": tiny, "epochs": 1, "batch_size": 256})


@pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="command-line plumbing, the same on every backend; the GANs train on JAX in "
    "their own tests, and JAX's test stream is CI's longest",
)
def test_train_and_evaluate_report_sample_quality(tmp_path, monkeypatch, capsys):
    # A ring GAN: train reports the modes covered; evaluate prints them again.
    tiny = _tiny("wgan_gp", generator_units=[16], discriminator_units=[16])
    monkeypatch.setitem(registry.RECIPES, "wgan_gp", tiny)
    result = training.train("wgan_gp", tmp_path / "ring", seed=0, verbose=0)
    for key in ("modes_covered", "high_quality", "mode_kl", "wasserstein"):
        assert key in result, key
    assert 0 <= result["modes_covered"] <= 8
    assert main(["evaluate", str(tmp_path / "ring" / "model.keras"), "--dataset", "ring",
                 "--num-samples", "500"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert 0.0 <= printed["high_quality"] <= 1.0

    # Images: FD, KD and class coverage on the features of a CNN trained on the digits,
    # cached where --classifier says.
    tiny = _tiny("dcgan", filters=4, latent_dim=8)
    monkeypatch.setitem(registry.RECIPES, "dcgan", tiny)
    training.train("dcgan", tmp_path / "digits", seed=0, verbose=0)
    cache = tmp_path / "features.keras"
    args = ["evaluate", str(tmp_path / "digits" / "model.keras"), "--dataset", "digits"]
    assert main([*args, "--classifier", str(cache), "--num-samples", "200"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert cache.exists()
    assert printed["fid"] > 0 and np.isfinite(printed["kid"])
    assert 0.0 < printed["class_coverage"] <= 1.0
