"""Gated PixelCNN: vertical and horizontal stacks, no blind spot (notes, section 6.4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from mp_keras.layers.masked_conv import GatedPixelCNNBlock, MaskedConv2D
from mp_keras.models._checks import check_count
from mp_keras.models.density import BinaryAutoregressive
from mp_keras.models.pixelcnn import check_image_shape, label_condition


@keras.saving.register_keras_serializable(package="mp_keras")
class GatedPixelCNN(BinaryAutoregressive):
    """Gated PixelCNN of binary images, optionally class-conditional.

    van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves & Kavukcuoglu, "Conditional
    Image Generation with PixelCNN Decoders", NeurIPS 2016. The notes (section 6.4):
    the blind spot of stacked masked convolutions is removed by combining a *vertical*
    stack, which conditions on all rows above, with a *horizontal* stack, which
    conditions on the current row so far; the vertical stack feeds the horizontal one
    (shifted down one row, so a pixel never sees its own row through it). Every layer
    is a `GatedPixelCNNBlock` with gated activations tanh(W_f * x) * sigmoid(W_g * x);
    the first uses `first_kernel_size` and mask A, the others `kernel_size` and mask B
    with a residual connection in the horizontal stack. The blocks' skip outputs are
    summed, then relu -> 1 x 1 -> relu -> 1 x 1 (mask B) give one Bernoulli logit per
    pixel and channel (R -> G -> B within a pixel).

    With `num_classes = K`, a label embedding is added to the gates' pre-activations of
    both stacks (eq. 4 of the paper, h a one-hot label): `fit(x, labels)`,
    `log_prob(x, condition=labels)`, `sample(n, condition=labels)`.

    Args:
        input_shape: tuple of ints. `(height, width, channels)` of one binary image.
            Defaults to `(28, 28, 1)`.
        filters: int. Feature maps of each stack. Defaults to `32`.
        num_layers: int. Gated blocks (the first included). Defaults to `5`.
        first_kernel_size: int. Odd kernel size of the first block. Defaults to `7`.
        kernel_size: int. Odd kernel size of the other blocks. Defaults to `3`.
        num_classes: int or None. Classes of a class-conditional model. Defaults to
            `None`.
        seed: int or None. Seed of the sampling draws. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> model = GatedPixelCNN(input_shape=(4, 4, 1), filters=8, num_layers=2,
    ...                       first_kernel_size=3, num_classes=2, seed=0)
    >>> x = (np.random.default_rng(0).random((16, 4, 4, 1)) > 0.5).astype("float32")
    >>> y = np.arange(16) % 2
    >>> tuple(model.log_prob(x, condition=y).shape)
    (16,)
    >>> tuple(model.sample(2, seed=1, condition=[0, 1]).shape)
    (2, 4, 4, 1)

    Train it on images and their labels: `model.compile(optimizer="adam")`, then
    `model.fit(x, y)`.
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (28, 28, 1),
        filters: int = 32,
        num_layers: int = 5,
        first_kernel_size: int = 7,
        kernel_size: int = 3,
        num_classes: int | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_shape=input_shape, num_classes=num_classes, seed=seed, **kwargs)
        owner = type(self).__name__
        channels = check_image_shape(owner, self.data_shape)

        # === Config ===
        self.filters = check_count(owner, "filters", filters)
        self.num_layers = check_count(owner, "num_layers", num_layers)
        self.first_kernel_size = int(first_kernel_size)
        self.kernel_size = int(kernel_size)

        # === Layers ===
        self.blocks = [
            GatedPixelCNNBlock(
                self.filters,
                kernel_size=self.first_kernel_size if i == 0 else self.kernel_size,
                mask_type="A" if i == 0 else "B",
                data_channels=channels,
                residual=i > 0,
                num_classes=self.num_classes,
                name=f"gated_block_{i}",
            )
            for i in range(self.num_layers)
        ]
        self.output_hidden = MaskedConv2D(
            self.filters, 1, "B", data_channels=channels, name="output_hidden"
        )
        self.output_logits = MaskedConv2D(
            channels, 1, "B", data_channels=channels, name="output_logits"
        )

        # === Build ===
        image = (None, *self.data_shape)
        hidden = (None, *self.data_shape[:-1], self.filters)
        for i, block in enumerate(self.blocks):
            block.build(image if i == 0 else hidden, image if i == 0 else hidden)
        self.output_hidden.build(hidden)
        self.output_logits.build(hidden)
        self.built = True

    def conditional_logits(self, x: Any, condition: Any = None, training: bool = False) -> Any:
        self.check_inputs(x)
        labels = label_condition(type(self).__name__, self.num_classes, condition)
        v = h = ops.cast(x, self.compute_dtype)  # both stacks start from the image
        skips = 0.0
        for block in self.blocks:
            v, h, skip = block(v, h, labels)  # each (batch, H, W, filters)
            skips = skips + skip
        out = self.output_hidden(ops.relu(skips))
        return self.output_logits(ops.relu(out))  # (batch, H, W, channels)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "num_layers": self.num_layers,
                "first_kernel_size": self.first_kernel_size,
                "kernel_size": self.kernel_size,
            }
        )
        return config
