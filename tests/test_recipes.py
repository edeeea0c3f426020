"""Recipes: every model of chapters 5-6 is registered, paper variants, run identity."""

from __future__ import annotations

import pytest

from mp_keras import io
from mp_keras.registry import RECIPES, get_recipe
from mp_keras.runs import METRICS, RunFolder

CHAPTER_5_6 = (
    "linear_ae autoencoder denoising_ae inpainting_ae beta_vae "
    "fvsbn nade made pixelrnn pixelcnn gated_pixelcnn gradient_descent_mlp"
).split()


def test_the_new_models_are_registered():
    assert set(CHAPTER_5_6) <= set(RECIPES)


@pytest.mark.parametrize("name", ["vae", "fvsbn", "nade", "made", "pixelrnn", "pixelcnn"])
def test_paper_recipes_train_on_binarized_mnist(name):
    paper = get_recipe(name, "paper")
    assert paper.variant == "paper" and paper.name == name
    assert paper.dataset == "binarized_mnist"
    assert get_recipe(name).variant == "default"


def test_unknown_or_missing_paper_recipes_are_refused():
    with pytest.raises(ValueError, match="has no paper recipe"):
        get_recipe("cnn", "paper")
    with pytest.raises(ValueError, match="Unknown recipe"):
        get_recipe("made", "best")


def test_a_run_records_its_recipe_and_older_runs_count_as_default(tmp_path):
    identity = {
        "model": "made",
        "recipe": "default",
        "dataset": "digits_binarized",
        "epochs": 2,
        "batch_size": 64,
        "seed": 0,
    }
    run = RunFolder(tmp_path)
    io.write_bytes(tmp_path / "model.keras", b"(a model)")
    old = {key: value for key, value in identity.items() if key != "recipe"}
    io.write_json(tmp_path / METRICS, old)  # written before recipes existed
    assert run.prepare(identity, overwrite=False) == "finished"
    with pytest.raises(ValueError, match=r"made \(paper recipe\)"):
        run.prepare({**identity, "recipe": "paper"}, overwrite=False)
