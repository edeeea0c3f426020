"""Glow's invertible 1x1 convolution: a learned linear map of the channels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from mp_keras.layers._bijector import Bijector, per_example_sum


def random_rotation(channels: int, seed: int | None = None) -> np.ndarray:
    """A random `(channels, channels)` rotation: orthogonal, determinant +1 (NumPy).

    The Q of the QR decomposition of a Gaussian matrix, its columns' signs fixed by R's
    diagonal (so that Q is uniform over the orthogonal group), then one column negated
    if needed to make the determinant +1.

    Example:
    >>> w = random_rotation(3, seed=0)
    >>> bool(np.allclose(w @ w.T, np.eye(3), atol=1e-6)), round(float(np.linalg.det(w)), 6)
    (True, 1.0)
    """
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(int(channels), int(channels))))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.astype("float32")


def _constant(value: np.ndarray) -> Any:
    """An initializer that returns `value` (the shape is the variable's own)."""
    return lambda shape, dtype=None: ops.convert_to_tensor(np.reshape(value, shape), dtype=dtype)


@keras.saving.register_keras_serializable(package="mp_keras")
class Invertible1x1Conv(Bijector):
    """Invertible 1x1 convolution: the same learned C x C matrix W at every position.

    Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions",
    NeurIPS 2018, section 3.2 (notes, 7.5): a learned generalisation of the channel
    permutations between couplings. In our convention (forward = latent -> data) the
    data-to-latent direction, `inverse`, is the convolution z = W x at each position, with
    log|det df^-1/dx| = H * W * log|det W| (H * W = the number of positions; 1 for
    vectors); `forward` applies W^-1 and returns the negative. W starts as a random
    rotation (seeded, log-det 0).

    With `lu=True` (the paper's LU decomposition), W = P L (U + diag(sign_s * exp(log_s)))
    with P a fixed permutation, L unit lower triangular, U strictly upper triangular
    (both stored as full matrices and masked) and log|det W| = sum(log_s): no determinant
    is computed. P and sign_s are fixed (non-trainable) at the LU decomposition of the
    initial rotation. With `lu=False`, W itself is trained and its log-determinant is
    `ops.slogdet`. Both use `ops.inv` for `forward`; the exported graphs compute W^-1 and
    log|det W| from constants, which the TFLite converter folds (builtin ops only).

    Args:
        lu: bool. LU-decomposed parametrisation. Defaults to `True`.
        seed: int or None. Seed of the initial rotation. Defaults to `None`.

    Example:
    >>> import numpy as np
    >>> layer = Invertible1x1Conv(seed=0)
    >>> x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
    >>> z, log_det = layer.inverse(x)
    >>> back, _ = layer.forward(z)
    >>> tuple(z.shape), bool(np.allclose(ops.convert_to_numpy(back), x, atol=1e-5))
    ((2, 4, 4, 3), True)
    >>> np.round(ops.convert_to_numpy(log_det), 4).tolist()  # a rotation: volume kept
    [0.0, 0.0]
    """

    def __init__(self, lu: bool = True, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(lu, (bool, np.bool_)):
            raise ValueError(f"Invertible1x1Conv: lu must be True or False; got {lu!r}.")
        self.lu = bool(lu)
        self.seed = seed

    def build(self, input_shape: Sequence[int | None]) -> None:
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                f"Invertible1x1Conv takes (batch, ..., channels) with a known channel "
                f"count; got shape {tuple(input_shape)}."
            )
        c = int(input_shape[-1])
        self.channels = c
        rotation = random_rotation(c, self.seed)
        if not self.lu:
            self.w = self.add_weight(shape=(c, c), initializer=_constant(rotation), name="w")
            return
        permutation, lower, upper = _lu_decomposition(rotation)
        s = np.diag(upper)
        fixed = dict(trainable=False)
        self.permutation = self.add_weight(
            shape=(c, c), initializer=_constant(permutation), name="permutation", **fixed
        )
        self.sign_s = self.add_weight(
            shape=(c,), initializer=_constant(np.sign(s)), name="sign_s", **fixed
        )
        self.lower = self.add_weight(shape=(c, c), initializer=_constant(lower), name="lower")
        self.upper = self.add_weight(
            shape=(c, c), initializer=_constant(np.triu(upper, 1)), name="upper"
        )
        self.log_s = self.add_weight(
            shape=(c,), initializer=_constant(np.log(np.abs(s))), name="log_s"
        )
        self._lower_mask = np.tril(np.ones((c, c), "float32"), -1)
        self._upper_mask = np.triu(np.ones((c, c), "float32"), 1)

    def kernel(self) -> Any:
        """The dense W, `(C, C)`: z = W x at each position."""
        if not self.lu:
            return ops.convert_to_tensor(self.w)
        eye = ops.eye(self.channels, dtype=self.log_s.dtype)
        lower = self.lower * self._lower_mask + eye
        diagonal = eye * (self.sign_s * ops.exp(self.log_s))  # diag(v): v_j at (j, j)
        upper = self.upper * self._upper_mask + diagonal
        return ops.matmul(self.permutation, ops.matmul(lower, upper))

    def log_abs_det(self) -> Any:
        """log|det W|, a scalar."""
        if self.lu:
            return ops.sum(self.log_s)
        return ops.slogdet(self.w)[1]

    def _apply(self, v: Any, matrix: Any) -> Any:
        """matrix @ v at each position (a 1x1 convolution), via one flat matmul."""
        shape = tuple(v.shape[1:])
        flat = ops.reshape(v, (-1, self.channels))
        return ops.reshape(ops.matmul(flat, ops.transpose(matrix)), (-1, *shape))

    def _inverse(self, x: Any) -> tuple[Any, Any]:
        z = self._apply(x, self.kernel())
        return z, per_example_sum(ops.zeros_like(x[..., :1]) + self.log_abs_det())

    def _forward(self, z: Any) -> tuple[Any, Any]:
        x = self._apply(z, ops.inv(self.kernel()))
        return x, -per_example_sum(ops.zeros_like(z[..., :1]) + self.log_abs_det())

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lu": self.lu, "seed": self.seed}


def _lu_decomposition(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(P, L, U)` with w = P L U: P a permutation, L unit lower, U upper triangular.

    Gaussian elimination with partial pivoting, in float64.
    """
    n = w.shape[0]
    u = w.astype("float64").copy()
    lower = np.eye(n)
    order = np.arange(n)
    for k in range(n - 1):
        pivot = k + int(np.argmax(np.abs(u[k:, k])))
        if pivot != k:  # swap rows k and pivot of U, of L's finished columns and the order
            u[[k, pivot]] = u[[pivot, k]]
            lower[[k, pivot], :k] = lower[[pivot, k], :k]
            order[[k, pivot]] = order[[pivot, k]]
        factors = u[k + 1 :, k] / u[k, k]
        lower[k + 1 :, k] = factors
        u[k + 1 :] -= factors[:, None] * u[k]
    # Row i of L U is row order[i] of w: w = P L U with P[order[i], i] = 1.
    permutation = np.zeros((n, n))
    permutation[order, np.arange(n)] = 1.0
    return permutation.astype("float32"), lower.astype("float32"), np.triu(u).astype("float32")
