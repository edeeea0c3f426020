"""The multi-scale architecture's factor-out (RealNVP, Dinh et al. 2017, 3.6; Glow's split).

Same convention as every bijector (mp_keras/layers/bijectors.py): `forward` is latent to
data, `inverse` data to latent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from mp_keras.layers._bijector import Bijector
from mp_keras.layers.bijectors import Squeeze


@keras.saving.register_keras_serializable(package="mp_keras")
class FactorOut(Bijector):
    """Half of the channels go straight to the latent; `inner` transforms the other half.

    Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017, 3.6
    (Glow's "split"; notes, 7.5). Data to latent (`inverse`), on images (batch, H, W, C)
    with C even: the FIRST C/2 channels are factored out, unchanged, into the latent's
    first C/2 channels; the LAST C/2 channels continue through `inner.inverse`, and its
    latent comes back to shape (H, W, C/2) as the latent's last C/2 channels, so the
    latent has the input's shape and the flow keeps one standard-normal base. The way
    back is a fixed permutation (log-det 0): if `inner`'s latent is (H/2^k, W/2^k,
    4^k C/2) (k squeezes), it is unsqueezed k times (`Squeeze.forward`), so each latent
    value sits where the squeezes took it from; any other shape of the same size is
    reshaped in row-major order. log|det| is `inner`'s; `forward` is the exact reverse.

    A learned prior of the factored half, Glow's p(z_out | h) = N(mu(h), sigma(h)) with
    h the continuing half, is the change of variables of an `AffineCoupling` placed just
    before the FactorOut on the data side (in a `Chain`'s latent-to-data list, just after
    it) with mask `channel_mask(C, 1)`: that mask keeps (and conditions on) the last C/2
    channels, the continuing half, and its inverse moves the first C/2, the factored
    half, z = (x - mu) exp(-log sigma). Its zero-initialised conditioner starts it as
    N(0, I).

    Args:
        inner: Bijector (or its serialised config) over images (batch, H, W, C/2):
            typically a `Chain` that starts, on the data side, with a `Squeeze`, and may
            hold another FactorOut.

    Example:
    >>> import numpy as np
    >>> from mp_keras.layers.bijectors import Squeeze
    >>> layer = FactorOut(Squeeze())
    >>> x = np.arange(32, dtype="float32").reshape(1, 4, 4, 2)
    >>> z, log_det = layer.inverse(x)
    >>> tuple(z.shape), ops.convert_to_numpy(log_det).tolist()
    ((1, 4, 4, 2), [0.0])
    >>> bool(np.array_equal(ops.convert_to_numpy(z), x))  # squeeze, then unsqueeze
    True
    """

    def __init__(self, inner: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(inner, dict):
            inner = keras.saving.deserialize_keras_object(inner)
        if not isinstance(inner, Bijector):
            raise ValueError(f"FactorOut: inner must be a Bijector; got {type(inner).__name__}.")
        self.inner = inner
        self._unsqueeze = Squeeze(name="unsqueeze")
        self.inner_latent_shape: tuple[int, ...] | None = None

    def build(self, input_shape: Sequence[int | None]) -> None:
        self._check(tuple(input_shape), "input")
        h, w, c = (int(d) for d in input_shape[1:])
        # A symbolic pass builds `inner` and gives its latent's shape (needed by
        # `forward`) without computing anything.
        latent, _ = self.inner.inverse(keras.KerasTensor((None, h, w, c // 2)))
        shape = tuple(int(d) for d in latent.shape[1:])
        if math.prod(shape) != h * w * (c // 2):
            raise ValueError(
                f"FactorOut: inner maps (H, W, C/2) = {(h, w, c // 2)} to a latent of shape "
                f"{shape}, of another size; it must keep the number of dimensions."
            )
        self.inner_latent_shape = shape
        self._unsqueezes = -1  # the number of squeezes to undo; -1: a plain reshape
        k = 0
        while h % 2**k == 0 and w % 2**k == 0:
            if shape == (h // 2**k, w // 2**k, (c // 2) * 4**k):
                self._unsqueezes = k
                break
            k += 1

    def _check(self, shape: tuple[Any, ...], side: str) -> None:
        if len(shape) != 4:
            raise ValueError(
                f"FactorOut takes images (batch, height, width, channels); got {side} of "
                f"shape {shape}."
            )
        if shape[-1] is None or int(shape[-1]) % 2:
            raise ValueError(
                f"FactorOut splits the channels in two halves, so needs an even number of "
                f"channels; got {side} of shape {shape}."
            )

    def _to_input_half(self, latent: Any, h: int, w: int, c: int) -> Any:
        """The inner latent, brought back to (batch, h, w, c): a permutation."""
        if self._unsqueezes < 0:
            return ops.reshape(latent, (-1, h, w, c))
        for _ in range(self._unsqueezes):
            latent, _ = self._unsqueeze.forward(latent)
        return latent

    def _to_inner_latent(self, v: Any) -> Any:
        """The reverse of `_to_input_half`."""
        if self._unsqueezes < 0:
            return ops.reshape(v, (-1, *self.inner_latent_shape))
        for _ in range(self._unsqueezes):
            v, _ = self._unsqueeze.inverse(v)
        return v

    def _inverse(self, x: Any) -> tuple[Any, Any]:
        self._check(tuple(x.shape), "input")
        h, w, c = x.shape[1:]
        half = c // 2
        out, kept = x[..., :half], x[..., half:]  # (batch, h, w, c/2) each
        latent, log_det = self.inner.inverse(kept)
        z = ops.concatenate([out, self._to_input_half(latent, h, w, half)], axis=-1)
        return z, log_det

    def _forward(self, z: Any) -> tuple[Any, Any]:
        self._check(tuple(z.shape), "latent")
        half = z.shape[-1] // 2
        out, kept = z[..., :half], z[..., half:]
        x_kept, log_det = self.inner.forward(self._to_inner_latent(kept))
        return ops.concatenate([out, x_kept], axis=-1), log_det

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["inner"] = keras.saving.serialize_keras_object(self.inner)
        return config
