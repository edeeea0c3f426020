"""Text-conditioned diffusion: a DDPM guided by a frozen CLIP text encoder (notes, 9.4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.data import captions
from mp_keras.engine import Phase
from mp_keras.models._checks import check_labels, check_shape, check_values
from mp_keras.models._ddpm_inputs import _is_zero
from mp_keras.models.ddpm import DDPM
from mp_keras.models.latent_diffusion import freeze, nested_config


def _is_integer(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return "int" in str(np.asarray(x).dtype if dtype is None else dtype)


@keras.saving.register_keras_serializable(package="mp_keras")
class TextDiffusion(DDPM):
    """DDPM conditioned on captions through the text embedding of a frozen CLIP.

    Notes, sections 9.4-9.5; the text conditioning of GLIDE (Nichol et al. 2022) and
    DALL-E 2 / Stable Diffusion (Ramesh et al. 2022, Rombach et al. 2022) in its smallest
    form: a caption's token ids (`mp_keras.data.captions.tokenize`) are embedded by
    `clip.encode_text`, an L2-normalised `(batch, embed_dim)` vector, which the
    noise-prediction network takes as its condition (added to its step embedding).
    CLIP is pretrained (a `CLIP` fitted on the `captions` dataset) and frozen: it is set
    `trainable=False`, outside the training phase, and serialised as a nested Keras
    object so a `.keras` file restores it with its weights.

    Trains with `fit(images, tokens)` (the `captions` dataset's x and y). With
    probability `condition_dropout` a caption's embedding is replaced by the null
    condition, a zero vector (never a CLIP embedding, which has norm 1), so the one
    network learns eps(x, c; t) and eps(x; t), and classifier-free guidance (Ho &
    Salimans 2022) samples with eps* = (1 + rho) eps(x, c; t) - rho eps(x; t):
    `sample(num, seed, prompt="a large red circle", guidance=rho)`.

    Conditions accepted wherever the DDPM takes labels (`predict_noise`, `denoise_step`,
    `variational_bound`, `sample(condition=...)`): caption strings (one, or one per
    example), int token ids `(batch, max_length)`, or float text embeddings `(batch,
    embed_dim)` (what the `denoise_step` export endpoint takes; `encode_text`, CLIP's,
    is exported next to it so an app embeds its prompt once). No condition is the null
    condition.

    Args:
        clip: a trained `CLIP` (any model with `encode_text(tokens)`, `embed_dim`,
            `max_length`, `vocab_size`, `pad_id`).
        input_shape: tuple of ints or None. Shape of one image; None: the CLIP's
            `image_shape`. Defaults to `None`.
        network: str. `"unet"`, `"mlp"` or `"auto"`. Defaults to `"auto"`.
        hidden_units: tuple of ints. MLP widths. Defaults to `(128, 128, 128)`.
        filters: tuple of ints. U-Net widths. Defaults to `(32, 64)`.
        time_dim: int or None. Step embedding size. Defaults to `None`.
        groups: int. U-Net GroupNormalization groups. Defaults to `8`.
        schedule: str. `"cosine"` or `"linear"`. Defaults to `"cosine"`.
        timesteps: int. T. Defaults to `1000`.
        variance: str. `"beta"` or `"posterior"`. Defaults to `"beta"`.
        condition_dropout: float. Probability of the null condition in training.
            Defaults to `0.1`.
        data_range: pair of floats or None. Defaults to `(0.0, 1.0)`.
        num_levels: int or None. Defaults to `256`.
        ema_momentum: float or None. Defaults to `0.999`.
        learning_rate: float. Defaults to `1e-3`.
        seed: int or None. Defaults to `None`.

    Example:
    >>> from mp_keras.data import captions
    >>> from mp_keras.models.clip import CLIP
    >>> x, tokens, _ = captions.generate_captions(16, seed=0, image_size=16)
    >>> clip = CLIP((16, 16, 3), len(captions.VOCABULARY), captions.MAX_LENGTH, embed_dim=8,
    ...             filters=(4,), image_units=8, text_dim=8, num_layers=0, seed=0)
    >>> pixels = x.reshape(16, 2, 8, 2, 8, 3).mean(axis=(2, 4)).reshape(16, 12)  # 2x2 RGB
    >>> model = TextDiffusion(clip, input_shape=(12,), hidden_units=(16,), time_dim=8,
    ...                       timesteps=5, num_levels=None, ema_momentum=None, seed=0)
    >>> model.compile()
    >>> sorted(model.fit(pixels, tokens, batch_size=8, verbose=0).history)
    ['loss']
    >>> tuple(model.sample(2, seed=1, prompt="a red circle", guidance=1.0).shape)
    (2, 12)
    """

    def __init__(
        self,
        clip: Any,
        input_shape: Sequence[int] | None = None,
        network: str = "auto",
        hidden_units: Sequence[int] = (128, 128, 128),
        filters: Sequence[int] = (32, 64),
        time_dim: int | None = None,
        groups: int = 8,
        schedule: str = "cosine",
        timesteps: int = 1000,
        variance: str = "beta",
        condition_dropout: float = 0.1,
        data_range: Sequence[float] | None = (0.0, 1.0),
        num_levels: int | None = 256,
        ema_momentum: float | None = 0.999,
        learning_rate: float = 1e-3,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        for name in ("encode_text", "embed_dim", "max_length", "vocab_size", "pad_id"):
            if not hasattr(clip, name):
                raise ValueError(
                    f"{owner} expects a CLIP model (encode_text, embed_dim, max_length, "
                    f"vocab_size, pad_id); got {type(clip).__name__} without {name!r}."
                )
        if input_shape is None:
            input_shape = clip.image_shape
        super().__init__(
            input_shape=input_shape,
            network=network,
            hidden_units=hidden_units,
            filters=filters,
            time_dim=time_dim,
            groups=groups,
            schedule=schedule,
            timesteps=timesteps,
            variance=variance,
            condition_dropout=condition_dropout,
            condition_dim=int(clip.embed_dim),
            data_range=data_range,
            num_levels=num_levels,
            ema_momentum=ema_momentum,
            learning_rate=learning_rate,
            seed=seed,
            **kwargs,
        )

        # === The frozen text encoder ===
        freeze(clip)
        self.clip = clip

    def figure_prompts(self) -> list[str]:
        """The captions `mp-keras train` draws for its figure: each shape in each colour,
        large (a small shape is a few pixels across, too few to show its outline)."""
        return [
            f"a large {colour} {shape}"
            for shape in ("circle", "square", "triangle")
            for colour in ("red", "green", "blue")
        ]

    @property
    def is_conditional(self) -> bool:
        """Always: the model is conditioned on text (or on the null condition)."""
        return True

    # === Conditions ===

    def embed_condition(self, condition: Any) -> Any:
        """Token ids `(batch, max_length)` -> CLIP's text embedding `(batch, embed_dim)`;
        float embeddings pass through."""
        if _is_integer(condition):
            return ops.stop_gradient(self.clip.encode_text(condition))
        return ops.convert_to_tensor(condition, dtype=self.compute_dtype)

    def null_condition(self, batch: Any) -> Any:
        """The null condition: zero vectors `(batch, embed_dim)`."""
        return ops.zeros((batch, self.condition_dim), dtype=self.compute_dtype)

    def encode_prompt(self, prompt: str | Sequence[str], num: int | None = None) -> np.ndarray:
        """Token ids of a caption (repeated `num` times) or of one caption per example.

        Raises `ValueError` on a word outside `mp_keras.data.captions.VOCABULARY`.
        """
        tokens = captions.tokenize(prompt, self.clip.max_length)
        if num is not None and isinstance(prompt, str):
            tokens = np.repeat(tokens, int(num), axis=0)
        return tokens

    def text_condition(self, condition: Any, batch: Any) -> Any:
        """Any accepted condition (strings, token ids, embeddings) as checked NumPy or
        tensors: int token ids `(batch, max_length)` or float embeddings `(batch,
        embed_dim)`."""
        owner = type(self).__name__
        if isinstance(condition, str) or (
            isinstance(condition, (list, tuple)) and condition and isinstance(condition[0], str)
        ):
            condition = self.encode_prompt(condition, int(batch))
        if isinstance(condition, (list, tuple, np.ndarray)):
            condition = np.asarray(condition)
            if _is_integer(condition):
                self._check_tokens(condition)
            else:
                check_shape(owner, condition, (self.condition_dim,), what="text embeddings")
                check_values(owner, condition)
                condition = condition.astype("float32")
            if len(condition) != int(batch):
                raise ValueError(
                    f"{owner} expects {int(batch)} conditions, one per example; got "
                    f"{len(condition)}."
                )
            return condition
        if _is_integer(condition):
            check_shape(owner, condition, (self.clip.max_length,), what="tokens")
        else:
            check_shape(owner, condition, (self.condition_dim,), what="text embeddings")
        return condition

    def _condition(self, labels: Any, batch: Any, guidance: Any) -> Any:
        if labels is None:
            if not _is_zero(guidance):
                raise ValueError(f"{type(self).__name__}: guidance needs a prompt (condition).")
            return self.null_condition(batch)
        return self.embed_condition(self.text_condition(labels, batch))

    def _sampling_labels(self, num: int, labels: Any, guidance: float) -> np.ndarray | None:
        if labels is None:
            if not _is_zero(guidance):
                raise ValueError(f"{type(self).__name__}: guidance needs a prompt.")
            return np.zeros((num, self.condition_dim), "float32")  # the null condition
        condition = self.text_condition(labels, num)
        return np.asarray(ops.convert_to_numpy(condition))

    def _training_condition(self, y: Any, batch: Any) -> Any:
        condition = self.embed_condition(ops.cast(y, "int32"))
        if self.condition_dropout > 0:  # classifier-free guidance: sometimes the null one
            drop = keras.random.uniform((batch,), seed=self.seed_generator) < self.condition_dropout
            condition = ops.where(drop[:, None], ops.zeros_like(condition), condition)
        return condition

    def sampling_variables(self) -> list[Any]:
        return list(self.network.weights) + list(self.clip.weights)

    # === The network ===

    def call(self, inputs: Any, training: bool = False) -> Any:
        """`[x_t, t]` or `[x_t, t, condition]` -> eps_hat (process space); images x alone
        are read as x_1 with the null condition."""
        if isinstance(inputs, (list, tuple)):
            x_t, t = inputs[0], inputs[1]
            if len(inputs) > 2 and inputs[2] is not None:
                condition = self.embed_condition(inputs[2])
            else:
                condition = self.null_condition(ops.shape(x_t)[0])
            return self.network_noise(x_t, t, condition, training=training)
        check_shape(type(self).__name__, inputs, self.data_shape)
        x = self.encode_data(inputs)
        first = ops.reshape(x, (-1, self.num_dims))[:, :1]  # (batch, 1), symbolic too
        t = ops.ones_like(first[:, 0], dtype="int32")
        condition = ops.zeros_like(first) + ops.zeros((self.condition_dim,), x.dtype)
        return self.network_noise(x, t, condition, training=training)

    def sample(
        self,
        num: int,
        seed: int | None = None,
        sampler: str = "ddpm",
        steps: int | None = None,
        prompt: str | Sequence[str] | None = None,
        guidance: float = 0.0,
        eta: float = 0.0,
        condition: Any = None,
        **kwargs: Any,
    ) -> Any:
        """`num` images for a caption: `prompt` is one string or `num` strings (words
        of `mp_keras.data.captions.VOCABULARY`; others raise ValueError), `guidance`
        the classifier-free guidance rho. `condition` (token ids or text embeddings)
        may stand for `prompt`; neither gives the unconditional model."""
        if prompt is not None and condition is not None:
            raise ValueError(f"{type(self).__name__}: pass prompt or condition, not both.")
        condition = prompt if prompt is not None else condition
        return super().sample(
            num, seed, sampler, steps, guidance=guidance, eta=eta, condition=condition, **kwargs
        )

    # === Training ===

    def phases(self) -> list[Phase]:
        return [Phase("ddpm", list(self.network.trainable_variables), self._loss)]

    # === Checks ===

    def _check_tokens(self, tokens: np.ndarray) -> None:
        owner = type(self).__name__
        clip = self.clip
        check_labels(owner, tokens, clip.vocab_size, (clip.max_length,), what="tokens")
        if np.any(np.all(np.asarray(tokens) == clip.pad_id, axis=-1)):
            raise ValueError(f"{owner} expects captions with at least one non-pad token.")

    def validate_targets(self, y: np.ndarray | None) -> None:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} trains on (images, tokens): pass the captions' token "
                "ids (mp_keras.data.captions.tokenize) as targets."
            )
        self._check_tokens(np.asarray(y))

    # === Export ===

    def export_endpoints(self) -> dict[str, Any]:
        specs = [
            keras.InputSpec(shape=(None, *self.process_shape), dtype="float32", name="x_t"),
            keras.InputSpec(shape=(None,), dtype="int32", name="t"),
            keras.InputSpec(shape=(None, *self.process_shape), dtype="float32", name="noise"),
            keras.InputSpec(shape=(None, self.condition_dim), dtype="float32", name="text"),
            keras.InputSpec(shape=(None,), dtype="float32", name="guidance"),
        ]

        def step(x_t: Any, t: Any, noise: Any, text: Any, guidance: Any) -> Any:
            return self.denoise_step(x_t, t, noise, text, guidance)

        token_spec = keras.InputSpec(
            shape=(None, self.clip.max_length), dtype="int32", name="tokens"
        )
        return {
            "denoise_step": (step, specs),
            "encode_text": (lambda tokens: self.clip.encode_text(tokens), [token_spec]),
        }

    def export_samples(self, name: str, num: int, seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        if name == "encode_text":
            tokens = rng.integers(0, self.clip.vocab_size, (num, self.clip.max_length))
            tokens[:, 0] = (self.clip.pad_id + 1) % self.clip.vocab_size
            return [tokens.astype("int32")]
        shape = (num, *self.process_shape)
        text = rng.standard_normal((num, self.condition_dim))
        text /= np.linalg.norm(text, axis=1, keepdims=True)
        return [
            rng.standard_normal(shape).astype("float32"),
            rng.integers(1, self.schedule.timesteps + 1, num).astype("int32"),
            rng.standard_normal(shape).astype("float32"),
            text.astype("float32"),
            rng.uniform(0.0, 3.0, num).astype("float32"),
        ]

    def export_metadata(self) -> dict[str, Any]:
        metadata = super().export_metadata()
        metadata.update(
            {
                "loop": "text = encode_text(tokens) (zeros: no prompt); x = N(0, I); for t "
                "in T..1: x = denoise_step(x, t, z ~ N(0, I), text, guidance); sample = "
                "lo + (x + 1) / 2 * (hi - lo) clipped to [lo, hi]",
                "text_dim": self.condition_dim,
                "max_length": self.clip.max_length,
                "vocabulary": list(captions.VOCABULARY),
            }
        )
        metadata.pop("num_classes", None)
        return metadata

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TextDiffusion:
        config = dict(config)
        config["clip"] = keras.saving.deserialize_keras_object(config["clip"])
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for name in ("num_classes", "condition_dim"):
            config.pop(name, None)
        config["clip"] = nested_config(self.clip)
        return config
