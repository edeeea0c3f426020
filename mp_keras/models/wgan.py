"""Wasserstein GANs: weight clipping (WGAN) and the gradient penalty (WGAN-GP); notes, 8."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from mp_keras.engine import gradients
from mp_keras.models.gan import GAN


@keras.saving.register_keras_serializable(package="mp_keras")
class WeightClip(keras.constraints.Constraint):
    """Clips every weight into [-clip_value, clip_value] (WGAN's Lipschitz constraint).

    Keras optimizers apply a variable's constraint after each of its updates (also
    inside JAX's `stateless_apply`), so a critic built with it stays clipped after
    every critic step.

    Args:
        clip_value: float. The bound c > 0. Defaults to `0.01`.

    Example:
    >>> import numpy as np
    >>> clipped = WeightClip(0.5)(np.array([-2.0, 0.1, 3.0], "float32"))
    >>> keras.ops.convert_to_numpy(clipped).tolist()
    [-0.5, 0.10000000149011612, 0.5]
    """

    def __init__(self, clip_value: float = 0.01) -> None:
        if not clip_value > 0:
            raise ValueError(f"WeightClip: clip_value must be > 0, got {clip_value!r}.")
        self.clip_value = float(clip_value)

    def __call__(self, w: Any) -> Any:
        return ops.clip(w, -self.clip_value, self.clip_value)

    def get_config(self) -> dict[str, Any]:
        return {"clip_value": self.clip_value}


def _wasserstein_estimate(model: GAN, x: Any, fake: Any, training: bool) -> Any:
    """mean D(x) - mean D(fake): the critic's estimate of the Wasserstein-1 distance."""
    real = model.discriminator(x, training=training)
    generated = model.discriminator(fake, training=training)
    return ops.mean(real) - ops.mean(generated)


@keras.saving.register_keras_serializable(package="mp_keras")
class WGAN(GAN):
    """Wasserstein GAN with weight clipping (Arjovsky et al. 2017).

    Arjovsky, Chintala and Bottou, "Wasserstein Generative Adversarial Networks", ICML
    2017. The discriminator is a critic f with unbounded output; by the
    Kantorovich-Rubinstein duality, W(p_data, p_G) = sup over 1-Lipschitz f of
    E_x f(x) - E_z f(G(z)). The critic minimises mean f(G(z)) - mean f(x) over
    `discriminator_steps` (n_critic) updates, after each of which every weight is
    clipped into [-c, c] (a `WeightClip` constraint on every kernel and bias: a crude
    way to keep f K-Lipschitz); the generator minimises -mean f(G(z)). `wasserstein`,
    mean f(x) - mean f(G(z)), is logged: the critic's (scaled) estimate of the distance,
    which decreases as the samples improve. The paper's optimizer, RMSprop(5e-5), is the
    default. `generator_loss` is ignored (kept for the config).

    Args:
        clip_value: float. The clipping bound c > 0. Defaults to `0.01`.
        discriminator_steps: int. Critic updates per generator update. Defaults to `5`.
        **kwargs: the `GAN` arguments (`data_shape`, `latent_dim`, `network`, ...).

    Example:
    >>> import numpy as np
    >>> gan = WGAN(data_shape=(2,), latent_dim=2, generator_units=(8,),
    ...            discriminator_units=(8,), discriminator_steps=2, seed=0)
    >>> gan.compile()
    >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    >>> sorted(gan.fit(x, epochs=1, batch_size=16, verbose=0).history)
    ['d_loss', 'g_loss', 'loss', 'wasserstein']
    """

    def __init__(self, clip_value: float = 0.01, discriminator_steps: int = 5, **kwargs: Any):
        if not isinstance(clip_value, (int, float)) or not clip_value > 0:
            raise ValueError(f"clip_value must be a number > 0, got {clip_value!r}.")
        self.clip_value = float(clip_value)  # read by critic_constraint() in GAN.__init__
        super().__init__(discriminator_steps=discriminator_steps, **kwargs)
        self.track("wasserstein")

    def critic_constraint(self) -> Any:
        return WeightClip(self.clip_value)

    def default_optimizer(self) -> Any:
        return keras.optimizers.RMSprop(5e-5)

    def critic_loss(self, x: Any, fake: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        estimate = _wasserstein_estimate(self, x, fake, training)
        return -estimate, {"d_loss": -estimate, "wasserstein": estimate}

    def adversarial_loss(self, fake_logits: Any) -> Any:
        return -ops.mean(fake_logits)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "clip_value": self.clip_value}


@keras.saving.register_keras_serializable(package="mp_keras")
class WGANGP(GAN):
    """Wasserstein GAN with a gradient penalty (Gulrajani et al. 2017).

    Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017. Instead of
    clipping, the critic's loss gets lambda E[(||grad_x f(x_hat)||_2 - 1)^2] at random
    interpolates x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per example: the optimal
    critic has gradient norm 1 along the lines between the two distributions. The
    penalty differentiates a gradient (double back-propagation, via
    `mp_keras.engine.gradients`), and the norm is sqrt(sum g^2 + 1e-12), so a zero
    gradient gives no NaN. The critic has no batch norm (see `_gan_networks`): the
    penalty is per example. Defaults are the paper's: lambda = 10, n_critic = 5 and
    Adam(1e-4, beta_1=0, beta_2=0.9) for each phase. Logs `wasserstein` and
    `gradient_penalty`. `generator_loss` is ignored (kept for the config).

    Args:
        penalty_weight: float. lambda >= 0. Defaults to `10.0`.
        discriminator_steps: int. Critic updates per generator update. Defaults to `5`.
        **kwargs: the `GAN` arguments (`data_shape`, `latent_dim`, `network`, ...).

    Example:
    >>> import numpy as np
    >>> gan = WGANGP(data_shape=(2,), latent_dim=2, generator_units=(8,),
    ...              discriminator_units=(8,), discriminator_steps=2, seed=0)
    >>> gan.compile()
    >>> x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    >>> sorted(gan.fit(x, epochs=1, batch_size=16, verbose=0).history)
    ['d_loss', 'g_loss', 'gradient_penalty', 'loss', 'wasserstein']
    """

    def __init__(
        self, penalty_weight: float = 10.0, discriminator_steps: int = 5, **kwargs: Any
    ) -> None:
        if not isinstance(penalty_weight, (int, float)) or not penalty_weight >= 0:
            raise ValueError(f"penalty_weight must be a number >= 0, got {penalty_weight!r}.")
        super().__init__(discriminator_steps=discriminator_steps, **kwargs)
        self.penalty_weight = float(penalty_weight)
        self.track("wasserstein", "gradient_penalty")

    def default_optimizer(self) -> Any:
        return keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9)

    def gradient_penalty(self, x: Any, fake: Any, training: bool = True) -> Any:
        """E[(||grad f(x_hat)||_2 - 1)^2] at x_hat = eps x + (1 - eps) fake (no lambda)."""
        x = ops.convert_to_tensor(x, "float32")
        fake = ops.convert_to_tensor(fake, "float32")
        shape = (ops.shape(x)[0],) + (1,) * (len(self.data_shape))
        eps = keras.random.uniform(shape, seed=self.seed_generator)
        x_hat = eps * x + (1.0 - eps) * fake
        # The examples do not interact, so the gradient of the sum is per example.
        (grad,) = gradients(lambda u: ops.sum(self.discriminator(u, training=training)), [x_hat])
        axes = tuple(range(1, len(self.data_shape) + 1))
        norm = ops.sqrt(ops.sum(ops.square(grad), axis=axes) + 1e-12)
        return ops.mean(ops.square(norm - 1.0))

    def critic_loss(self, x: Any, fake: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        estimate = _wasserstein_estimate(self, x, fake, training)
        penalty = self.gradient_penalty(x, fake, training)
        loss = -estimate + self.penalty_weight * penalty
        return loss, {"d_loss": loss, "wasserstein": estimate, "gradient_penalty": penalty}

    def adversarial_loss(self, fake_logits: Any) -> Any:
        return -ops.mean(fake_logits)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "penalty_weight": self.penalty_weight}
