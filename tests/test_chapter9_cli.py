"""Chapter 9 from the command line: the diffusion and CLIP recipes, `train --condition
class`, `sample` with a sampler, steps, label and guidance, `evaluate` (the bound and
sample quality), and the exported one-step sampler looped by the TFLite app."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import keras
import numpy as np
import pytest

from mp_keras import data, registry, training
from mp_keras.cli import main
from mp_keras.export import export_model
from mp_keras.models import MLPDenoiser, UNetDenoiser
from tests.harness import REPO, export_test_on, randomize_weights

CHAPTER_9 = ("ddpm", "clip", "text_diffusion", "latent_diffusion")
TINY_DDPM = dict(filters=[4, 4], time_dim=8, groups=4, timesteps=10)


# Command-line plumbing is the same Keras code on every backend. These tests run on PyTorch
# alone, whose CI stream has time to spare: each DDPM also trains, samples and exports on
# TensorFlow and JAX in its own tests (test_ddpm, and the app test below on TensorFlow).
only_on_torch = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="command-line plumbing, the same on every backend; runs on PyTorch, whose CI "
    "stream is the shortest",
)


@only_on_torch
def test_recipes_are_registered_and_build_the_right_models():
    assert set(CHAPTER_9) <= set(registry.RECIPES)
    digits = data.load("digits", "test", num_examples=4).info
    ring = data.load("ring", "test", num_examples=4).info
    plain = registry.get_recipe("ddpm").build(digits, 0)
    assert isinstance(plain.network, UNetDenoiser) and not plain.is_conditional
    assert plain.data_range == (0.0, 1.0) and plain.num_levels == 17
    conditional = registry.get_recipe("ddpm", condition="class")
    assert conditional.kind == "conditional"
    assert conditional.build(digits, 0).num_classes == 10
    assert isinstance(registry.get_recipe("ddpm").build(ring, 0).network, MLPDenoiser)
    assert registry.get_recipe("ddpm", "paper").dataset == "tfds:cifar10"
    with pytest.raises(ValueError, match="has no class-conditional variant; the models"):
        registry.get_recipe("vae", condition="class")
    with pytest.raises(ValueError, match="needs a labelled dataset"):
        conditional.build(dataclasses.replace(digits, num_classes=None), 0)
    # The models with a frozen pretrained part refuse data they cannot pretrain it on
    # before training anything.
    with pytest.raises(ValueError, match="`captions` or `captions_16`"):
        registry.get_recipe("text_diffusion").build(digits, 0)
    with pytest.raises(ValueError, match="encodes images with a VAE"):
        registry.get_recipe("latent_diffusion").build(ring, 0)
    assert registry.get_recipe("text_diffusion").kind == "conditional"


def _tiny(recipe: registry.Recipe, **overrides) -> registry.Recipe:
    def tiny(info, seed):
        model = recipe.build(info, seed)
        return type(model).from_config({**model.get_config(), **overrides})

    return dataclasses.replace(recipe, build=tiny, epochs=1, batch_size=256)


@only_on_torch
def test_train_sample_and_evaluate_a_class_conditional_ddpm(tmp_path, monkeypatch, capsys):
    recipe = registry.get_recipe("ddpm")
    tiny = dataclasses.replace(
        _tiny(recipe, **TINY_DDPM), conditional=_tiny(recipe.conditional, **TINY_DDPM)
    )
    monkeypatch.setitem(registry.RECIPES, "ddpm", tiny)
    out = tmp_path / "run"
    result = training.train("ddpm", out, condition="class", seed=0, verbose=0)
    assert result["condition"] == "class" and np.isfinite(result["nll_bound"])
    assert (out / "samples.png").is_file()
    model_file = str(out / "model.keras")

    png = tmp_path / "three.png"
    args = ["sample", model_file, "--num", "4", "--out", str(png), "--label", "3"]
    assert main([*args, "--sampler", "ddim", "--steps", "5", "--guidance", "2"]) == 0
    assert png.is_file()
    with pytest.raises(ValueError, match="does not take --prompt"):
        training.sample(model_file, png, num=2, prompt="a red circle")

    capsys.readouterr()  # what `sample` printed
    cache = tmp_path / "features.keras"
    args = ["evaluate", model_file, "--dataset", "digits", "--classifier", str(cache)]
    assert main([*args, "--num-samples", "100"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert np.isfinite(printed["nll_bound"]) and printed["bits_per_dim_bound"] > 0
    assert printed["fid"] > 0 and 0.0 < printed["class_coverage"] <= 1.0


def _tflite_app():
    spec = importlib.util.spec_from_file_location("tflite_sample", REPO / "apps/tflite_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@export_test_on()
def test_tflite_app_loops_the_exported_step_like_the_keras_sampler(tmp_path):
    from mp_keras.models import DDPM

    model = DDPM(input_shape=(8, 8, 1), num_classes=3, num_levels=17, seed=0, **TINY_DDPM)
    randomize_weights(model, scale=0.3)  # a trained network's output is not zero either
    model.save(tmp_path / "ddpm.keras")
    manifest = export_model(tmp_path / "ddpm.keras", tmp_path / "export")
    assert manifest["passed"]  # SavedModel and TFLite parity of `denoise_step`
    assert manifest["metadata"]["timesteps"] == 10 and manifest["metadata"]["num_classes"] == 3
    app = _tflite_app()
    draws, samples = app.draw(tmp_path / "export" / "model.tflite", 4, 3, label=2, guidance=1.5)
    assert draws.shape == (11, 4, 8, 8, 1)
    # The Keras model, looped by hand with the same draws: Algorithm 3 step by step.
    x_t = draws[0]
    for t in range(10, 0, -1):
        steps = np.full((4,), t, "int32")
        x_t = model.denoise_step(x_t, steps, draws[11 - t], np.full((4,), 2), 1.5)
    expected = keras.ops.convert_to_numpy(model.decode_data(x_t))
    np.testing.assert_allclose(samples, expected, atol=1e-4)
    with pytest.raises(ValueError, match="class-conditional: pass --label"):
        app.draw(tmp_path / "export" / "model.tflite", 2, 0)
