"""TextDiffusion: a DDPM conditioned on a frozen CLIP's text embedding: standard checks,
the frozen CLIP, the nested save/load, prompts, classifier-free guidance, checks, export."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mp_keras.data import captions
from mp_keras.diffusion import ddpm_sample
from mp_keras.export import export_model
from mp_keras.models.clip import CLIP
from mp_keras.models.text_diffusion import TextDiffusion
from tests.harness import export_test_on, randomize_weights, run_standard_checks, to_numpy

PROMPT = "a large red circle at the top left"


@pytest.fixture(scope="module")
def pairs():
    x, tokens, _ = captions.generate_captions(32, seed=0, image_size=16)
    return x, tokens


@pytest.fixture(scope="module")
def clip():
    model = CLIP(
        (16, 16, 3),
        len(captions.VOCABULARY),
        captions.MAX_LENGTH,
        embed_dim=8,
        filters=(4,),
        image_units=8,
        text_dim=8,
        num_layers=0,
        seed=0,
    )  # the docstring examples' CLIP: on JAX, eager ops compile once per shape
    randomize_weights(model, scale=0.3)  # a frozen encoder needs no training here
    return model


def vectors(x):
    """The images averaged to 2x2x3 and flattened: 12-dim data for a fast MLP denoiser."""
    return x.reshape(len(x), 2, 8, 2, 8, 3).mean(axis=(2, 4)).reshape(len(x), 12)


def small(clip, **kwargs):
    defaults = dict(
        input_shape=(12,),
        hidden_units=(16,),
        time_dim=8,
        timesteps=10,
        num_levels=None,
        ema_momentum=None,
        seed=0,
    )
    return TextDiffusion(clip, **{**defaults, **kwargs})


def test_standard_checks_keep_clip_frozen(pairs, clip, tmp_path):
    x, tokens = pairs
    data = vectors(x)
    frozen = [to_numpy(w) for w in clip.weights]
    model = run_standard_checks(lambda: small(clip), data, (None, 12), tmp_path, y=tokens)
    assert not clip.trainable and not clip.trainable_weights
    phase = {id(v) for v in model.phases()[0].variables}
    assert phase == {id(v) for v in model.network.trainable_variables}
    assert {id(v) for v in model.trainable_variables} == phase
    for before, after in zip(frozen, clip.weights):
        np.testing.assert_array_equal(before, to_numpy(after))
    # The .keras file restores the nested CLIP with its weights, and the sampler with it.
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.clip, CLIP) and not loaded.clip.trainable
    np.testing.assert_allclose(
        to_numpy(loaded.clip.encode_text(tokens)), to_numpy(clip.encode_text(tokens)), atol=1e-6
    )
    x_t, t = data[:3], np.array([1, 4, 10])
    np.testing.assert_allclose(
        to_numpy(loaded.predict_noise(x_t, t, PROMPT, guidance=2.0)),
        to_numpy(model.predict_noise(x_t, t, PROMPT, guidance=2.0)),
        atol=1e-5,
    )
    samples = to_numpy(model.sample(3, seed=1, prompt=PROMPT, guidance=2.0))
    assert samples.shape == (3, 12) and samples.min() >= 0 and samples.max() <= 1


@pytest.mark.slow  # a U-Net's first fit traces for 10-30 s on TensorFlow and JAX
def test_images_with_a_unet(pairs, clip, tmp_path):
    x, tokens = pairs
    model = run_standard_checks(
        lambda: TextDiffusion(
            clip, filters=(4,), time_dim=8, groups=4, timesteps=5, ema_momentum=None, seed=0
        ),
        x,
        (None, 16, 16, 3),
        tmp_path,
        y=tokens,
    )
    samples = to_numpy(model.sample(2, seed=0, prompt=["a red circle", "a blue square"]))
    assert samples.shape == (2, 16, 16, 3) and samples.min() >= 0 and samples.max() <= 1


def test_condition_dropout_gives_the_null_condition(clip, pairs):
    _, tokens = pairs
    model = small(clip, condition_dropout=0.5)
    condition = to_numpy(model._training_condition(tokens, len(tokens)))
    norms = np.linalg.norm(condition, axis=1)
    dropped = norms < 1e-6
    assert 0 < dropped.sum() < len(tokens)  # about half are the zero vector ...
    np.testing.assert_allclose(norms[~dropped], 1.0, atol=1e-5)  # ... the rest CLIP's
    np.testing.assert_allclose(
        condition[~dropped], to_numpy(clip.encode_text(tokens))[~dropped], atol=1e-6
    )
    np.testing.assert_array_equal(to_numpy(model.null_condition(3)), np.zeros((3, 8)))


def test_classifier_free_guidance_and_prompts(clip):
    model = small(clip)
    randomize_weights(model.network, scale=0.3)
    # rho = 0 is the conditional sampler: Algorithm 3 on eps(x, CLIP(prompt); t).
    generator = keras.random.SeedGenerator(4)
    x_T = keras.random.normal((3, 12), seed=generator)
    text = clip.encode_text(captions.tokenize([PROMPT] * 3))
    by_hand = ddpm_sample(  # x_0 predictions clipped to [-1, 1], as DDPM.sample does
        lambda x, t: model.network_noise(x, t, text),
        model.schedule,
        x_T,
        generator,
        clip_x0=(-1.0, 1.0),
    )
    conditional = to_numpy(model.sample(3, seed=4, prompt=PROMPT, guidance=0.0))
    np.testing.assert_allclose(conditional, to_numpy(model.decode_data(by_hand)), atol=1e-5)
    # A prompt, its tokens and its embedding are the same condition.
    x_t, t = np.full((3, 12), 0.5, "float32"), np.array([2, 5, 9])
    eps_c = to_numpy(model.predict_noise(x_t, t, PROMPT))
    tokens = captions.tokenize([PROMPT] * 3)
    for condition in (tokens, to_numpy(text), [PROMPT] * 3):
        np.testing.assert_allclose(
            to_numpy(model.predict_noise(x_t, t, condition)), eps_c, atol=1e-6
        )
    eps_u = to_numpy(model.predict_noise(x_t, t))  # no condition: the zero vector
    zero = keras.ops.zeros((3, 8))
    np.testing.assert_allclose(
        eps_u, to_numpy(model.network_noise(keras.ops.convert_to_tensor(x_t), t, zero)), atol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(model.predict_noise(x_t, t, PROMPT, guidance=2.0)),
        3 * eps_c - 2 * eps_u,
        atol=1e-5,
    )
    several = ["a red circle", "a green square", "a small blue triangle"]
    guided = to_numpy(model.sample(3, seed=4, prompt=several, guidance=1.0))
    assert guided.shape == (3, 12) and np.abs(guided - conditional).max() > 1e-4


def test_bad_inputs_raise_value_error(pairs, clip):
    x, tokens = pairs
    data = vectors(x)
    model = small(clip)
    model.compile()
    x_t, t = np.zeros((2, 12), "float32"), np.array([1, 2])
    cases = [
        (lambda: model.sample(2, prompt="a purple circle"), "purple"),
        (lambda: model.sample(2, prompt=["a red circle"] * 3), "2 conditions"),
        (lambda: model.sample(2, guidance=1.0), "prompt"),
        (lambda: model.sample(2, prompt="a circle", condition=tokens[:2]), "not both"),
        (
            lambda: model.predict_noise(x_t, t, np.zeros((2, 5), "float32")),
            r"embeddings of shape \(batch, 8\)",
        ),
        (lambda: model.predict_noise(x_t, t, tokens[:2, :5]), r"tokens of shape \(batch, 8\)"),
        (lambda: model.predict_noise(x_t, t, tokens[:2] + 100), "tokens"),
        (lambda: model.predict_noise(x_t, t, np.zeros((2, 8), "int32")), "non-pad"),
        (lambda: model.fit(data, epochs=1, verbose=0), "tokens"),
        (lambda: model.fit(data[:, :5], tokens, epochs=1, verbose=0), r"\(batch, 12\)"),
        (lambda: model.fit(x, tokens, epochs=1, verbose=0), r"\(batch, 12\)"),
        (lambda: TextDiffusion(keras.layers.Dense(3)), "CLIP"),
    ]
    for run, message in cases:
        with pytest.raises(ValueError, match=message):
            run()


@export_test_on()
def test_export_denoise_step_and_encode_text_pass_tflite_parity(clip, tmp_path):
    model = small(clip)
    randomize_weights(model.network, scale=0.3)
    model.save(tmp_path / "text.keras")
    manifest = export_model(
        tmp_path / "text.keras", tmp_path / "export", imports=["mp_keras.models.text_diffusion"]
    )
    assert manifest["passed"]
    assert manifest["metadata"]["text_dim"] == 8 and manifest["metadata"]["max_length"] == 8


def test_the_training_figure_draws_its_prompts(clip, pairs, tmp_path):
    from mp_keras.plots.samples import draw_samples, save_samples

    model = small(clip)
    samples, prompts = draw_samples(model, 4, seed=0)
    assert samples.shape == (4, 12)
    assert list(prompts) == model.figure_prompts()[:4]
    save_samples(model, samples, tmp_path / "samples.png", prompts)
    assert (tmp_path / "samples.png").is_file()
