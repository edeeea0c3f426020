"""CLIP: contrastive image-text pre-training (notes, chapter 9; Radford et al. 2021)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import Phase, PhasedModel
from mp_keras.models._checks import check_count, check_labels, check_shape, check_values
from mp_keras.models._clip_layers import NumpyInitializer, TextBlock

LOGIT_SCALE_INIT = 1 / 0.07  # the paper's initial temperature 0.07, learned as its log
MAX_LOGIT_SCALE = 100.0  # the paper clips the logit scale at 100


def contrastive_loss(image_emb: Any, text_emb: Any, logit_scale: Any) -> Any:
    """The symmetric InfoNCE loss of CLIP over a batch of matched pairs.

    Pair i is (image i, text i). With logits `L = logit_scale * image_emb @ text_emb^T`
    (cosine similarities when both are L2-normalised), the loss is the mean of the
    cross-entropy of picking text i among the batch's texts for image i (rows of L) and
    image i among the images for text i (columns of L): swapping the two embeddings
    transposes L and leaves the loss unchanged.

    Args:
        image_emb: `(batch, dim)` image embeddings.
        text_emb: `(batch, dim)` text embeddings of the same pairs, in the same order.
        logit_scale: scalar, the inverse temperature.

    Returns:
        The scalar loss in nats.

    Example:
    >>> import numpy as np
    >>> e = np.eye(3, dtype="float32")
    >>> round(float(contrastive_loss(e, e, 100.0)), 4)  # matched pairs, sharp softmax
    0.0
    >>> round(float(contrastive_loss(e, e, 0.0)), 4)  # uniform: log(batch)
    1.0986
    """
    image_emb = ops.convert_to_tensor(image_emb)
    text_emb = ops.convert_to_tensor(text_emb, dtype=image_emb.dtype)
    logits = ops.cast(logit_scale, image_emb.dtype) * ops.matmul(image_emb, ops.transpose(text_emb))
    image_to_text = -ops.mean(ops.diagonal(ops.log_softmax(logits, axis=1)))
    text_to_image = -ops.mean(ops.diagonal(ops.log_softmax(logits, axis=0)))
    return 0.5 * (image_to_text + text_to_image)


@keras.saving.register_keras_serializable(package="mp_keras")
class CLIP(PhasedModel):
    """CLIP: an image and a text encoder trained to agree on which caption fits an image.

    Radford et al., "Learning Transferable Visual Models From Natural Language
    Supervision", ICML 2021 (notes, chapter 9). The image encoder (a small CNN: strided
    3x3 convolutions, then dense layers, so positions survive) and the text encoder
    (token + learned position embeddings, `num_layers` bidirectional `TextBlock`s with
    pad tokens masked, a mean over the non-pad tokens; `num_layers=0` is a masked
    mean-pool MLP) each end in a linear projection to `embed_dim`, L2-normalised. The
    logit scale is learned as its log, initialised to log(1 / 0.07) and clipped at 100
    as in the paper; training minimises :func:`contrastive_loss` over each batch's
    similarity matrix (logged with `logit_scale` and `accuracy`, the fraction of images
    whose own caption scores highest in the batch).

    Trains with `model.fit(images, tokens)`: `tokens` are int token ids
    `(batch, max_length)` padded with `pad_id` (e.g. `mp_keras.data.captions.tokenize`).
    `call(images)` gives the image embeddings. `encode_text(tokens)` -> `(batch,
    embed_dim)` unit vectors is the stable conditioning interface for text-conditioned
    models. `zero_shot_classify(images, prompt_tokens)` picks the prompt of highest
    cosine similarity per image; `retrieval_recall` measures image -> text recall@k.

    Args:
        image_shape: tuple of ints. `(height, width, channels)` of the images.
        vocab_size: int. Number of token ids, the pad id included.
        max_length: int. Tokens per caption.
        embed_dim: int. Size of the joint embedding. Defaults to `32`.
        filters: tuple of ints. Channels of the image encoder's stride-2 convolutions.
            Defaults to `(16, 32)`.
        image_units: int. Hidden units of the image encoder's dense layer. Defaults to
            `64`.
        text_dim: int. Width of the text encoder. Defaults to `32`.
        num_heads: int. Attention heads of each text block (dividing `text_dim`).
            Defaults to `2`.
        num_layers: int. Text blocks; 0 gives a masked mean-pool MLP. Defaults to `1`.
        pad_id: int. Token id of padding. Defaults to `0`.
        logit_scale_init: float. Initial logit scale (not its log). Defaults to
            `1 / 0.07`.
        max_logit_scale: float. Upper clip of the logit scale. Defaults to `100`.
        seed: int or None. Seed of the initial weights. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> from mp_keras.data import captions
    >>> x, tokens, labels = captions.generate_captions(16, seed=0, image_size=16)
    >>> model = CLIP((16, 16, 3), len(captions.VOCABULARY), captions.MAX_LENGTH,
    ...              embed_dim=8, filters=(4,), image_units=8, text_dim=8, num_layers=0,
    ...              seed=0)
    >>> model.compile(optimizer="adam")
    >>> sorted(model.fit(x, tokens, batch_size=8, verbose=0).history)
    ['accuracy', 'logit_scale', 'loss']
    >>> tuple(model.encode_text(tokens).shape), tuple(model.similarity(x, tokens[:3]).shape)
    ((16, 8), (16, 3))
    >>> prompts = captions.tokenize(captions.caption_prompts("shape"))
    >>> model.zero_shot_classify(x[:4], prompts).shape
    (4,)
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (32, 32, 3),
        vocab_size: int = 17,
        max_length: int = 8,
        embed_dim: int = 32,
        filters: Sequence[int] = (16, 32),
        image_units: int = 64,
        text_dim: int = 32,
        num_heads: int = 2,
        num_layers: int = 1,
        pad_id: int = 0,
        logit_scale_init: float = LOGIT_SCALE_INIT,
        max_logit_scale: float = MAX_LOGIT_SCALE,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(
                f"{owner}: image_shape must be (height, width, channels), got {image_shape}."
            )
        for name, value in (
            ("vocab_size", vocab_size),
            ("max_length", max_length),
            ("embed_dim", embed_dim),
            ("image_units", image_units),
            ("text_dim", text_dim),
            ("num_heads", num_heads),
        ):
            check_count(owner, name, value)
        if int(num_layers) < 0:
            raise ValueError(f"{owner}: num_layers must be >= 0, got {num_layers!r}.")
        if int(text_dim) % int(num_heads):
            raise ValueError(f"{owner}: num_heads ({num_heads}) must divide text_dim ({text_dim}).")
        if not 0 <= int(pad_id) < int(vocab_size):
            raise ValueError(f"{owner}: pad_id must be in [0, {vocab_size}), got {pad_id!r}.")
        if not 0 < logit_scale_init <= max_logit_scale:
            raise ValueError(
                f"{owner}: need 0 < logit_scale_init <= max_logit_scale, got "
                f"{logit_scale_init!r} and {max_logit_scale!r}."
            )
        super().__init__(**kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.vocab_size = int(vocab_size)
        self.max_length = int(max_length)
        self.embed_dim = int(embed_dim)
        self.filters = tuple(check_count(owner, "filters", f) for f in filters)
        self.image_units = int(image_units)
        self.text_dim = int(text_dim)
        self.num_heads = int(num_heads)
        self.num_layers = int(num_layers)
        self.pad_id = int(pad_id)
        self.logit_scale_init = float(logit_scale_init)
        self.max_logit_scale = float(max_logit_scale)
        self.seed = seed

        # === Layers ===
        counter = iter(range(1000))

        def init(kind: str = "glorot") -> NumpyInitializer:  # a distinct seed per layer
            return NumpyInitializer(kind, seed=None if seed is None else seed + next(counter))

        # (batch, H, W, C) -> (batch, H / 2^k, W / 2^k, filters[-1]); then where the shape
        # is (flattened map) next to what it is (global max, the same at every position).
        images = keras.Input(self.image_shape)
        h = images
        for f in self.filters:
            h = keras.layers.Conv2D(
                f, 3, padding="same", activation="relu", kernel_initializer=init()
            )(h)
            h = keras.layers.MaxPooling2D(2, padding="same")(h)
        h = keras.layers.Concatenate()(
            [keras.layers.Flatten()(h), keras.layers.GlobalMaxPooling2D()(h)]
        )
        h = keras.layers.Dense(self.image_units, activation="relu", kernel_initializer=init())(h)
        self.image_encoder = keras.Model(
            images,
            keras.layers.Dense(self.embed_dim, kernel_initializer=init())(h),
            name="image_encoder",
        )
        self.token_embedding = keras.layers.Embedding(
            self.vocab_size, self.text_dim, embeddings_initializer=init("normal"), name="tokens"
        )
        self.position_embedding = keras.layers.Embedding(
            self.max_length,
            self.text_dim,
            embeddings_initializer=init("normal"),
            name="positions",
        )
        self.text_blocks = [
            TextBlock(
                self.num_heads,
                self.text_dim // self.num_heads,
                4 * self.text_dim,
                seed=None if seed is None else seed + 100 + 10 * i,
                name=f"text_block_{i}",
            )
            for i in range(self.num_layers)
        ]
        self.text_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="text_norm")
        self.text_hidden = keras.layers.Dense(
            self.text_dim, activation="gelu", kernel_initializer=init(), name="text_hidden"
        )
        self.text_projection = keras.layers.Dense(
            self.embed_dim, kernel_initializer=init(), name="text_projection"
        )
        text_shape = (None, self.max_length, self.text_dim)
        self.token_embedding.build((None, self.max_length))
        self.position_embedding.build((None, self.max_length))
        for block in self.text_blocks:
            block.build(text_shape)
        self.text_norm.build((None, self.text_dim))
        self.text_hidden.build((None, self.text_dim))
        self.text_projection.build((None, self.text_dim))
        self.log_logit_scale = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.logit_scale_init)),
            name="log_logit_scale",
        )
        self.track("logit_scale", "accuracy")
        self.built = True

    # === Encoders ===

    @property
    def logit_scale(self) -> Any:
        """exp(log_logit_scale), clipped at `max_logit_scale`."""
        return ops.minimum(ops.exp(self.log_logit_scale), self.max_logit_scale)

    def encode_image(self, images: Any, *, training: bool = False) -> Any:
        """L2-normalised image embeddings `(batch, embed_dim)` of images `(batch, H, W, C)`."""
        check_shape(type(self).__name__, images, self.image_shape, what="images")
        images = ops.convert_to_tensor(images, dtype=self.compute_dtype)
        return _normalise(self.image_encoder(images, training=training))

    def encode_text(self, tokens: Any, *, training: bool = False) -> Any:
        """L2-normalised text embeddings `(batch, embed_dim)` of token ids `(batch, max_length)`.

        Pad tokens (`pad_id`) are masked: they neither attend nor enter the mean, so a
        caption's embedding does not depend on how much padding follows it.
        """
        check_shape(type(self).__name__, tokens, (self.max_length,), what="tokens")
        if isinstance(tokens, np.ndarray):
            self._check_tokens(tokens)
        tokens = ops.cast(tokens, "int32")
        mask = ops.not_equal(tokens, self.pad_id)  # (batch, T)
        positions = ops.arange(self.max_length, dtype="int32")
        h = self.token_embedding(tokens) + self.position_embedding(positions)[None]
        for block in self.text_blocks:
            h = block(h, mask, training=training)  # (batch, T, text_dim)
        weights = ops.cast(mask, h.dtype)[:, :, None]
        pooled = ops.sum(h * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        pooled = self.text_hidden(self.text_norm(pooled))
        return _normalise(self.text_projection(pooled))

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Image embeddings of `inputs` (see `encode_image`)."""
        return self.encode_image(inputs, training=training)

    # === Uses ===

    def similarity(self, images: Any, tokens: Any) -> Any:
        """Logits `(num_images, num_texts)`: logit_scale times the cosine similarities."""
        return self.logit_scale * ops.matmul(
            self.encode_image(images), ops.transpose(self.encode_text(tokens))
        )

    def zero_shot_classify(
        self, images: Any, prompt_tokens: Any, batch_size: int = 256
    ) -> np.ndarray:
        """Class index per image: the prompt (one per class) of highest cosine similarity.

        Args:
            images: `(batch, H, W, C)` images.
            prompt_tokens: `(num_classes, max_length)` token ids of one prompt per class.
            batch_size: Images embedded at once.

        Returns:
            int64 NumPy array `(batch,)` of indices into the prompts.
        """
        text = self.encode_text(prompt_tokens)
        scores = self._image_scores(images, text, batch_size)
        return np.argmax(scores, axis=1)

    def retrieval_recall(
        self, images: Any, tokens: Any, k: Sequence[int] = (1, 5), batch_size: int = 256
    ) -> dict[str, float]:
        """Image -> text recall@k over a set of pairs (image i goes with caption i).

        Identical captions are one text (their embeddings tie), so for each image the
        distinct captions of the set are ranked and a hit is its own caption among the
        top k. Chance is `k / number of distinct captions` (returned as `captions`).

        Returns:
            `{"recall@1": ..., "recall@5": ..., "captions": number of distinct captions}`.
        """
        tokens = np.asarray(keras.ops.convert_to_numpy(tokens))
        if len(tokens) != len(images):
            raise ValueError(
                f"{type(self).__name__}.retrieval_recall expects as many captions as images; "
                f"got {len(tokens)} captions for {len(images)} images."
            )
        unique, target = np.unique(tokens, axis=0, return_inverse=True)
        target = np.reshape(target, (-1,))
        scores = self._image_scores(images, self.encode_text(unique), batch_size)
        # rank of the own caption: how many distinct captions score strictly higher
        own = scores[np.arange(len(target)), target]
        rank = (scores > own[:, None]).sum(axis=1)
        result = {f"recall@{int(j)}": float(np.mean(rank < int(j))) for j in k}
        result["captions"] = len(unique)
        return result

    def _image_scores(self, images: Any, text_emb: Any, batch_size: int) -> np.ndarray:
        text_emb = ops.convert_to_numpy(text_emb)
        batch_size = check_count(type(self).__name__, "batch_size", batch_size)
        parts = [
            ops.convert_to_numpy(self.encode_image(images[i : i + batch_size])) @ text_emb.T
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(text_emb)), np.float32)

    contrastive_loss = staticmethod(contrastive_loss)

    # === Training ===

    def phases(self) -> list[Phase]:
        return [Phase("clip", self.trainable_variables, self._loss)]

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        image_emb = self.encode_image(x, training=training)
        text_emb = self.encode_text(y, training=training)
        scale = self.logit_scale
        loss = contrastive_loss(image_emb, text_emb, scale)
        logits = ops.matmul(image_emb, ops.transpose(text_emb))
        hits = ops.equal(ops.argmax(logits, axis=1), ops.arange(ops.shape(logits)[0]))
        return loss, {"logit_scale": scale, "accuracy": ops.mean(ops.cast(hits, loss.dtype))}

    # === Checks and export ===

    def _check_tokens(self, tokens: np.ndarray) -> None:
        owner = type(self).__name__
        check_labels(owner, tokens, self.vocab_size, (self.max_length,), what="tokens")
        empty = np.all(np.asarray(tokens) == self.pad_id, axis=-1)
        if empty.any():
            raise ValueError(
                f"{owner} expects captions with at least one non-pad token; captions "
                f"{np.flatnonzero(empty)[:5].tolist()} are all padding (pad_id {self.pad_id})."
            )

    def validate_data(self, x: np.ndarray) -> None:
        check_shape(type(self).__name__, x, self.image_shape, what="images")
        check_values(type(self).__name__, x)

    def validate_targets(self, y: np.ndarray | None) -> None:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} learns from image-caption pairs: call "
                "fit(images, tokens) with the captions' token ids as targets."
            )
        self._check_tokens(np.asarray(y))

    def export_endpoints(self) -> dict[str, Any]:
        image_spec = keras.InputSpec(shape=(None, *self.image_shape), dtype="float32")
        token_spec = keras.InputSpec(shape=(None, self.max_length), dtype="int32")
        return {
            "encode_image": (self.encode_image, [image_spec]),
            "encode_text": (self.encode_text, [token_spec]),
        }

    def export_samples(self, name: str, num: int, seed: int) -> list[np.ndarray]:
        """Random images in [0, 1], or token ids with a non-pad first token, for parity."""
        rng = np.random.default_rng(seed)
        if name == "encode_image":
            return [rng.uniform(size=(num, *self.image_shape)).astype("float32")]
        tokens = rng.integers(0, self.vocab_size, (num, self.max_length))
        tokens[:, 0] = (self.pad_id + 1) % self.vocab_size
        return [tokens.astype("int32")]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "vocab_size": self.vocab_size,
                "max_length": self.max_length,
                "embed_dim": self.embed_dim,
                "filters": list(self.filters),
                "image_units": self.image_units,
                "text_dim": self.text_dim,
                "num_heads": self.num_heads,
                "num_layers": self.num_layers,
                "pad_id": self.pad_id,
                "logit_scale_init": self.logit_scale_init,
                "max_logit_scale": self.max_logit_scale,
                "seed": self.seed,
            }
        )
        return config


def _normalise(x: Any) -> Any:
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=-1, keepdims=True), 1e-12))
