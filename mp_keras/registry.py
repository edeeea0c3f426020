"""Model registry: each model's builder, default dataset and training recipe.

The command line offers exactly these names; `mp-keras train NAME` uses the recipe's
dataset, epochs, batch size and optimizer unless told otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mp_keras.data import DatasetInfo

if TYPE_CHECKING:  # Keras is imported when a model is built, not to list the recipes.
    import keras


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to build and train one model of the collection.

    Args:
        name: str. Command-line name.
        chapter: str. Section of the course notes.
        summary: str. One line for `mp-keras list`.
        kind: str. `"generative"` (learns from x alone), `"conditional"` (a generative
            model of x given its label y), `"contrastive"` (paired x and y, e.g. images
            and captions), or a supervised kind (`"classifier"`, `"segmentation"`,
            `"sequence"`) trained on (x, y).
        build: callable `(info, seed) -> keras.Model` for a dataset's `DatasetInfo`.
        optimizer: callable returning what `model.compile(optimizer=...)` takes.
        dataset: str. Default dataset name.
        epochs: int. Default number of epochs.
        batch_size: int. Default batch size.
        paper: Recipe or None. The published hyper-parameters (architecture, data,
            optimizer, epochs), offered as `mp-keras train NAME --recipe paper`; meant for
            a GPU, where the default recipe is sized to train in minutes on a CPU.
        variant: str. `"default"` or `"paper"`: which of the two this is.
        conditional: Recipe or None. The class-conditional variant of this recipe
            (`mp-keras train NAME --condition class`), of kind `"conditional"`.
    """

    name: str
    chapter: str
    summary: str
    kind: str
    build: Callable[[DatasetInfo, int | None], keras.Model]
    optimizer: Callable[[], Any]
    dataset: str
    epochs: int
    batch_size: int
    paper: Recipe | None = None
    variant: str = "default"
    conditional: Recipe | None = None


VARIANTS = ("default", "paper")
CONDITIONS = ("none", "class")


def _mlp(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.models import MLP

    if not info.num_classes:
        raise ValueError(f"MLP is a classifier and needs labels; dataset {info.name!r} has none.")
    return MLP(input_shape=info.shape, num_classes=info.num_classes, hidden_units=(128,), seed=seed)


def _gradient_descent_mlp(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.models import GradientDescentMLP

    if not info.num_classes:
        raise ValueError(
            f"GradientDescentMLP is a classifier and needs labels; dataset {info.name!r} has none."
        )
    return GradientDescentMLP(
        input_shape=info.shape,
        num_classes=info.num_classes,
        hidden_units=(64,),
        activation="tanh",
        learning_rate=0.1,
        seed=seed,
    )


def _linear_ae(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.models import LinearAutoencoder

    return LinearAutoencoder(input_shape=info.shape, latent_dim=10, seed=seed)


def _autoencoder(corruption: str, latent_dim: int) -> Callable[[DatasetInfo, int | None], Any]:
    """Builder of an `Autoencoder` with a corruption (denoising, inpainting) or none."""

    def build(info: DatasetInfo, seed: int | None) -> keras.Model:
        from mp_keras.models import Autoencoder

        lo, hi = info.value_range
        return Autoencoder(
            input_shape=info.shape,
            latent_dim=latent_dim,
            hidden_units=(256,),
            corruption=corruption,
            reconstruction="bernoulli" if lo >= 0 and hi <= 1 else "mse",
            seed=seed,
        )

    return build


def _vae(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.models import VAE

    likelihood = "bernoulli" if info.binary else "gaussian"
    return VAE(
        input_shape=info.shape,
        latent_dim=4,
        hidden_units=(256, 128),
        likelihood=likelihood,
        seed=seed,
    )


def _vae_paper(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.models import VAE

    # Burda et al. 2016, one stochastic layer: 2 x 200 hidden units, 50 latents.
    return VAE(input_shape=info.shape, latent_dim=50, hidden_units=(200, 200), seed=seed)


def _beta_vae(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.models import VAE

    likelihood = "bernoulli" if info.binary else "gaussian"
    return VAE(
        input_shape=info.shape,
        latent_dim=8,
        hidden_units=(256, 128),
        likelihood=likelihood,
        beta=4.0,
        seed=seed,
    )


def _binary_density(
    cls_name: str, images: bool = False, **kwargs: Any
) -> Callable[[DatasetInfo, int | None], Any]:
    """Builder of an autoregressive model of binary data (FVSBN, NADE, MADE, PixelCNN...)."""

    def build(info: DatasetInfo, seed: int | None) -> keras.Model:
        from mp_keras import models

        if not info.binary:
            raise ValueError(
                f"{cls_name} models binary data; dataset {info.name!r} is not binary. Use "
                "digits_binarized, binarized_mnist or an npz: file of 0/1 images."
            )
        if images and len(info.shape) != 3:
            raise ValueError(
                f"{cls_name} models images (height, width, channels); dataset {info.name!r} "
                f"has examples of shape {tuple(info.shape)}."
            )
        return getattr(models, cls_name)(input_shape=info.shape, seed=seed, **kwargs)

    return build


def _adversarial(cls_name: str, **overrides: Any) -> Callable[[DatasetInfo, int | None], Any]:
    """A builder of the GAN `cls_name` (chapter 8) sized for the dataset: MLPs for points
    and small images, `overrides` on top (e.g. the DCGAN networks)."""

    def build(info: DatasetInfo, seed: int | None) -> keras.Model:
        from mp_keras import models

        images = len(info.shape) > 1
        lo, hi = info.value_range
        kwargs = {
            "data_shape": info.shape,
            "latent_dim": 16 if images else 2,
            "generator_units": (256, 256) if images else (128, 128),
            "discriminator_units": (256, 256) if images else (128, 128),
            "output_activation": "sigmoid" if images and lo >= 0 and hi <= 1 else "linear",
            "seed": seed,
            **overrides,
        }
        if kwargs.get("network") == "dcgan":
            for name in ("generator_units", "discriminator_units"):
                kwargs.pop(name)
            if len(info.shape) != 3 or info.shape[0] % 4 or info.shape[1] % 4:
                raise ValueError(
                    f"{cls_name} has convolutional networks for images (height, width, "
                    f"channels) with height and width divisible by 4; dataset {info.name!r} "
                    f"has examples of shape {tuple(info.shape)}."
                )
        return getattr(models, cls_name)(**kwargs)

    return build


_gan = _adversarial("GAN")


def _ddpm_levels(info: DatasetInfo) -> int | None:
    """The grid of the data's values, for the reconstruction term of the bound."""
    if info.binary:
        return 2
    return 17 if info.name.startswith("digits") else 256  # digits: k / 16; MNIST: 8-bit


def _ddpm(conditional: bool, **overrides: Any) -> Callable[[DatasetInfo, int | None], Any]:
    """Builder of a `DDPM`: a U-Net on images, an MLP on vectors; class-conditional (for
    classifier-free guidance) when `conditional`."""

    def build(info: DatasetInfo, seed: int | None) -> keras.Model:
        from mp_keras.models import DDPM

        if conditional and not info.num_classes:
            raise ValueError(
                f"ddpm --condition class needs a labelled dataset; {info.name!r} has no labels."
            )
        images = len(info.shape) == 3
        kwargs = dict(
            input_shape=info.shape,
            hidden_units=(128, 128, 128),
            filters=(32, 64),
            timesteps=1000 if images else 100,
            data_range=tuple(info.value_range) if images else None,
            num_levels=_ddpm_levels(info) if images else None,
            num_classes=info.num_classes if conditional else None,
            ema_momentum=0.995,
            seed=seed,
        )
        return DDPM(**{**kwargs, **overrides})

    return build


def _clip(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.data import captions
    from mp_keras.models import CLIP

    if info.name not in captions.DATASETS:
        raise ValueError(
            "CLIP trains on image-caption pairs (the `captions` or `captions_16` dataset); "
            f"got {info.name!r}."
        )
    return CLIP(
        image_shape=info.shape,
        vocab_size=len(captions.VOCABULARY),
        max_length=captions.MAX_LENGTH,
        embed_dim=32,
        seed=seed,
    )


def _latent_diffusion(info: DatasetInfo, seed: int | None) -> keras.Model:
    """A `LatentDiffusion` on a Gaussian VAE (latent 8) trained here first, then frozen."""
    import keras

    from mp_keras import data
    from mp_keras.models import VAE, LatentDiffusion

    if len(info.shape) != 3:
        raise ValueError(
            f"latent_diffusion encodes images with a VAE; {info.name!r} has shape {info.shape}."
        )
    vae = VAE(
        info.shape,
        latent_dim=8,
        hidden_units=(256, 128),
        likelihood="gaussian",
        observation_std=0.1,
        seed=seed,
    )
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    vae.fit(data.load(info.name, "train").x, epochs=30, batch_size=64, verbose=0)
    return LatentDiffusion(
        vae,
        hidden_units=(256, 256, 256),
        timesteps=200,
        schedule="linear",
        ema_momentum=0.995,
        seed=seed,
    )


def _text_diffusion(info: DatasetInfo, seed: int | None) -> keras.Model:
    """A `TextDiffusion` on a CLIP trained here first on the captions, then frozen."""
    import keras

    from mp_keras import data
    from mp_keras.models import TextDiffusion

    clip = _clip(info, seed)  # refuses datasets other than `captions`/`captions_16`
    clip.compile(optimizer=keras.optimizers.Adam(2e-3))
    pairs = data.load(info.name, "train")
    clip.fit(pairs.x, pairs.y, epochs=8, batch_size=64, verbose=0)
    return TextDiffusion(
        clip,
        filters=(16, 32),
        timesteps=200,
        schedule="linear",
        ema_momentum=0.995,
        seed=seed,
    )


def _perceptron(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.models import Perceptron

    if info.num_classes != 2 or len(info.shape) != 1:
        raise ValueError(
            f"Perceptron separates two classes of feature vectors; dataset {info.name!r} has "
            f"{info.num_classes} classes of shape {info.shape}."
        )
    return Perceptron(num_features=info.shape[0], learning_rate=1.0)


def _cnn(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.models import CNN

    if not info.num_classes or len(info.shape) != 3:
        raise ValueError(
            f"CNN classifies labelled images (height, width, channels); dataset {info.name!r} "
            f"has examples of shape {tuple(info.shape)} and {info.num_classes} classes."
        )
    return CNN(input_shape=info.shape, num_classes=info.num_classes, seed=seed)


def _sequence_model(cls_name: str, **kwargs: Any) -> Callable[[DatasetInfo, int | None], Any]:
    """Builder of a chapter-4 model sized from a generated sequence dataset."""

    def build(info: DatasetInfo, seed: int | None) -> keras.Model:
        from mp_keras import models
        from mp_keras.data.sequences import num_tokens, target_length

        sizes = {"num_tokens": num_tokens(info), "num_classes": info.num_classes}
        if cls_name in ("SequenceTagger", "SequenceClassifier"):
            sizes["sequence_length"] = info.shape[0]
        if cls_name == "SequenceGenerator":
            sizes["output_length"] = target_length(info)
        if cls_name == "Seq2Seq":
            sizes.update(input_length=info.shape[0], output_length=target_length(info))
        return getattr(models, cls_name)(**sizes, **kwargs)

    return build


def _unet(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.models import UNet

    if not info.num_classes or len(info.shape) != 3:
        raise ValueError(
            f"UNet segments images (height, width, channels) into per-pixel classes; dataset "
            f"{info.name!r} has shape {info.shape} and {info.num_classes} classes."
        )
    return UNet(input_shape=info.shape, num_classes=info.num_classes, filters=(16, 32, 64))


def _wavenet(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.models import WaveNet

    lo, hi = info.value_range
    if len(info.shape) != 1 or info.binary or lo < 0 or hi > 255:
        raise ValueError(
            f"WaveNet models sequences of 256 mu-law classes, shape (time,) in 0..255; dataset "
            f"{info.name!r} has examples of shape {tuple(info.shape)} in {info.value_range}. "
            "Use 'tones' or an npz: file with a 'waveforms' array."
        )
    return WaveNet(
        num_classes=256,
        residual_channels=32,
        dilation_channels=32,
        skip_channels=64,
        num_blocks=1,
        dilations_per_block=8,
        input_length=info.shape[0],
        seed=seed,
    )


def _vrnn(conditional: bool) -> Callable[[DatasetInfo, int | None], Any]:
    """Builder of a `VRNN` (or, conditional, a `CVRNN`) of `(time, features)` sequences."""

    def build(info: DatasetInfo, seed: int | None) -> keras.Model:
        from mp_keras.models import CVRNN, VRNN

        name = "CVRNN" if conditional else "VRNN"
        if len(info.shape) != 2:
            raise ValueError(
                f"{name} models sequences (time, features); dataset {info.name!r} has "
                f"examples of shape {tuple(info.shape)}. Use 'digit_strokes'."
            )
        if conditional and not info.num_classes:
            raise ValueError(f"CVRNN needs labelled sequences; dataset {info.name!r} has none.")
        sizes = dict(
            sequence_length=info.shape[0],
            features=info.shape[1],
            latent_dim=16,
            units=128,
            hidden_units=(128,),
            likelihood="bernoulli" if info.binary else "gaussian",
            seed=seed,
        )
        if conditional:
            return CVRNN(num_classes=info.num_classes, **sizes)
        return VRNN(**sizes)

    return build


def _transformer(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.data import addition
    from mp_keras.models import Transformer

    size = dict(embed_dim=64, num_heads=4, num_layers=2, seed=seed)
    lo, hi = info.value_range
    if len(info.shape) == 3 and info.binary and info.shape[-1] == 1:
        return Transformer(input_shape=info.shape, **size)
    if len(info.shape) == 1 and lo == 0 and not info.binary:
        vocab_size = int(hi) + 1
        words = addition.VOCABULARY if info.name.startswith("addition") else None
        return Transformer(
            vocab_size=vocab_size, max_length=info.shape[0], vocabulary=words, **size
        )
    raise ValueError(
        f"Transformer models token sequences (time,) of ids 0..V-1 or binary one-channel "
        f"images; dataset {info.name!r} has examples of shape {tuple(info.shape)} in "
        f"{info.value_range}. Use 'addition', 'digits_binarized' or 'binarized_mnist'."
    )


def _flow2d(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.models import Flow2D

    if tuple(info.shape) != (2,):
        raise ValueError(
            f"Flow2D models 2-D points; dataset {info.name!r} has examples of shape "
            f"{tuple(info.shape)}. Use 'moons', 'ring' or 'checkerboard'."
        )
    return Flow2D(num_couplings=6, hidden_units=(64, 64), seed=seed)


def _image_levels(owner: str, info: DatasetInfo, images_only: bool = False) -> int | None:
    """Grey levels of a dataset for a flow: 17 for `digits` (k / 16), 256 for other images.

    None for real-valued data that are not images in [0, 1] (no dequantisation).
    """
    if info.binary:
        raise ValueError(
            f"{owner} models real-valued or many-level data; dataset {info.name!r} is binary. "
            "Use 'digits'."
        )
    images = len(info.shape) == 3 and tuple(info.value_range) == (0.0, 1.0)
    if images_only and not images:
        raise ValueError(
            f"{owner} models images (height, width, channels) with values in [0, 1]; dataset "
            f"{info.name!r} has examples of shape {tuple(info.shape)} in {info.value_range}. "
            "Use 'digits' or 'npz:PATH' with images."
        )
    return (17 if info.name == "digits" else 256) if images else None


def _nice(info: DatasetInfo, seed: int | None) -> keras.Model:
    from mp_keras.models import NICE

    return NICE(
        input_shape=info.shape,
        num_couplings=4,
        hidden_units=(256, 256),
        num_levels=_image_levels("NICE", info),
        seed=seed,
    )


def _image_flow(cls_name: str, **kwargs: Any) -> Callable[[DatasetInfo, int | None], keras.Model]:
    """A builder of the image flow `cls_name` (RealNVP, Glow) for a dataset of images."""

    def build(info: DatasetInfo, seed: int | None) -> keras.Model:
        from mp_keras import models

        levels = _image_levels(cls_name, info, images_only=True)
        cls = getattr(models, cls_name)
        return cls(input_shape=info.shape, num_levels=levels, seed=seed, **kwargs)

    return build


def _adam(learning_rate: float, **kwargs: Any) -> Callable[[], keras.optimizers.Optimizer]:
    """A factory of `keras.optimizers.Adam(learning_rate, **kwargs)`."""

    def make() -> keras.optimizers.Optimizer:
        import keras

        return keras.optimizers.Adam(learning_rate, **kwargs)

    return make


def _adam_cosine(learning_rate: float, decay_steps: int, alpha: float = 0.05) -> Callable[[], Any]:
    """A factory of Adam whose rate follows a cosine from `learning_rate` down to
    `alpha * learning_rate` over `decay_steps` steps, then stays there."""

    def make() -> keras.optimizers.Optimizer:
        import keras

        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps, alpha)
        return keras.optimizers.Adam(schedule)

    return make


def _optimizer(name: str, learning_rate: float, **kwargs: Any) -> Callable[[], Any]:
    """A factory of `keras.optimizers.<name>(learning_rate, **kwargs)`."""

    def make() -> keras.optimizers.Optimizer:
        import keras

        return getattr(keras.optimizers, name)(learning_rate, **kwargs)

    return make


# The notes' clipping rule, theta <- theta - eta g min(1, tau / ||g||), with tau = 1.
_rnn_optimizer = _adam(1e-2, global_clipnorm=1.0)


def _gan_optimizers() -> dict[str, Any]:
    # Radford et al. 2016: Adam with beta_1 = 0.5 keeps the adversarial game stable.
    adam = _adam(1e-3, beta_1=0.5)
    return {"discriminator": adam(), "generator": adam()}


def _per_phase(make: Callable[[], Any]) -> Callable[[], dict[str, Any]]:
    """One optimizer from `make` for each of the two phases of a GAN."""
    return lambda: {"discriminator": make(), "generator": make()}


def _rmsprop(learning_rate: float) -> Callable[[], Any]:
    def make() -> keras.optimizers.Optimizer:
        import keras

        return keras.optimizers.RMSprop(learning_rate)

    return make


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in [
        Recipe(
            name="perceptron",
            chapter="1.1",
            summary="Rosenblatt's perceptron, trained by the perceptron learning rule",
            kind="classifier",
            build=_perceptron,
            optimizer=lambda: None,  # rule phase only: compile() takes no optimizer
            dataset="separable",
            epochs=2,
            batch_size=1,  # the online rule
        ),
        Recipe(
            name="mlp",
            chapter="1.1",
            summary="Multilayer perceptron classifier",
            kind="classifier",
            build=_mlp,
            optimizer=_adam(1e-3),
            dataset="digits",
            epochs=30,
            batch_size=64,
        ),
        Recipe(
            name="gradient_descent_mlp",
            chapter="1.3",
            summary="MLP trained by gradient descent with hand-written backpropagation",
            kind="classifier",
            build=_gradient_descent_mlp,
            optimizer=lambda: None,  # rule phase only: compile() takes no optimizer
            dataset="digits",
            epochs=30,
            batch_size=64,
        ),
        Recipe(
            name="cnn",
            chapter="2",
            summary="Convolutional classifier: conv, ReLU and max-pooling blocks, dense head",
            kind="classifier",
            build=_cnn,
            optimizer=_adam(2e-3),
            dataset="digits",
            epochs=15,
            batch_size=128,
        ),
        Recipe(
            name="unet",
            chapter="3",
            summary="U-Net segmentation (transposed, nearest, bed-of-nails or max-unpooling)",
            kind="segmentation",
            build=_unet,
            optimizer=_adam(3e-3),
            dataset="shapes",
            epochs=10,
            batch_size=32,
        ),
        Recipe(
            name="rnn_tagger",
            chapter="4",
            summary="Recurrent per-step tagger (many-to-many, LSTM or Elman cell)",
            kind="sequence",
            build=_sequence_model("SequenceTagger", cell="lstm", units=32),
            optimizer=_rnn_optimizer,
            dataset="tagging",
            epochs=5,
            batch_size=64,
        ),
        Recipe(
            name="rnn_classifier",
            chapter="4",
            summary="Recurrent sequence classifier (many-to-one, last hidden state)",
            kind="sequence",
            build=_sequence_model("SequenceClassifier", cell="lstm", units=32),
            optimizer=_rnn_optimizer,
            dataset="majority",
            epochs=8,
            batch_size=64,
        ),
        Recipe(
            name="rnn_generator",
            chapter="4",
            summary="Recurrent sequence generator (one-to-many, teacher forcing, greedy decoding)",
            kind="sequence",
            build=_sequence_model("SequenceGenerator", cell="lstm", units=32),
            optimizer=_rnn_optimizer,
            dataset="counting",
            epochs=3,
            batch_size=64,
        ),
        Recipe(
            name="seq2seq",
            chapter="4",
            summary="Encoder-decoder RNN (many-to-many of different lengths, greedy decoding)",
            kind="sequence",
            build=_sequence_model("Seq2Seq", cell="lstm", units=64),
            optimizer=_rnn_optimizer,
            dataset="reverse",
            epochs=15,
            batch_size=64,
        ),
        Recipe(
            name="linear_ae",
            chapter="5.1",
            summary="Linear autoencoder (gradient descent finds the PCA subspace)",
            kind="generative",
            build=_linear_ae,
            optimizer=_adam(1e-2),
            dataset="digits",
            epochs=50,
            batch_size=128,
        ),
        Recipe(
            name="autoencoder",
            chapter="5.2",
            summary="Autoencoder, undercomplete (16 latents)",
            kind="generative",
            build=_autoencoder("none", 16),
            optimizer=_adam(1e-3),
            dataset="digits",
            epochs=60,
            batch_size=64,
        ),
        Recipe(
            name="denoising_ae",
            chapter="5.2",
            summary="Denoising autoencoder (Gaussian noise in, clean out; overcomplete)",
            kind="generative",
            build=_autoencoder("noise", 128),
            optimizer=_adam(1e-3),
            dataset="digits",
            epochs=60,
            batch_size=64,
        ),
        Recipe(
            name="inpainting_ae",
            chapter="5.2",
            summary="Inpainting autoencoder (masked patch in, clean out; overcomplete)",
            kind="generative",
            build=_autoencoder("mask", 128),
            optimizer=_adam(1e-3),
            dataset="digits",
            epochs=60,
            batch_size=64,
        ),
        Recipe(
            name="vae",
            chapter="5.3",
            summary="Variational autoencoder (Bernoulli or Gaussian decoder)",
            kind="generative",
            build=_vae,
            optimizer=_adam(1e-3),
            dataset="digits_binarized",
            epochs=100,
            batch_size=64,
            paper=Recipe(
                name="vae",
                chapter="5.3",
                summary="VAE on binarized MNIST, Burda et al. 2016 (2 x 200 hidden, 50 latents)",
                kind="generative",
                build=_vae_paper,
                optimizer=_adam(1e-3, epsilon=1e-4),
                dataset="binarized_mnist",
                epochs=3280,
                batch_size=20,
                variant="paper",
            ),
        ),
        Recipe(
            name="beta_vae",
            chapter="5.4",
            summary="beta-VAE: the VAE with the KL term weighted by beta (4 by default)",
            kind="generative",
            build=_beta_vae,
            optimizer=_adam(1e-3),
            dataset="digits_binarized",
            epochs=100,
            batch_size=64,
        ),
        Recipe(
            name="fvsbn",
            chapter="6.1",
            summary="Fully visible sigmoid belief network (one logistic regression per pixel)",
            kind="generative",
            build=_binary_density("FVSBN"),
            optimizer=_adam(1e-2),
            dataset="digits_binarized",
            epochs=60,
            batch_size=64,
            paper=Recipe(
                name="fvsbn",
                chapter="6.1",
                summary="FVSBN on binarized MNIST (Larochelle & Murray 2011: 97.45 nats)",
                kind="generative",
                build=_binary_density("FVSBN"),
                optimizer=_adam(1e-3),
                dataset="binarized_mnist",
                epochs=100,
                batch_size=100,
                variant="paper",
            ),
        ),
        Recipe(
            name="nade",
            chapter="6.2",
            summary="Neural autoregressive density estimator (shared hidden layer, O(nd))",
            kind="generative",
            build=_binary_density("NADE", hidden_units=500),
            optimizer=_adam(1e-3),
            dataset="digits_binarized",
            epochs=20,
            batch_size=64,
            paper=Recipe(
                name="nade",
                chapter="6.2",
                summary="NADE on binarized MNIST (Larochelle & Murray 2011: 88.86 nats)",
                kind="generative",
                build=_binary_density("NADE", hidden_units=500),
                optimizer=_optimizer("SGD", 5e-3),
                dataset="binarized_mnist",
                epochs=100,
                batch_size=100,
                variant="paper",
            ),
        ),
        Recipe(
            name="made",
            chapter="6.3",
            summary="Masked autoencoder for distribution estimation (mask ensembles)",
            kind="generative",
            build=_binary_density("MADE", hidden_units=(500,)),
            optimizer=_adam(1e-3),
            dataset="digits_binarized",
            epochs=60,
            batch_size=64,
            paper=Recipe(
                name="made",
                chapter="6.3",
                summary="MADE on binarized MNIST, 32 masks (Germain et al. 2015: 88.04 nats)",
                kind="generative",
                build=_binary_density("MADE", hidden_units=(500,), num_masks=32, ordering="random"),
                optimizer=_optimizer("Adagrad", 1e-2, epsilon=1e-6),
                dataset="binarized_mnist",
                epochs=200,
                batch_size=100,
                variant="paper",
            ),
        ),
        Recipe(
            name="pixelrnn",
            chapter="6.4",
            summary="PixelRNN: type-A masked conv, Row LSTM layers over the rows, 1x1 head",
            kind="generative",
            build=_binary_density(
                "PixelRNN", images=True, hidden_units=32, num_layers=2, first_kernel_size=5
            ),
            optimizer=_adam(3e-3),
            dataset="digits_binarized",
            epochs=25,
            batch_size=32,
            paper=Recipe(
                name="pixelrnn",
                chapter="6.4",
                summary="PixelRNN, 7 Row LSTM layers, binarized MNIST (paper: 80.54 nats)",
                kind="generative",
                build=_binary_density(
                    "PixelRNN", images=True, hidden_units=16, num_layers=7, first_kernel_size=7
                ),
                optimizer=_adam(1e-3),
                dataset="binarized_mnist",
                epochs=100,
                batch_size=64,
                variant="paper",
            ),
        ),
        Recipe(
            name="pixelcnn",
            chapter="6.4",
            summary="PixelCNN: masked convolutions (type A, then B), Bernoulli pixels",
            kind="generative",
            build=_binary_density("PixelCNN", images=True, filters=32, num_layers=4),
            optimizer=_adam(3e-3),
            dataset="digits_binarized",
            epochs=30,
            batch_size=64,
            paper=Recipe(
                name="pixelcnn",
                chapter="6.4",
                summary="PixelCNN on binarized MNIST (van den Oord et al. 2016a: 81.30 nats)",
                kind="generative",
                build=_binary_density("PixelCNN", images=True, filters=64, num_layers=15),
                optimizer=_adam(1e-3),
                dataset="binarized_mnist",
                epochs=100,
                batch_size=16,
                variant="paper",
            ),
        ),
        Recipe(
            name="gated_pixelcnn",
            chapter="6.4",
            summary="Gated PixelCNN: vertical and horizontal stacks, no blind spot",
            kind="generative",
            build=_binary_density("GatedPixelCNN", images=True, filters=32, num_layers=5),
            optimizer=_adam(3e-3),
            dataset="digits_binarized",
            epochs=20,
            batch_size=64,
            paper=Recipe(
                name="gated_pixelcnn",
                chapter="6.4",
                summary="Gated PixelCNN, 15 layers of 64 filters, on binarized MNIST",
                kind="generative",
                build=_binary_density("GatedPixelCNN", images=True, filters=64, num_layers=15),
                optimizer=_adam(1e-3),
                dataset="binarized_mnist",
                epochs=100,
                batch_size=16,
                variant="paper",
            ),
        ),
        Recipe(
            name="wavenet",
            chapter="6.5",
            summary="WaveNet: dilated causal convolutions over 8-bit mu-law audio, fast generation",
            kind="generative",
            build=_wavenet,
            optimizer=_adam(3e-3),
            dataset="tones",
            epochs=10,
            batch_size=8,
        ),
        Recipe(
            name="vrnn",
            chapter="6.6",
            summary="Variational RNN: a latent with a learned prior at every step (pen strokes)",
            kind="generative",
            build=_vrnn(conditional=False),
            optimizer=_adam(3e-3, clipnorm=10.0),
            dataset="digit_strokes",
            epochs=40,
            batch_size=64,
        ),
        Recipe(
            name="cvrnn",
            chapter="6.6",
            summary="Conditional VRNN: draws the digit it is asked for (pen strokes)",
            kind="conditional",
            build=_vrnn(conditional=True),
            optimizer=_adam(3e-3, clipnorm=10.0),
            dataset="digit_strokes",
            epochs=40,
            batch_size=64,
        ),
        Recipe(
            name="transformer",
            chapter="6.7",
            summary="Decoder-only Transformer over pixels or tokens, KV-cached decoding",
            kind="generative",
            build=_transformer,
            optimizer=_adam(2e-3),
            dataset="digits_binarized",
            epochs=30,
            batch_size=64,
        ),
        Recipe(
            name="transformer_addition",
            chapter="6.7",
            summary='Decoder-only Transformer that learns "a+b=c" (held-out pairs)',
            kind="generative",
            build=_transformer,
            optimizer=_adam_cosine(3e-3, decay_steps=15 * 141),  # 15 epochs of 9,000 / 64
            dataset="addition",
            epochs=15,
            batch_size=64,
        ),
        Recipe(
            name="flow2d",
            chapter="7.5",
            summary="RealNVP-style flow of 2-D points: affine couplings, alternating masks",
            kind="generative",
            build=_flow2d,
            optimizer=_adam(3e-3),
            dataset="moons",
            epochs=100,
            batch_size=256,
        ),
        Recipe(
            name="nice",
            chapter="7.5",
            summary="NICE: additive couplings and a diagonal scaling, dequantised logit images",
            kind="generative",
            build=_nice,
            optimizer=_adam(1e-3),
            dataset="digits",
            epochs=50,
            batch_size=64,
        ),
        Recipe(
            name="realnvp",
            chapter="7.5",
            summary="RealNVP: affine couplings, checkerboard and channel masks, multi-scale",
            kind="generative",
            build=_image_flow("RealNVP", num_scales=2, hidden_units=(64, 64)),
            optimizer=_adam(1e-3),
            dataset="digits",
            epochs=50,
            batch_size=64,
            paper=Recipe(
                name="realnvp",
                chapter="7.5",
                summary="RealNVP on MNIST, 3 scales, 8 convolutions of 64 (published: 1.06)",
                kind="generative",
                build=_image_flow("RealNVP", num_scales=3, hidden_units=(64,) * 8),
                optimizer=_adam(1e-3),
                dataset="tfds:mnist",
                epochs=100,
                batch_size=64,
                variant="paper",
            ),
        ),
        Recipe(
            name="glow",
            chapter="7.5",
            summary="Glow: ActNorm, invertible 1x1 convolutions, affine couplings, split priors",
            kind="generative",
            build=_image_flow("Glow", num_scales=2, steps_per_scale=4, hidden_units=(64, 64)),
            optimizer=_adam(1e-3),
            dataset="digits",
            epochs=50,
            batch_size=64,
            paper=Recipe(
                name="glow",
                chapter="7.5",
                summary="Glow on MNIST, K=32 steps, 512 channels (published: 1.05 bits/dim)",
                kind="generative",
                # 28 x 28 allows two squeezes: L = 2 levels, not the paper's 3 on 32 x 32.
                build=_image_flow(
                    "Glow", num_scales=2, steps_per_scale=32, hidden_units=(512, 512)
                ),
                optimizer=_adam(1e-3),
                dataset="tfds:mnist",
                epochs=100,
                batch_size=64,
                variant="paper",
            ),
        ),
        Recipe(
            name="gan",
            chapter="8",
            summary="Generative adversarial network (minimax, k discriminator steps)",
            kind="generative",
            build=_gan,
            optimizer=_gan_optimizers,
            dataset="ring",
            epochs=30,
            batch_size=128,
        ),
        Recipe(
            name="unrolled_gan",
            chapter="8.2",
            summary="Unrolled GAN: G's loss looks k discriminator steps ahead (Metz et al.)",
            kind="generative",
            build=_adversarial("UnrolledGAN", latent_dim=8),
            optimizer=_gan_optimizers,
            dataset="ring",
            epochs=188,  # about 6,000 generator steps, as in docs/chapter8.md
            batch_size=128,
        ),
        Recipe(
            name="wgan",
            chapter="8.2",
            summary="Wasserstein GAN, weight clipping c = 0.01, 5 critic steps, RMSprop",
            kind="generative",
            build=_adversarial("WGAN"),
            optimizer=_per_phase(_rmsprop(5e-4)),
            dataset="ring",
            epochs=100,
            batch_size=128,
        ),
        Recipe(
            name="wgan_gp",
            chapter="8.2",
            summary="WGAN with gradient penalty (lambda 10, 5 critic steps, Adam(1e-4, 0, 0.9))",
            kind="generative",
            build=_adversarial("WGANGP"),
            optimizer=_per_phase(_adam(1e-3, beta_1=0.0, beta_2=0.9)),
            dataset="ring",
            epochs=100,
            batch_size=128,
        ),
        Recipe(
            name="dcgan",
            chapter="8.2",
            summary="Convolutional GAN (DCGAN-style networks) on images",
            kind="generative",
            build=_adversarial("GAN", network="dcgan", filters=32, latent_dim=32),
            optimizer=_per_phase(_adam(2e-4, beta_1=0.5)),
            dataset="digits",
            epochs=100,
            batch_size=64,
            paper=Recipe(
                name="dcgan",
                chapter="8.2",
                summary="DCGAN on MNIST with Radford et al.'s optimizer",
                kind="generative",
                build=_adversarial("DCGAN"),
                optimizer=_per_phase(_adam(2e-4, beta_1=0.5)),
                dataset="tfds:mnist",
                epochs=25,
                batch_size=128,
                variant="paper",
            ),
        ),
        Recipe(
            name="clip",
            chapter="9.4",
            summary="CLIP: image and text encoders trained contrastively on generated "
            "captions (zero-shot classification, retrieval)",
            kind="contrastive",
            build=_clip,
            optimizer=_adam(2e-3),
            dataset="captions",
            epochs=10,
            batch_size=64,
        ),
        Recipe(
            name="ddpm",
            chapter="9.3",
            summary="Denoising diffusion (Algorithms 2 and 3; DDIM): U-Net or MLP noise "
            "predictor, cosine schedule; --condition class for classifier-free guidance",
            kind="generative",
            build=_ddpm(conditional=False),
            # The recipe's optimizer replaces DDPM.default_optimizer(): it carries the EMA.
            optimizer=_adam(1e-3, use_ema=True, ema_momentum=0.995),
            dataset="digits",
            epochs=40,
            batch_size=64,
            conditional=Recipe(
                name="ddpm",
                chapter="9.4",
                summary="Class-conditional DDPM (condition dropout 0.1) for classifier-free "
                "guidance: sample --label K --guidance RHO",
                kind="conditional",
                build=_ddpm(conditional=True),
                optimizer=_adam(1e-3, use_ema=True, ema_momentum=0.995),
                dataset="digits",
                epochs=40,
                batch_size=64,
            ),
            paper=Recipe(
                name="ddpm",
                chapter="9.3",
                summary="Ho et al. 2020's CIFAR-10 set-up (T = 1000, linear schedule, sigma^2 = "
                "beta, Adam 2e-4, EMA 0.9999, batch 128; widths 128-256-256-256, no attention)",
                kind="generative",
                build=_ddpm(
                    conditional=False,
                    filters=(128, 256, 256, 256),
                    schedule="linear",
                    variance="beta",
                    ema_momentum=0.9999,
                    learning_rate=2e-4,
                ),
                optimizer=_adam(2e-4, use_ema=True, ema_momentum=0.9999),
                dataset="tfds:cifar10",
                epochs=2000,
                batch_size=128,
                variant="paper",
            ),
        ),
        Recipe(
            name="text_diffusion",
            chapter="9.4",
            summary="DDPM conditioned on a frozen CLIP's caption embedding (CLIP trained "
            "first), classifier-free guidance: sample --prompt TEXT --guidance RHO",
            kind="conditional",
            build=_text_diffusion,
            optimizer=_adam(1e-3, use_ema=True, ema_momentum=0.995),
            dataset="captions_16",
            epochs=30,
            batch_size=64,
        ),
        Recipe(
            name="latent_diffusion",
            chapter="9.5",
            summary="Latent diffusion: an MLP DDPM on the standardised latents of a frozen "
            "VAE (trained first)",
            kind="generative",
            build=_latent_diffusion,
            optimizer=_adam(1e-3, use_ema=True, ema_momentum=0.995),
            dataset="digits",
            epochs=60,
            batch_size=64,
        ),
    ]
}


def get_recipe(name: str, variant: str = "default", condition: str = "none") -> Recipe:
    """The recipe registered under `name`: its default one, or its `"paper"` variant;
    `condition="class"` gives that recipe's class-conditional variant.

    Example:
    >>> get_recipe("vae").dataset
    'digits_binarized'
    """
    key = name.lower()
    if key not in RECIPES:
        raise ValueError(f"Unknown model {name!r}; available: {', '.join(sorted(RECIPES))}.")
    if variant not in VARIANTS:
        raise ValueError(f"Unknown recipe {variant!r}; choose one of {VARIANTS}.")
    if condition not in CONDITIONS:
        raise ValueError(f"Unknown condition {condition!r}; choose one of {CONDITIONS}.")
    recipe = RECIPES[key]
    if variant == "paper":
        if recipe.paper is None:
            with_paper = sorted(name for name, r in RECIPES.items() if r.paper is not None)
            raise ValueError(
                f"{key} has no paper recipe; the models with one are {', '.join(with_paper)}."
            )
        recipe = recipe.paper
    if condition == "class":
        if recipe.conditional is None:
            with_class = sorted(
                name
                for name, r in RECIPES.items()
                if (r.paper if variant == "paper" else r) is not None
                and (r.paper if variant == "paper" else r).conditional is not None
            )
            raise ValueError(
                f"{key} ({variant} recipe) has no class-conditional variant; the models with "
                f"one are {', '.join(with_class) or 'none'}."
            )
        recipe = recipe.conditional
    return recipe
