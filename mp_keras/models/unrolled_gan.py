"""Unrolled GAN: the generator plays against k look-ahead steps of D (notes, chapter 8)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from mp_keras.engine import adam_state, adam_update, call_with, gradients, sgd_update
from mp_keras.models.gan import GAN, discriminator_loss

UNROLL_OPTIMIZERS = ("adam", "sgd")


@keras.saving.register_keras_serializable(package="mp_keras")
class UnrolledGAN(GAN):
    """GAN whose generator loss uses the discriminator unrolled k steps (Metz et al. 2017).

    Metz, Poole, Pfau and Sohl-Dickstein, "Unrolled Generative Adversarial Networks",
    ICLR 2017. The discriminator phase is the plain GAN's. In the generator phase, D's
    parameters theta_0 are copied and moved k differentiable steps theta_{i+1} =
    theta_i - eta * step(grad_theta d_loss(theta_i; x, G(z))) on the discriminator loss
    with the generator's current samples (not stopped), and G minimises its loss against
    D(.; theta_k). The gradient flows through the unrolling, so G sees how D would
    react to a move: collapsing onto one mode is punished by the discriminator's
    reaction, which reduces mode collapse and cycling. D itself is updated normally.
    `unrolling_steps=0` is exactly the plain GAN.

    Args:
        unrolling_steps: int >= 0. k. Defaults to `5`.
        unroll_optimizer: str. The look-ahead step, `"sgd"` or `"adam"` (from fresh
            moments). Defaults to `"sgd"`: Adam's first steps from zero moments move
            each parameter by about eta * sign(gradient), whose derivative is zero
            except where the gradient is within epsilon of 0, so the generator's
            gradient through them carries almost none of D's reaction (on the ring, 6,000
            steps: all 8 modes on 4 seeds of 5 with SGD 1e-3, on 1 with Adam 1e-4;
            docs/chapter8.md).
        unroll_learning_rate: float. eta of the look-ahead steps. Defaults to `1e-3`
            (on the ring, SGD 5e-3 overshoots and covers one or two modes).
        **kwargs: the `GAN` arguments (`data_shape`, `latent_dim`, `network`, ...).

    Example:
    >>> import numpy as np
    >>> gan = UnrolledGAN(data_shape=(2,), latent_dim=2, generator_units=(8,),
    ...                   discriminator_units=(8,), unrolling_steps=2, seed=0)
    >>> gan.compile()
    >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    >>> sorted(gan.fit(x, epochs=1, batch_size=16, verbose=0).history)
    ['d_loss', 'g_loss', 'loss']
    """

    def __init__(
        self,
        unrolling_steps: int = 5,
        unroll_optimizer: str = "sgd",
        unroll_learning_rate: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        if not isinstance(unrolling_steps, int) or unrolling_steps < 0:
            raise ValueError(f"unrolling_steps must be an int >= 0, got {unrolling_steps!r}.")
        if unroll_optimizer not in UNROLL_OPTIMIZERS:
            raise ValueError(
                f"unroll_optimizer must be one of {UNROLL_OPTIMIZERS}, got {unroll_optimizer!r}."
            )
        if not isinstance(unroll_learning_rate, (int, float)) or not unroll_learning_rate > 0:
            raise ValueError(
                f"unroll_learning_rate must be a number > 0, got {unroll_learning_rate!r}."
            )
        super().__init__(**kwargs)
        self.unrolling_steps = unrolling_steps
        self.unroll_optimizer = unroll_optimizer
        self.unroll_learning_rate = float(unroll_learning_rate)

    def unrolled_values(self, x: Any, fake: Any, training: bool = True) -> list[Any]:
        """D's trainable values after k differentiable steps on d_loss(x, fake)."""
        network = self.discriminator
        # The start is D's current value; the generator phase does not train D.
        values = [ops.stop_gradient(v.value) for v in network.trainable_variables]

        def d_loss(*params: Any) -> Any:
            real_logits = call_with(network, params, x, training=training)
            fake_logits = call_with(network, params, fake, training=training)
            return discriminator_loss(real_logits, fake_logits)

        state = adam_state(values)
        for _ in range(self.unrolling_steps):
            grads = gradients(d_loss, values)
            if self.unroll_optimizer == "adam":
                values, state = adam_update(
                    values, grads, state, learning_rate=self.unroll_learning_rate
                )
            else:
                values = sgd_update(values, grads, self.unroll_learning_rate)
        return values

    def generator_logits(self, x: Any, fake: Any, training: bool) -> Any:
        if self.unrolling_steps == 0:
            return super().generator_logits(x, fake, training)
        values = self.unrolled_values(x, fake, training)
        return call_with(self.discriminator, values, fake, training=training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "unrolling_steps": self.unrolling_steps,
                "unroll_optimizer": self.unroll_optimizer,
                "unroll_learning_rate": self.unroll_learning_rate,
            }
        )
        return config
