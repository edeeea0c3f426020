"""Losses as negative log-likelihoods, and weight decay as a Gaussian prior (notes, chapter 1).

Training by a loss is maximum likelihood for some model of the targets: each common loss
is, up to a scale and a constant that do not move its minimum, the negative log-likelihood
(NLL) of a distribution whose location the network outputs.

* binary cross-entropy = Bernoulli NLL, exactly;
* mean squared error: Gaussian NLL = MSE / (2 sigma^2) + 1/2 log(2 pi sigma^2);
* mean absolute error: Laplace NLL = MAE / b + log(2 b);
* L2 weight decay = a zero-mean Gaussian prior on the weights, so minimising the
  regularised loss is maximum a posteriori (MAP) estimation (`l2_for_gaussian_prior`).

The functions give one NLL per example, in nats, written in `keras.ops` (any backend,
differentiable). An example's NLL is the sum over its D values (independent coordinates),
while Keras' losses average over the last axis; for examples of shape `(D,)` the
identities above hold per coordinate, i.e. with NLL / D. Inputs of rank 1 hold one value
per example.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

LOG_2PI = math.log(2.0 * math.pi)


def _per_example(elementwise: Any) -> Any:
    """Sums an elementwise NLL over every axis but the batch axis."""
    if len(elementwise.shape) <= 1:
        return elementwise
    return ops.sum(elementwise, axis=tuple(range(1, len(elementwise.shape))))


def bernoulli_nll(y: Any, p_or_logits: Any, from_logits: bool = False) -> Any:
    """Negative log-likelihood of binary targets under Bernoulli(p), per example.

    -log p(y | p) = -[y log p + (1 - y) log(1 - p)], which is the binary cross-entropy:
    BCE = Bernoulli NLL (Keras' `BinaryCrossentropy` is this NLL divided by D, the
    number of values per example). With `from_logits=True` the second argument is the
    logit l, p = sigmoid(l), and the NLL is computed stably as
    max(l, 0) - l y + log(1 + exp(-|l|)); its derivative in l is sigmoid(l) - y.
    Probabilities are clipped to [eps, 1 - eps] (`keras.config.epsilon()`), as Keras does.

    Args:
        y: tensor. Targets in {0, 1} (or in [0, 1]: the cross-entropy to Bernoulli(y)).
        p_or_logits: tensor, same shape. Probabilities p, or logits if `from_logits`.
        from_logits: bool. Whether the second argument holds logits. Defaults to False.

    Returns:
        Tensor of shape `(batch,)`: the NLL of each example in nats.

    Example:
    >>> import numpy as np
    >>> y = np.array([[1.0, 0.0]], "float32")
    >>> p = np.array([[0.8, 0.4]], "float32")
    >>> round(float(keras.ops.convert_to_numpy(bernoulli_nll(y, p))[0]), 4)
    0.734
    >>> round(float(-np.log(0.8) - np.log(0.6)), 4)
    0.734
    """
    y = ops.convert_to_tensor(y, dtype="float32")
    out = ops.convert_to_tensor(p_or_logits, dtype="float32")
    if from_logits:
        nll = ops.relu(out) - out * y + ops.log1p(ops.exp(-ops.abs(out)))
    else:
        eps = keras.config.epsilon()
        p = ops.clip(out, eps, 1.0 - eps)
        nll = -(y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p))
    return _per_example(nll)


def gaussian_nll(y: Any, mean: Any, std: Any = 1.0) -> Any:
    """Negative log-likelihood of real targets under N(mean, std^2), per example.

    -log N(y | mu, sigma^2) = (y - mu)^2 / (2 sigma^2) + 1/2 log(2 pi sigma^2) for each
    value. With a fixed sigma, per value:

        Gaussian NLL = MSE / (2 sigma^2) + 1/2 log(2 pi sigma^2),
        MSE = (2 sigma^2) * (Gaussian NLL) - sigma^2 log(2 pi sigma^2),

    so minimising the MSE is maximum likelihood for the mean of a Gaussian, whatever
    sigma is. A network may also output `std` (heteroscedastic noise; it must be > 0).

    Args:
        y: tensor. Targets.
        mean: tensor, same shape. Predicted means mu.
        std: float or tensor broadcastable to `y`. Standard deviation sigma > 0.
            Defaults to `1.0`.

    Returns:
        Tensor of shape `(batch,)`: the NLL of each example in nats.

    Example:
    >>> import numpy as np
    >>> nll = gaussian_nll(np.array([1.0], "float32"), np.array([0.0], "float32"), std=1.0)
    >>> round(float(keras.ops.convert_to_numpy(nll)[0]), 4)  # 1/2 + 1/2 log(2 pi)
    1.4189
    """
    y = ops.convert_to_tensor(y, dtype="float32")
    mean = ops.convert_to_tensor(mean, dtype="float32")
    std = ops.convert_to_tensor(std, dtype="float32")
    nll = ops.square(y - mean) / (2.0 * ops.square(std)) + ops.log(std) + 0.5 * LOG_2PI
    return _per_example(nll + ops.zeros_like(y))


def laplace_nll(y: Any, location: Any, scale: Any = 1.0) -> Any:
    """Negative log-likelihood of real targets under Laplace(location, scale), per example.

    The Laplace density is exp(-|y - mu| / b) / (2 b), so for each value

        Laplace NLL = |y - mu| / b + log(2 b),   MAE = b * (Laplace NLL - log(2 b)):

    minimising the mean absolute error is maximum likelihood for the location (the
    median) of a Laplace distribution, with heavier tails than the Gaussian, hence its
    robustness to outliers.

    Args:
        y: tensor. Targets.
        location: tensor, same shape. Predicted locations mu.
        scale: float or tensor broadcastable to `y`. Scale b > 0. Defaults to `1.0`.

    Returns:
        Tensor of shape `(batch,)`: the NLL of each example in nats.

    Example:
    >>> import numpy as np
    >>> nll = laplace_nll(np.array([3.0], "float32"), np.array([1.0], "float32"), scale=0.5)
    >>> round(float(keras.ops.convert_to_numpy(nll)[0]), 4)  # 2 / 0.5 + log(1)
    4.0
    """
    y = ops.convert_to_tensor(y, dtype="float32")
    location = ops.convert_to_tensor(location, dtype="float32")
    scale = ops.convert_to_tensor(scale, dtype="float32")
    nll = ops.abs(y - location) / scale + ops.log(2.0 * scale)
    return _per_example(nll + ops.zeros_like(y))


def l2_for_gaussian_prior(noise_std: float, prior_std: float, num_examples: int) -> float:
    """The `keras.regularizers.L2` factor that makes MSE training MAP estimation.

    Model: y_i = f(x_i; w) + noise, noise ~ N(0, sigma^2), and a prior w ~ N(0, tau^2 I).
    The negative log-posterior over N examples is, up to a constant,

        sum_i (y_i - f(x_i; w))^2 / (2 sigma^2) + ||w||^2 / (2 tau^2).

    Multiplying by 2 sigma^2 / N (which does not move the minimum) gives what Keras
    minimises with `loss="mse"` (mean over the N examples) and
    `kernel_regularizer=keras.regularizers.L2(lam)` (penalty lam * ||w||^2):

        MSE(w) + lam * ||w||^2   with   lam = sigma^2 / (N tau^2).

    For a linear model f = X w this MAP estimate is ridge regression,
    w = (X^T X + (sigma^2 / tau^2) I)^-1 X^T y. The factor is only exact when the loss
    is averaged over all N examples, i.e. full-batch (for minibatches of any size the
    expected loss is the same, so the minimum is too).

    Args:
        noise_std: float. sigma, the standard deviation of the observation noise.
        prior_std: float. tau, the standard deviation of the prior on each weight.
        num_examples: int. N, the number of training examples.

    Returns:
        The L2 factor lam = sigma^2 / (N tau^2).

    Example:
    >>> l2_for_gaussian_prior(noise_std=0.5, prior_std=1.0, num_examples=100)
    0.0025
    """
    if noise_std <= 0 or prior_std <= 0:
        raise ValueError(
            f"noise_std and prior_std must be > 0, got {noise_std!r} and {prior_std!r}."
        )
    if int(num_examples) < 1:
        raise ValueError(f"num_examples must be a positive int, got {num_examples!r}.")
    return float(noise_std) ** 2 / (int(num_examples) * float(prior_std) ** 2)
