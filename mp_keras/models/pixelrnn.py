"""PixelRNN with Row LSTM layers (notes, section 6.4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from mp_keras.layers.masked_conv import MaskedConv2D
from mp_keras.layers.row_lstm import RowLSTM
from mp_keras.models._checks import check_count
from mp_keras.models.density import BinaryAutoregressive

UNROLL_MAX_HEIGHT = 8  # rows up to which PixelRNN unrolls its Row LSTMs by default


@keras.saving.register_keras_serializable(package="mp_keras")
@keras.saving.register_keras_serializable(package="mp_keras")
class PixelRNN(BinaryAutoregressive):
    """PixelRNN with Row LSTM layers: an autoregressive model of binary images.

    van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML
    2016, sections 3.1 and 3.4 (notes, section 6.4). Pixels are generated in raster
    order (rows, then columns, then channels) and

        p(x_i = 1 | x_<i) = sigmoid(logit_i),

    with the logits computed for every pixel at once (teacher forcing) by:

    1. a `first_kernel_size` x `first_kernel_size` convolution masked with type A
       (rows below and pixels right of the centre, and the centre pixel itself, are
       masked) to `hidden_units` features;
    2. `num_layers` `RowLSTM` layers of `hidden_units` units, each added to its input
       (residual connections), processing the rows top to bottom;
    3. ReLU, a 1x1 convolution of `hidden_units` features, ReLU, and a 1x1
       convolution to one logit per pixel and channel.

    Every later convolution is masked with type B (a pixel's own features are allowed),
    which keeps the autoregressive property; for images of several channels the
    features are split into colour groups so that R is drawn before G before B
    (section 3.4). The Row LSTM's
    receptive field is triangular: a pixel sees the previous rows only within a cone.

    Simplifications of the paper: its 2h-feature residual stream with 1x1 up-projections
    is replaced by one width `hidden_units`; its output is a 256-way softmax per
    channel, here a Bernoulli (binary images, as for binarized MNIST). The paper uses a
    7x7 first convolution and 3-wide input-to-state and state-to-state kernels; on
    binarized MNIST its 7-layer models reach 80.54 nats (Row LSTM) and 79.20 (Diagonal
    BiLSTM, h = 16), table 4; on CIFAR-10 its models have 12 layers of h = 128.

    Args:
        input_shape: tuple of ints. `(height, width, channels)` of one binary image.
            Defaults to `(28, 28, 1)`.
        hidden_units: int. Features of the first convolution, units of each Row LSTM and
            features of the hidden 1x1 convolution (a multiple of the channels).
            Defaults to `16` (the paper: 16 on MNIST, 128 on CIFAR-10).
        num_layers: int. Number of Row LSTM layers. Defaults to `2` (the paper: 7 on
            MNIST).
        first_kernel_size: int. Odd size of the type-A first convolution. Defaults to
            `5` (the paper: 7).
        state_kernel_size: int. Odd width of the Row LSTM's state-to-state convolution.
            Defaults to `3` (as the paper).
        input_kernel_size: int. Odd width of the Row LSTM's masked input-to-state
            convolution. Defaults to `3` (as the paper).
        unroll: bool or None. Run the Row LSTMs' rows as an unrolled loop (`True`) or
            with `ops.scan` (`False`); `None` unrolls images of at most
            `UNROLL_MAX_HEIGHT` rows, for which a loop is quicker to trace and run
            eagerly, and scans taller ones, for which it compiles and trains faster.
            Same numbers either way. Defaults to `None`.
        kernel_initializer: str or dict. Initializer of every kernel (a Keras
            initializer name or serialized config); biases start at 0, the Row LSTMs'
            forget-gate biases at 1. Defaults to `"glorot_uniform"`.
        seed: int or None. Seed of the sampling draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = PixelRNN(input_shape=(4, 4, 1), hidden_units=4, num_layers=1,
    ...                  first_kernel_size=3, seed=0)
    >>> model.compile(optimizer="adam")
    >>> x = (np.random.default_rng(0).random((32, 4, 4, 1)) > 0.5).astype("float32")
    >>> history = model.fit(x, epochs=1, batch_size=16, verbose=0)
    >>> tuple(model.log_prob(x[:3]).shape), tuple(model.sample(2, seed=1).shape)
    ((3,), (2, 4, 4, 1))
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (28, 28, 1),
        hidden_units: int = 16,
        num_layers: int = 2,
        first_kernel_size: int = 5,
        state_kernel_size: int = 3,
        input_kernel_size: int = 3,
        unroll: bool | None = None,
        kernel_initializer: Any = "glorot_uniform",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("num_classes", None)  # unconditional
        owner = type(self).__name__
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(
                f"{owner} models images: input_shape must be (height, width, channels), "
                f"got {shape}."
            )
        sizes = {
            name: check_count(owner, name, value)
            for name, value in [
                ("hidden_units", hidden_units),
                ("num_layers", num_layers),
                ("first_kernel_size", first_kernel_size),
                ("state_kernel_size", state_kernel_size),
                ("input_kernel_size", input_kernel_size),
            ]
        }
        for name in ("first_kernel_size", "state_kernel_size", "input_kernel_size"):
            if sizes[name] % 2 != 1:
                raise ValueError(
                    f"{owner}: {name} must be odd (a centre pixel), got {sizes[name]}."
                )
        super().__init__(input_shape=shape, seed=seed, **kwargs)
        height, width, channels = self.data_shape
        if sizes["hidden_units"] % channels:
            raise ValueError(
                f"{owner}: hidden_units ({hidden_units}) must be a multiple of the "
                f"{channels} channels (one group of features per colour channel)."
            )

        # === Config ===
        self.hidden_units = sizes["hidden_units"]
        self.num_layers = sizes["num_layers"]
        self.first_kernel_size = sizes["first_kernel_size"]
        self.state_kernel_size = sizes["state_kernel_size"]
        self.input_kernel_size = sizes["input_kernel_size"]
        self.unroll = None if unroll is None else bool(unroll)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        # === Layers ===
        # Each layer deserialises its own initializer: one unseeded instance shared by
        # several same-shaped kernels would give them identical values.
        units, init = self.hidden_units, keras.initializers.serialize(self.kernel_initializer)
        self.first_conv = MaskedConv2D(
            units, self.first_kernel_size, "A", channels, kernel_initializer=init, name="first_conv"
        )
        self.row_lstms = [
            RowLSTM(
                units,
                input_kernel_size=self.input_kernel_size,
                state_kernel_size=self.state_kernel_size,
                channels=channels,
                kernel_initializer=init,
                unroll=height <= UNROLL_MAX_HEIGHT if unroll is None else bool(unroll),
                name=f"row_lstm_{k}",
            )
            for k in range(self.num_layers)
        ]
        self.hidden_conv = MaskedConv2D(
            units, 1, "B", channels, kernel_initializer=init, name="hidden_conv"
        )
        self.logit_conv = MaskedConv2D(
            channels, 1, "B", channels, kernel_initializer=init, name="logit_conv"
        )
        features = (None, height, width, units)
        self.first_conv.build((None, *self.data_shape))
        for layer in self.row_lstms:
            layer.build(features)
        self.hidden_conv.build(features)
        self.logit_conv.build(features)
        self.built = True

    def conditional_logits(self, x: Any, condition: Any = None, training: bool = False) -> Any:
        self.check_inputs(x)
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        h = self.first_conv(x)  # (batch, height, width, hidden_units)
        for layer in self.row_lstms:
            h = h + layer(h)  # residual connection
        h = ops.relu(self.hidden_conv(ops.relu(h)))
        return self.logit_conv(h)  # (batch, height, width, channels)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("num_classes")
        config.update(
            {
                "hidden_units": self.hidden_units,
                "num_layers": self.num_layers,
                "first_kernel_size": self.first_kernel_size,
                "state_kernel_size": self.state_kernel_size,
                "input_kernel_size": self.input_kernel_size,
                "unroll": self.unroll,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
