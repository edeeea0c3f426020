"""PixelCNN: an autoregressive image model of masked convolutions (notes, section 6.4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from mp_keras.layers.masked_conv import MaskedConv2D
from mp_keras.models._checks import check_count
from mp_keras.models.density import BinaryAutoregressive


def check_image_shape(owner: str, data_shape: tuple[int, ...]) -> int:
    """The channel count of `(height, width, channels)`; `ValueError` for other ranks."""
    if len(data_shape) != 3:
        raise ValueError(
            f"{owner} models images: input_shape must be (height, width, channels), "
            f"got {data_shape}."
        )
    return data_shape[-1]


def label_condition(owner: str, num_classes: int | None, condition: Any) -> Any:
    """`condition` as int32 labels `(batch,)`, or None; refuses a mismatch with the model."""
    if num_classes is None:
        if condition is not None:
            raise ValueError(f"{owner} is unconditional and takes no condition (labels).")
        return None
    if condition is None:
        raise ValueError(
            f"{owner} is class-conditional ({num_classes} classes): pass condition=labels, "
            "one class index per image."
        )
    return ops.reshape(ops.cast(condition, "int32"), (-1,))


@keras.saving.register_keras_serializable(package="mp_keras")
class PixelCNN(BinaryAutoregressive):
    """PixelCNN of binary images: masked convolutions give every p(x_i | x_<i) at once.

    van den Oord, Kalchbrenner & Kavukcuoglu, "Pixel Recurrent Neural Networks", ICML
    2016, section 3.4. A `first_kernel_size` convolution with mask A (a pixel never sees
    itself), `num_layers` masked `kernel_size` convolutions with mask B (each a residual
    block relu -> conv added to its input when `residual`), then relu -> 1 x 1 -> relu
    -> 1 x 1 (mask B) giving one Bernoulli logit per pixel and channel. Within a pixel
    channel c depends on the channels before it (R -> G -> B) through the channel-group
    masks of `MaskedConv2D`.

    Stacked masked convolutions grow the receptive field only up to a diagonal: a pixel
    r rows above and more than r columns to the right is never seen (the *blind spot*,
    notes figure 17; `mp_keras.tools.receptive_field` draws it). `GatedPixelCNN` has none.

    Args:
        input_shape: tuple of ints. `(height, width, channels)` of one binary image.
            Defaults to `(28, 28, 1)`.
        filters: int. Feature maps of every hidden layer. Defaults to `32`.
        num_layers: int. Masked convolutions of type B after the first (type A) one.
            Defaults to `4`.
        first_kernel_size: int. Odd kernel size of the type-A layer. Defaults to `7`.
        kernel_size: int. Odd kernel size of the type-B layers. Defaults to `3`.
        residual: bool. Adds each type-B layer's input to its output. Defaults to `True`.
        num_classes: int or None. Classes of a class-conditional model (a label
            embedding added after the first layer). Defaults to `None`.
        seed: int or None. Seed of the sampling draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = PixelCNN(input_shape=(4, 4, 1), filters=8, num_layers=2,
    ...                  first_kernel_size=3, seed=0)
    >>> x = (np.random.default_rng(0).random((16, 4, 4, 1)) > 0.5).astype("float32")
    >>> tuple(model.log_prob(x).shape), tuple(model.sample(2, seed=1).shape)
    ((16,), (2, 4, 4, 1))

    Train it with `model.compile(optimizer="adam")` and `model.fit(x)`.
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (28, 28, 1),
        filters: int = 32,
        num_layers: int = 4,
        first_kernel_size: int = 7,
        kernel_size: int = 3,
        residual: bool = True,
        num_classes: int | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_shape=input_shape, num_classes=num_classes, seed=seed, **kwargs)
        owner = type(self).__name__
        channels = check_image_shape(owner, self.data_shape)

        # === Config ===
        self.filters = check_count(owner, "filters", filters)
        self.num_layers = int(num_layers)
        if self.num_layers < 0:
            raise ValueError(f"{owner}: num_layers must be >= 0, got {num_layers!r}.")
        self.first_kernel_size = int(first_kernel_size)
        self.kernel_size = int(kernel_size)
        self.residual = bool(residual)

        # === Layers ===
        def masked(filters: int, size: int, mask_type: str, name: str) -> MaskedConv2D:
            return MaskedConv2D(filters, size, mask_type, data_channels=channels, name=name)

        self.input_layer = masked(self.filters, self.first_kernel_size, "A", "conv_a")
        self.hidden_layers = [
            masked(self.filters, self.kernel_size, "B", f"conv_b_{i}")
            for i in range(self.num_layers)
        ]
        self.output_hidden = masked(self.filters, 1, "B", "output_hidden")
        self.output_logits = masked(channels, 1, "B", "output_logits")
        self.label_embedding = (
            None
            if self.num_classes is None
            else keras.layers.Embedding(self.num_classes, self.filters, name="label_embedding")
        )

        # === Build ===
        image = (None, *self.data_shape)
        hidden = (None, *self.data_shape[:-1], self.filters)
        self.input_layer.build(image)
        for layer in [*self.hidden_layers, self.output_hidden]:
            layer.build(hidden)
        self.output_logits.build(hidden)
        if self.label_embedding is not None:
            self.label_embedding.build((None,))
        self.built = True

    def conditional_logits(self, x: Any, condition: Any = None, training: bool = False) -> Any:
        self.check_inputs(x)
        labels = label_condition(type(self).__name__, self.num_classes, condition)
        x = ops.cast(x, self.compute_dtype)
        h = self.input_layer(x)  # (batch, H, W, filters)
        if labels is not None:
            h = h + self.label_embedding(labels)[:, None, None, :]
        for layer in self.hidden_layers:
            update = layer(ops.relu(h))
            h = h + update if self.residual else update
        h = self.output_hidden(ops.relu(h))
        return self.output_logits(ops.relu(h))  # (batch, H, W, channels)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "num_layers": self.num_layers,
                "first_kernel_size": self.first_kernel_size,
                "kernel_size": self.kernel_size,
                "residual": self.residual,
            }
        )
        return config
