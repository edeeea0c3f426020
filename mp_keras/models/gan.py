"""Generative adversarial network (notes, chapter 8)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import Phase, PhasedModel
from mp_keras.models._checks import check_count, check_no_targets, check_shape, check_values
from mp_keras.models._gan_networks import build_discriminator, build_generator, check_network

GENERATOR_LOSSES = ("non_saturating", "saturating")


def discriminator_loss(real_logits: Any, fake_logits: Any) -> Any:
    """-V(D, G) on a batch: -mean log D(x) - mean log(1 - D(G(z))), from D's logits."""
    # -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l), stable for all l.
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


def generator_loss(fake_logits: Any, kind: str = "non_saturating") -> Any:
    """The generator's loss from D's logits on generated samples.

    `"saturating"`: mean log(1 - D(G(z))), the minimax objective itself;
    `"non_saturating"`: -mean log D(G(z)), Goodfellow et al.'s practical alternative.
    """
    if kind == "saturating":
        return -ops.mean(ops.softplus(fake_logits))
    if kind == "non_saturating":
        return ops.mean(ops.softplus(-fake_logits))
    raise ValueError(f"generator_loss must be one of {GENERATOR_LOSSES}, got {kind!r}.")


@keras.saving.register_keras_serializable(package="mp_keras")
class GAN(PhasedModel):
    """Generative adversarial network trained on the minimax game of Goodfellow et al.

    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014. The discriminator
    D gives the logit of "x is real"; the generator G maps noise z ~ N(0, I) to data.
    With D(x) = sigmoid(logit), the value of the game is

        V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].

    Each training step makes `discriminator_steps` (k) updates of D that minimise
    `d_loss = -V` (the binary cross-entropy of real vs. generated), then one update of
    G that minimises either `log(1 - D(G(z)))` (`"saturating"`: the minimax loss
    itself, whose gradient vanishes while D rejects samples confidently) or
    `-log D(G(z))` (`"non_saturating"`: same fixed points, strong early gradients).
    Each phase has its own optimizer: `compile(optimizer={"discriminator": ...,
    "generator": ...})`, or one optimizer that is cloned for both. The k updates use
    the same batch of real data and fresh noise.

    The variants (`WGAN`, `WGANGP`, `UnrolledGAN`) keep these phases and override
    `critic_loss`, `generator_logits`, `adversarial_loss` or `critic_constraint`.

    `call(z)` is the generator, so `predict(z)` and the exported `generate` endpoint
    map noise to samples.

    Args:
        data_shape: tuple of ints. Shape of one example. Defaults to `(2,)`.
        latent_dim: int. Size of the noise z. Defaults to `8`.
        generator_units: tuple of ints. Hidden widths of the generator MLP. Defaults
            to `(128, 128)`.
        discriminator_units: tuple of ints. Hidden widths of the discriminator MLP.
            Defaults to `(128, 128)`.
        generator_loss: str. `"non_saturating"` or `"saturating"`. Defaults to
            `"non_saturating"`.
        discriminator_steps: int. Discriminator updates per generator update (k).
            Defaults to `1`.
        output_activation: str. Activation of the generator's output, e.g. `"sigmoid"`
            for images in [0, 1]. Defaults to `"linear"`.
        seed: int or None. Seed of the model's random draws. Defaults to `None`.
        network: str. `"mlp"` (fully connected; `*_units`) or `"dcgan"` (the
            convolutional networks of Radford et al. 2016 for images `(H, W, C)` with H
            and W divisible by 4; `filters`). Defaults to `"mlp"`.
        filters: int. Filters F of the DCGAN networks (2F in the inner layer). Defaults
            to `32`.

    Example:
    >>> import numpy as np
    >>> gan = GAN(data_shape=(2,), latent_dim=2, generator_units=(16,),
    ...           discriminator_units=(16,), discriminator_steps=2, seed=0)
    >>> gan.compile(optimizer={"discriminator": "adam", "generator": "adam"})
    >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    >>> history = gan.fit(x, epochs=1, batch_size=32, verbose=0)
    >>> sorted(history.history)
    ['d_loss', 'g_loss', 'loss']
    >>> tuple(gan.sample(5, seed=1).shape)
    (5, 2)
    """

    def __init__(
        self,
        data_shape: Sequence[int] = (2,),
        latent_dim: int = 8,
        generator_units: Sequence[int] = (128, 128),
        discriminator_units: Sequence[int] = (128, 128),
        generator_loss: str = "non_saturating",
        discriminator_steps: int = 1,
        output_activation: str = "linear",
        seed: int | None = None,
        network: str = "mlp",
        filters: int = 32,
        **kwargs: Any,
    ) -> None:
        check_network(network, data_shape)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(f"filters must be an int >= 1, got {filters!r}.")
        if generator_loss not in GENERATOR_LOSSES:
            raise ValueError(
                f"generator_loss must be one of {GENERATOR_LOSSES}, got {generator_loss!r}."
            )
        if not isinstance(discriminator_steps, int) or discriminator_steps < 1:
            raise ValueError(
                f"discriminator_steps must be an int >= 1, got {discriminator_steps!r}."
            )
        super().__init__(**kwargs)

        # === Config ===
        self.data_shape = tuple(int(d) for d in data_shape)
        self.latent_dim = int(latent_dim)
        self.generator_units = tuple(int(u) for u in generator_units)
        self.discriminator_units = tuple(int(u) for u in discriminator_units)
        self.generator_loss = generator_loss
        self.discriminator_steps = discriminator_steps
        self.output_activation = output_activation
        self.seed = seed
        self.network = network
        self.filters = filters

        # === Layers ===
        self.generator = build_generator(
            network,
            self.latent_dim,
            self.data_shape,
            self.generator_units,
            self.filters,
            output_activation,
        )
        self.discriminator = build_discriminator(
            network,
            self.data_shape,
            self.discriminator_units,
            self.filters,
            constraint=self.critic_constraint(),
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.track("d_loss", "g_loss")
        self.built = True

    # === Sampling ===

    def call(self, inputs: Any, training: bool = False) -> Any:
        """The generator: noise `(batch, latent_dim)` to samples `(batch, *data_shape)`."""
        check_shape(type(self).__name__, inputs, (self.latent_dim,), what="noise")
        return self.generator(inputs, training=training)

    def sample(self, num: int, seed: int | None = None) -> Any:
        """`num` samples G(z), z ~ N(0, I)."""
        num = check_count(type(self).__name__, "num", num)
        return self(self._noise(num, seed))

    def discriminate(self, x: Any) -> Any:
        """D(x): the probability that each example is real."""
        check_shape(type(self).__name__, x, self.data_shape)
        return ops.sigmoid(ops.squeeze(self.discriminator(x), axis=-1))

    def _noise(self, num: Any, seed: Any = None) -> Any:
        seed = self.seed_generator if seed is None else seed
        return keras.random.normal((num, self.latent_dim), seed=seed)

    # === Training ===

    def phases(self) -> list[Phase]:
        return [
            Phase(
                "discriminator",
                self.discriminator.trainable_variables,
                self._discriminator_loss,
                repeat=self.discriminator_steps,
            ),
            Phase("generator", self.generator.trainable_variables, self._generator_loss),
        ]

    def _discriminator_loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        check_shape(type(self).__name__, x, self.data_shape)
        fake = ops.stop_gradient(self.generator(self._noise(ops.shape(x)[0]), training=training))
        return self.critic_loss(x, fake, training)

    def _generator_loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        fake = self.generator(self._noise(ops.shape(x)[0]), training=training)
        loss = self.adversarial_loss(self.generator_logits(x, fake, training))
        return loss, {"g_loss": loss}

    # === Losses (what the GAN variants override) ===

    def critic_constraint(self) -> Any:
        """The constraint on every kernel and bias of the discriminator (None here)."""
        return None

    def critic_loss(self, x: Any, fake: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        """The discriminator's loss and logs on real `x` and generated `fake` (no gradient
        into G): the binary cross-entropy -V(D, G)."""
        real_logits = self.discriminator(x, training=training)
        fake_logits = self.discriminator(fake, training=training)
        loss = discriminator_loss(real_logits, fake_logits)
        return loss, {"d_loss": loss}

    def generator_logits(self, x: Any, fake: Any, training: bool) -> Any:
        """The discriminator's logits on `fake` that the generator's loss sees."""
        return self.discriminator(fake, training=training)

    def adversarial_loss(self, fake_logits: Any) -> Any:
        """The generator's loss from the discriminator's logits on its samples."""
        return generator_loss(fake_logits, self.generator_loss)

    # === Checks and export ===

    def validate_data(self, x: np.ndarray) -> None:
        check_shape(type(self).__name__, x, self.data_shape)
        check_values(type(self).__name__, x)

    def validate_targets(self, y: np.ndarray | None) -> None:
        check_no_targets(type(self).__name__, y)

    def validate_inputs(self, x: np.ndarray) -> None:
        """`call` and `predict` take noise, not data."""
        check_shape(type(self).__name__, x, (self.latent_dim,), what="noise")
        check_values(type(self).__name__, x)

    def export_endpoints(self) -> dict[str, Any]:
        spec = keras.InputSpec(shape=(None, self.latent_dim), dtype="float32")
        return {"generate": (self.generator, [spec])}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "data_shape": list(self.data_shape),
                "latent_dim": self.latent_dim,
                "generator_units": list(self.generator_units),
                "discriminator_units": list(self.discriminator_units),
                "generator_loss": self.generator_loss,
                "discriminator_steps": self.discriminator_steps,
                "output_activation": self.output_activation,
                "seed": self.seed,
                "network": self.network,
                "filters": self.filters,
            }
        )
        return config
