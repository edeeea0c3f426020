"""WaveNet: dilated causal convolutions over μ-law audio, with fast generation (notes, 6.5)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.engine import Phase, PhasedModel
from mp_keras.layers._checks import int_at_least
from mp_keras.layers.causal_conv import CausalConv1D, WaveNetBlock
from mp_keras.models._checks import check_labels, check_no_targets, check_values
from mp_keras.models._wavenet_generation import WaveNetGeneration
from mp_keras.models.density import LN2, DensityModel


@keras.saving.register_keras_serializable(package="mp_keras")
class WaveNet(WaveNetGeneration, DensityModel, PhasedModel):
    """WaveNet: p(x) = prod_t p(x_t | x_<t) over μ-law classes by dilated causal convolutions.

    van den Oord et al., "WaveNet: A Generative Model for Raw Audio", 2016 (notes,
    section 6.5 and figure 18); fast generation after Paine et al., "Fast Wavenet
    Generation Algorithm", 2016.

    The network reads a sequence of classes, one-hot, through a causal convolution,
    then `num_blocks` x `dilations_per_block` gated residual layers (`WaveNetBlock`) with
    dilations 1, 2, 4, ..., 2^(k-1) in every block; the skip outputs are summed, then
    relu -> 1 x 1 -> relu -> 1 x 1 gives logits over the `num_classes` values. Output t
    depends on inputs t - R + 1 .. t, R = `receptive_field`. The model feeds it the
    sequence shifted right by one, starting from silence (the middle μ-law class), so
    position t scores x_t given x_<t, and the first sample is conditioned on silence
    only. `log_prob` is the exact sum over t in nats; training minimises its mean
    (teacher forcing) and logs `bits_per_dim`, which here is bits per sample.

    With `num_conditions`, a label h (one per clip: a speaker, an instrument, a clip
    type) is embedded and added inside every gate, tanh(W_f * x + V_f h) ⊙ sigmoid(W_g *
    x + V_g h) (global conditioning, eq. 3): `fit(x, labels)`, `log_prob(x, condition=
    labels)`, `sample(n, seed, condition=labels)`.

    Generation is sequential. `sample(method="fast")` runs one compiled
    `generation_step` per sample, in which every causal convolution keeps a queue of its
    last (k - 1) d inputs: O(layers) arithmetic per sample (the queues, explicit tensors,
    shift by one entry: a copy, not a computation). `method="naive"` re-runs the whole
    network over the last R generated samples (the part of the prefix the next sample
    can see) for every sample: O(R x layers). Both draw from the same uniform numbers,
    so a seed gives the same samples with either.

    `call(x)` returns the conditional probabilities p(x_t = c | x_<t), `(batch, time,
    num_classes)`.

    Args:
        num_classes: int. Number of quantisation levels (μ-law classes). Defaults to `256`.
        residual_channels: int. Channels of the residual stream. Defaults to `32`.
        dilation_channels: int. Channels of each gated activation. Defaults to `32`.
        skip_channels: int. Channels of the skip outputs and of the output head.
            Defaults to `64`.
        num_blocks: int. Repetitions of the dilation pattern. Defaults to `2`.
        dilations_per_block: int. Layers per block, dilations 1 .. 2^(k-1). Defaults to `8`.
        kernel_size: int. Taps of each dilated convolution. Defaults to `2`.
        initial_kernel_size: int. Taps of the first causal convolution (1: a plain
            embedding of the current input). Defaults to `2`.
        num_conditions: int or None. Classes of the global condition; `None` for an
            unconditional model. Defaults to `None`.
        input_length: int or None. Fixed number of samples per sequence; `None` accepts
            any length (the network is fully convolutional). Defaults to `None`.
        seed: int or None. Seed of the sampling draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = WaveNet(num_classes=8, residual_channels=8, dilation_channels=8,
    ...                 skip_channels=8, num_blocks=1, dilations_per_block=3, seed=0)
    >>> model.receptive_field  # 1 + 1 (causal conv) + 1 + 2 + 4 (dilations)
    9
    >>> x = np.random.default_rng(0).integers(0, 8, size=(16, 12))  # μ-law classes
    >>> tuple(model.log_prob(x).shape), tuple(model.sample(2, length=12, seed=1).shape)
    ((16,), (2, 12))

    Train it with `model.compile(optimizer="adam")` and `model.fit(classes)`, where
    `classes = mp_keras.data.audio.mu_law_encode(waveforms)`.
    """

    def __init__(
        self,
        num_classes: int = 256,
        residual_channels: int = 32,
        dilation_channels: int = 32,
        skip_channels: int = 64,
        num_blocks: int = 2,
        dilations_per_block: int = 8,
        kernel_size: int = 2,
        initial_kernel_size: int = 2,
        num_conditions: int | None = None,
        input_length: int | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__

        # === Config ===
        self.num_classes = int_at_least(owner, "num_classes", num_classes, 2)
        self.residual_channels = int_at_least(owner, "residual_channels", residual_channels, 1)
        self.dilation_channels = int_at_least(owner, "dilation_channels", dilation_channels, 1)
        self.skip_channels = int_at_least(owner, "skip_channels", skip_channels, 1)
        self.num_blocks = int_at_least(owner, "num_blocks", num_blocks, 1)
        self.dilations_per_block = int_at_least(
            owner, "dilations_per_block", dilations_per_block, 1
        )
        self.kernel_size = int_at_least(owner, "kernel_size", kernel_size, 1)
        self.initial_kernel_size = int_at_least(
            owner, "initial_kernel_size", initial_kernel_size, 1
        )
        self.num_conditions = (
            None
            if num_conditions is None
            else int_at_least(owner, "num_conditions", num_conditions, 1)
        )
        self.input_length = (
            None if input_length is None else int_at_least(owner, "input_length", input_length, 1)
        )
        self.data_shape = (self.input_length,)
        self.silence = self.num_classes // 2  # μ-law of amplitude 0
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.last_sample_timing: dict[str, float] = {}
        self.track("bits_per_dim")

        # === Layers ===
        self.causal_conv = CausalConv1D(
            self.residual_channels, self.initial_kernel_size, name="causal_conv"
        )
        self.blocks = [
            WaveNetBlock(
                self.residual_channels,
                self.dilation_channels,
                self.skip_channels,
                dilation_rate=2**i,
                kernel_size=self.kernel_size,
                num_conditions=self.num_conditions,
                name=f"block_{b}_dilation_{2**i}",
            )
            for b in range(self.num_blocks)
            for i in range(self.dilations_per_block)
        ]
        self.head_hidden = keras.layers.Dense(self.skip_channels, name="head_hidden")
        self.head_logits = keras.layers.Dense(self.num_classes, name="head_logits")

        # === Build ===
        self.causal_conv.build((None, None, self.num_classes))
        for block in self.blocks:
            block.build((None, None, self.residual_channels))
        self.head_hidden.build((None, None, self.skip_channels))
        self.head_logits.build((None, None, self.skip_channels))
        self.built = True

    @property
    def is_conditional(self) -> bool:
        """Whether the model is globally conditioned (trains and samples given labels)."""
        return self.num_conditions is not None

    @property
    def receptive_field(self) -> int:
        """R: how many inputs one output sees, 1 + (k0 - 1) + blocks (k - 1) (2^L - 1)."""
        dilations = self.num_blocks * (2**self.dilations_per_block - 1)
        return 1 + (self.initial_kernel_size - 1) + (self.kernel_size - 1) * dilations

    @property
    def num_dims(self) -> int:
        if self.input_length is None:
            raise ValueError(
                f"{type(self).__name__} has no fixed input_length; bits per sample divide "
                "by the length of the data given."
            )
        return self.input_length

    # === Network ===

    def network(self, inputs: Any, condition: Any = None) -> Any:
        """The causal stack: float `(batch, time, num_classes)` -> logits, same shape.

        Output t reads inputs t - R + 1 .. t (zeros before the start); `inputs` are
        one-hot classes, or any real values (the gradient checks use those).
        """
        h = self.causal_conv(inputs)  # (batch, time, residual_channels)
        skips = 0.0
        for block in self.blocks:
            h, skip = block(h, condition)
            skips = skips + skip  # (batch, time, skip_channels)
        return self._head(skips)

    def _head(self, skips: Any) -> Any:
        return self.head_logits(ops.relu(self.head_hidden(ops.relu(skips))))

    def conditional_logits(self, x: Any, condition: Any = None, training: bool = False) -> Any:
        """Logits of p(x_t | x_<t) for every t, `(batch, time, num_classes)`."""
        self.check_inputs(x)
        labels = self._condition(condition)
        x = ops.cast(x, "int32")
        start = ops.zeros_like(x[:, :1]) + self.silence
        previous = ops.concatenate([start, x[:, :-1]], axis=1)  # x shifted right by one
        return self.network(self._one_hot(previous), labels)

    def _one_hot(self, classes: Any) -> Any:
        return ops.one_hot(classes, self.num_classes, dtype=self.compute_dtype)

    def call(self, inputs: Any, condition: Any = None, training: bool = False) -> Any:
        """p(x_t = c | x_<t), `(batch, time, num_classes)`."""
        return ops.softmax(self.conditional_logits(inputs, condition, training), axis=-1)

    def log_prob(self, x: Any, condition: Any = None, training: bool = False) -> Any:
        """Exact log p(x) = sum_t log p(x_t | x_<t), in nats, shape `(batch,)`."""
        if isinstance(x, np.ndarray):
            self.validate_inputs(x)
        log_p = ops.log_softmax(self.conditional_logits(x, condition, training), axis=-1)
        hot = ops.one_hot(ops.cast(x, "int32"), self.num_classes, dtype=log_p.dtype)
        return ops.sum(log_p * hot, axis=(1, 2))

    def dims_of(self, x: Any) -> int:
        """Samples per clip of `x` (bits_per_dim is bits per sample, any length)."""
        return int(np.shape(x)[1])

    # === Training ===

    def phases(self) -> list[Phase]:
        return [Phase("nll", self.trainable_variables, self._loss)]

    def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, dict[str, Any]]:
        nll = -ops.mean(self.log_prob(x, y, training=training))
        samples = ops.cast(ops.shape(x)[1], nll.dtype)
        return nll, {"bits_per_dim": nll / (samples * LN2)}

    # === Checks ===

    def _condition(self, condition: Any) -> Any:
        """`condition` as int32 labels `(batch,)`, or None; refuses a mismatch."""
        owner = type(self).__name__
        if self.num_conditions is None:
            if condition is not None:
                raise ValueError(f"{owner} is unconditional and takes no condition (labels).")
            return None
        if condition is None:
            raise ValueError(
                f"{owner} is conditional ({self.num_conditions} classes): pass "
                "condition=labels, one class index per sequence."
            )
        if isinstance(condition, (np.ndarray, list, tuple)):
            check_labels(owner, np.asarray(condition), self.num_conditions, what="condition")
        return ops.reshape(ops.cast(condition, "int32"), (-1,))

    def _sampling_condition(self, num: int, condition: Any) -> Any:
        if self.num_conditions is None or condition is None:
            return self._condition(condition)
        labels = np.broadcast_to(np.asarray(condition), (num,))
        return self._condition(labels.astype("int32"))

    def check_inputs(self, x: Any) -> None:
        """Shape check, valid on NumPy, eager and symbolic tensors (used in `call`)."""
        owner = type(self).__name__
        shape = tuple(getattr(x, "shape", np.shape(x)))
        length = "time" if self.input_length is None else str(self.input_length)
        if len(shape) != 2:
            raise ValueError(
                f"{owner} expects μ-law class sequences of rank 2 with shape (batch, "
                f"{length}); got rank {len(shape)} with shape {shape}."
            )
        if shape[1] is not None and (
            shape[1] < 1 or (self.input_length is not None and shape[1] != self.input_length)
        ):
            raise ValueError(f"{owner} expects inputs of shape (batch, {length}); got {shape}.")

    def validate_data(self, x: np.ndarray) -> None:
        owner = type(self).__name__
        self.check_inputs(x)
        check_values(owner, x)
        x = np.asarray(x)
        if x.dtype == np.bool_ or not np.all(x == np.round(x)):
            odd = np.unique(x[x != np.round(x)])[:5] if x.dtype != np.bool_ else [True]
            raise ValueError(
                f"{owner} models μ-law classes: integers in [0, {self.num_classes}); got "
                f"values such as {list(odd)}. Encode amplitudes first with "
                "mp_keras.data.audio.mu_law_encode."
            )
        if x.size and (x.min() < 0 or x.max() >= self.num_classes):
            bad = np.unique(x[(x < 0) | (x >= self.num_classes)])[:5]
            raise ValueError(
                f"{owner} has {self.num_classes} classes and expects values in "
                f"[0, {self.num_classes}); got values such as {bad.astype(np.int64).tolist()}."
            )

    def validate_targets(self, y: np.ndarray | None) -> None:
        owner = type(self).__name__
        if self.num_conditions is None:
            check_no_targets(owner, y)
        elif y is None:
            raise ValueError(
                f"{owner} is conditional ({self.num_conditions} classes) and trains on "
                "(classes, labels); got no labels."
            )
        else:
            check_labels(owner, y, self.num_conditions)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "residual_channels": self.residual_channels,
                "dilation_channels": self.dilation_channels,
                "skip_channels": self.skip_channels,
                "num_blocks": self.num_blocks,
                "dilations_per_block": self.dilations_per_block,
                "kernel_size": self.kernel_size,
                "initial_kernel_size": self.initial_kernel_size,
                "num_conditions": self.num_conditions,
                "input_length": self.input_length,
                "seed": self.seed,
            }
        )
        return config
