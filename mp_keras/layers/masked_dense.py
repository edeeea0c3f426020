"""A dense layer whose connections are cut by a fixed binary mask (notes, section 6.3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="mp_keras")
class MaskedDense(keras.layers.Layer):
    """Dense layer `y = activation(x (W ⊙ M) + b)` with a fixed 0/1 mask `M`.

    The building block of MADE (Germain et al., "MADE: Masked Autoencoder for
    Distribution Estimation", ICML 2015; notes, section 6.3): `W̄ = W ⊙ M`. The kernel
    itself is never rewritten; the product `kernel * mask` is formed inside the matmul,
    so a masked-out weight gets a zero gradient and keeps its value. The mask is a
    non-trainable weight, saved in `.keras` files with the kernel.

    The mask is in Keras' kernel orientation, `(input_dim, units)`: `mask[j, i] = 1`
    lets input j reach unit i (the notes' `M_ij` is its transpose). A stack of masks
    `(num_masks, input_dim, units)` holds several connectivities at once; `call` then
    takes `mask_index` (a Python int or a scalar integer tensor, picked with `ops.take`,
    so it may be drawn inside a compiled training step).

    Args:
        units: int. Output size.
        mask: array of 0/1 of shape `(input_dim, units)` or `(num_masks, input_dim,
            units)`.
        activation: str or callable. Applied to the output. Defaults to `None` (linear).
        use_bias: bool. Whether to add a bias. Defaults to `True`.
        kernel_initializer: initializer of the kernel. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of the bias. Defaults to `"zeros"`.

    Example:
    >>> import numpy as np
    >>> mask = np.array([[1.0, 0.0], [1.0, 1.0]])  # row j: the units input j reaches
    >>> layer = MaskedDense(2, mask, kernel_initializer="ones", use_bias=False)
    >>> keras.ops.convert_to_numpy(layer(np.array([[2.0, 3.0]]))).tolist()
    [[5.0, 3.0]]
    """

    def __init__(
        self,
        units: int,
        mask: Any,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        mask = np.asarray(mask, dtype="float32")
        owner = type(self).__name__
        if mask.ndim not in (2, 3) or mask.shape[-1] != self.units:
            raise ValueError(
                f"{owner} expects a mask of shape (input_dim, {self.units}) or (num_masks, "
                f"input_dim, {self.units}); got shape {mask.shape}."
            )
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError(f"{owner} expects a mask of zeros and ones.")
        self.mask_array = mask
        self.stacked = mask.ndim == 3
        self.input_dim = int(mask.shape[-2])
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    @property
    def num_masks(self) -> int:
        """How many connectivities the mask stack holds (1 for a single mask)."""
        return int(self.mask_array.shape[0]) if self.stacked else 1

    def masks(self) -> np.ndarray:
        """The mask (or stack of masks) as a NumPy array, as saved with the layer."""
        if self.built:
            return np.asarray(ops.convert_to_numpy(self.mask))
        return self.mask_array.copy()

    def build(self, input_shape: Sequence[int | None]) -> None:
        if input_shape[-1] is not None and input_shape[-1] != self.input_dim:
            raise ValueError(
                f"{type(self).__name__} has a mask for {self.input_dim} inputs; got inputs "
                f"of shape {tuple(input_shape)}."
            )
        self.kernel = self.add_weight(
            shape=(self.input_dim, self.units), initializer=self.kernel_initializer, name="kernel"
        )
        self.bias = (
            self.add_weight(shape=(self.units,), initializer=self.bias_initializer, name="bias")
            if self.use_bias
            else None
        )
        self.mask = self.add_weight(
            shape=self.mask_array.shape,
            initializer=self.mask_array,  # the value itself: nothing to compile
            trainable=False,
            name="mask",
        )

    def call(self, inputs: Any, mask_index: Any = None) -> Any:
        if self.stacked:
            if mask_index is None:
                raise ValueError(
                    f"{type(self).__name__} holds {self.num_masks} masks; pass mask_index."
                )
            mask = ops.take(self.mask, mask_index, axis=0)  # (input_dim, units)
        elif mask_index is not None:
            raise ValueError(f"{type(self).__name__} holds a single mask; got a mask_index.")
        else:
            mask = self.mask
        outputs = ops.matmul(inputs, self.kernel * ops.cast(mask, self.kernel.dtype))
        if self.bias is not None:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "mask": self.masks().astype(int).tolist(),
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
