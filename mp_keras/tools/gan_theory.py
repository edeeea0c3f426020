"""The theory of GANs (notes, 8.1 and the Nash remark of 8.2), checked numerically in 1-D.

Everything here is about one-dimensional densities whose values are known, so each
statement of the notes can be computed rather than believed:

* **Theorem 2, the optimal discriminator.** For a fixed generator,
  D*(x) = p_data(x) / (p_data(x) + p_model(x)) (`optimal_discriminator`); a small
  Keras MLP trained by `model.fit` with binary cross-entropy on samples of p_data
  (label 1) and p_model (label 0) converges to it (`train_discriminator`,
  `discriminator_error`).
* **Theorem 3, the global optimum.** V(G, D*) = 2 JSD(p_data || p_model) - log 4, which
  is -log 4 exactly when p_model = p_data (`value_at_optimum`, `jensen_shannon`, both by
  quadrature on a fine grid, in log space so that no density underflows).
* **JS against Wasserstein on (almost) disjoint supports** (end of 8.2). With
  p_data = N(0, s^2) and p_model = N(theta, s^2), once theta is a few s the JSD
  saturates at log 2 and the generator's gradient d V(G_theta, D*) / d theta vanishes,
  while W1 = |theta| keeps a gradient of 1 (`shift_curves`, `wasserstein1`,
  `wasserstein1_from_samples`).
* **The Nash equilibrium of min_x max_y x y is not found by simultaneous gradient
  steps**: they spiral out, the distance to (0, 0) growing by exactly sqrt(1 + eta^2)
  per step, while alternating steps stay on a bounded orbit
  (`simultaneous_gradient_play`, `alternating_gradient_play`).

The densities and quadratures are NumPy (float64); only the trained discriminator is a
Keras model, built from `keras.layers` and trained with `model.fit`, so it runs on every
backend. The figures and doc blocks come from `apps/benchmarks/gan_theory.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

LOG4 = math.log(4.0)


class GaussianMixture1D:
    """A one-dimensional Gaussian mixture sum_k w_k N(mu_k, sigma_k^2), in NumPy float64.

    Args:
        means: sequence of floats. Component means mu_k.
        stds: sequence of floats (or one float for all). Component standard deviations
            sigma_k > 0.
        weights: sequence of floats or None. Mixture weights w_k >= 0, normalised to sum
            to 1. Defaults to equal weights.

    Example:
    >>> p = GaussianMixture1D([-1.0, 1.0], 0.5)
    >>> round(float(p.pdf(np.array([0.0]))[0]), 4), p.sample(3, seed=0).shape
    (0.1080, (3,))
    """

    def __init__(
        self,
        means: Sequence[float] | float,
        stds: Sequence[float] | float,
        weights: Sequence[float] | None = None,
    ) -> None:
        means = np.atleast_1d(np.asarray(means, dtype="float64"))
        stds = np.broadcast_to(np.asarray(stds, dtype="float64"), means.shape).copy()
        weights = np.ones_like(means) if weights is None else np.asarray(weights, "float64")
        if means.ndim != 1 or weights.shape != means.shape:
            raise ValueError(
                "means, stds and weights must be 1-D sequences of one length, got shapes "
                f"{means.shape}, {stds.shape} and {weights.shape}."
            )
        if not np.all(stds > 0) or not np.all(weights >= 0) or weights.sum() <= 0:
            raise ValueError(
                f"stds must be > 0 and weights >= 0 with a positive sum, got {stds.tolist()} "
                f"and {weights.tolist()}."
            )
        self.means = means
        self.stds = stds
        self.weights = weights / weights.sum()

    def __repr__(self) -> str:
        return (
            f"GaussianMixture1D(means={self.means.tolist()}, stds={self.stds.tolist()}, "
            f"weights={self.weights.tolist()})"
        )

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """log p(x), elementwise, computed with log-sum-exp (no underflow far out)."""
        x = np.asarray(x, dtype="float64")[..., None]  # (..., 1) against (components,)
        z = (x - self.means) / self.stds
        with np.errstate(divide="ignore"):
            log_terms = (
                np.log(self.weights) - 0.5 * z**2 - np.log(self.stds * math.sqrt(2 * math.pi))
            )
        top = log_terms.max(axis=-1, keepdims=True)
        return (top + np.log(np.exp(log_terms - top).sum(axis=-1, keepdims=True)))[..., 0]

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """p(x), elementwise."""
        return np.exp(self.log_pdf(x))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """P(X <= x), elementwise."""
        x = np.asarray(x, dtype="float64")[..., None]
        erf = np.vectorize(math.erf, otypes=["float64"])
        z = (x - self.means) / (self.stds * math.sqrt(2.0))
        return (self.weights * 0.5 * (1.0 + erf(z))).sum(axis=-1)

    def sample(self, num: int, seed: int | None = None) -> np.ndarray:
        """`num` independent draws, `(num,)` float64."""
        if int(num) < 0:
            raise ValueError(f"num must be >= 0, got {num}.")
        rng = np.random.default_rng(seed)
        component = rng.choice(len(self.means), size=int(num), p=self.weights)
        return rng.normal(self.means[component], self.stds[component])

    def support(self, width: float = 12.0) -> tuple[float, float]:
        """An interval holding all but a negligible mass: each mean +- `width` stds."""
        return (
            float(np.min(self.means - width * self.stds)),
            float(np.max(self.means + width * self.stds)),
        )


def _check_mixtures(*mixtures: Any) -> None:
    for p in mixtures:
        if not isinstance(p, GaussianMixture1D):
            raise ValueError(f"Expected a GaussianMixture1D, got {type(p).__name__}.")


def optimal_discriminator(
    p_data: GaussianMixture1D, p_model: GaussianMixture1D, x: np.ndarray
) -> np.ndarray:
    """D*(x) = p_data(x) / (p_data(x) + p_model(x)) (notes, Theorem 2), elementwise.

    Computed as sigmoid(log p_data - log p_model), which stays exact where both densities
    underflow.

    Example:
    >>> p, q = GaussianMixture1D(0.0, 1.0), GaussianMixture1D(1.0, 1.0)
    >>> optimal_discriminator(p, q, np.array([0.5, 0.5 + np.log(3.0)])).round(4).tolist()
    [0.5, 0.25]
    """
    _check_mixtures(p_data, p_model)
    logit = p_data.log_pdf(x) - p_model.log_pdf(x)
    return 0.5 * (1.0 + np.tanh(0.5 * logit))  # sigmoid without overflow


def quadrature_grid(
    p_data: GaussianMixture1D, p_model: GaussianMixture1D, points_per_std: int = 40
) -> np.ndarray:
    """A uniform grid over both supports, `points_per_std` points per smallest std.

    The integrands are smooth and decay like Gaussians, so the plain Riemann sum on a
    uniform grid that covers the mass converges faster than any power of the step.
    """
    _check_mixtures(p_data, p_model)
    low_d, high_d = p_data.support()
    low_m, high_m = p_model.support()
    low, high = min(low_d, low_m), max(high_d, high_m)
    step = min(p_data.stds.min(), p_model.stds.min()) / int(points_per_std)
    num = math.ceil((high - low) / step) + 1
    if num > 5_000_000:
        raise ValueError(
            f"The supports are {high - low:.3g} wide for a smallest std of "
            f"{step * points_per_std:.3g}: {num} grid points; use closer or wider components."
        )
    return np.linspace(low, high, num)


def _log_sigmoid(t: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -t)


def value_at_optimum(p_data: GaussianMixture1D, p_model: GaussianMixture1D) -> float:
    """V(G, D*) = E_data[log D*(x)] + E_model[log(1 - D*(x))], by quadrature.

    Example:
    >>> p = GaussianMixture1D(0.0, 1.0)
    >>> abs(value_at_optimum(p, p) + math.log(4.0)) < 1e-9  # Theorem 3: -log 4 at p = q
    True
    """
    x = quadrature_grid(p_data, p_model)
    log_d, log_m = p_data.log_pdf(x), p_model.log_pdf(x)
    integrand = np.exp(log_d) * _log_sigmoid(log_d - log_m)
    integrand += np.exp(log_m) * _log_sigmoid(log_m - log_d)
    return float(integrand.sum() * (x[1] - x[0]))


def jensen_shannon(p: GaussianMixture1D, q: GaussianMixture1D) -> float:
    """JSD(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2, in nats, by quadrature.

    Example:
    >>> p, q = GaussianMixture1D(0.0, 0.1), GaussianMixture1D(5.0, 0.1)
    >>> round(jensen_shannon(p, q) / math.log(2.0), 6)  # disjoint supports: log 2
    1.0
    """
    x = quadrature_grid(p, q)
    log_p, log_q = p.log_pdf(x), q.log_pdf(x)
    log_m = np.logaddexp(log_p, log_q) - math.log(2.0)
    integrand = 0.5 * np.exp(log_p) * (log_p - log_m) + 0.5 * np.exp(log_q) * (log_q - log_m)
    return float(integrand.sum() * (x[1] - x[0]))


def wasserstein1(p: GaussianMixture1D, q: GaussianMixture1D) -> float:
    """W1(p, q) = integral |F_p(x) - F_q(x)| dx (the 1-D formula), by quadrature.

    Example:
    >>> round(wasserstein1(GaussianMixture1D(0.0, 0.1), GaussianMixture1D(3.0, 0.1)), 6)
    3.0
    """
    x = quadrature_grid(p, q, points_per_std=10)
    return float(np.abs(p.cdf(x) - q.cdf(x)).sum() * (x[1] - x[0]))


def wasserstein1_from_samples(a: np.ndarray, b: np.ndarray) -> float:
    """W1 between two equal-size 1-D samples: mean |sorted(a) - sorted(b)|.

    In 1-D the optimal transport matches quantiles, so W1 = integral_0^1 |F_a^-1(u) -
    F_b^-1(u)| du, which for two empirical measures of n points is the mean distance
    between their order statistics.

    Example:
    >>> wasserstein1_from_samples(np.array([0.0, 1.0]), np.array([3.0, 2.0]))
    2.0
    """
    a, b = np.asarray(a, "float64").reshape(-1), np.asarray(b, "float64").reshape(-1)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"Expected two non-empty samples of one size, got {a.size} and {b.size}.")
    return float(np.abs(np.sort(a) - np.sort(b)).mean())


def generator_gradient(theta: float, std: float, data_mean: float = 0.0) -> float:
    """d V(G_theta, D*) / d theta for p_data = N(data_mean, std^2), p_model = N(theta, std^2).

    Analytic, by the envelope theorem: D* maximises V for every theta, so the derivative
    through D* vanishes and only p_model moves,
    dV/dtheta = integral d p_model(x)/d theta log(1 - D*(x)) dx
              = integral p_model(x) (x - theta) / std^2 log(1 - D*(x)) dx.

    Example:
    >>> g = [generator_gradient(t, 1.0) for t in (1.0, 10.0)]
    >>> bool(g[0] > 0.1), bool(abs(g[1]) < 1e-5)  # the gradient vanishes far apart
    (True, True)
    """
    if std <= 0:
        raise ValueError(f"std must be > 0, got {std}.")
    p_data, p_model = GaussianMixture1D(data_mean, std), GaussianMixture1D(theta, std)
    x = quadrature_grid(p_data, p_model)
    log_d, log_m = p_data.log_pdf(x), p_model.log_pdf(x)
    integrand = np.exp(log_m) * (x - theta) / std**2 * _log_sigmoid(log_m - log_d)
    return float(integrand.sum() * (x[1] - x[0]))


def shift_curves(
    thetas: Sequence[float], std: float = 0.05, num_samples: int = 4096, seed: int = 0
) -> dict[str, np.ndarray]:
    """JSD and W1 between N(0, std^2) and N(theta, std^2), and their theta-gradients.

    Args:
        thetas: sequence of floats. Shifts of the model's Gaussian.
        std: float. The common standard deviation s (small: thin, nearly disjoint
            Gaussians once theta is a few s).
        num_samples: int. Samples per density for the sample estimate of W1.
        seed: int. Seed of those samples.

    Returns:
        A dict of `(len(thetas),)` arrays: `"theta"`, `"jsd"`, `"value"` (V(G, D*) =
        2 JSD - log 4), `"value_grad"` (analytic d V / d theta, `generator_gradient`),
        `"w1"` (quadrature), `"w1_grad"` (central finite difference of the quadrature,
        step std / 10) and `"w1_samples"` (the quantile formula on samples).

    Example:
    >>> curves = shift_curves([0.05, 0.5], std=0.05, num_samples=256)
    >>> curves["w1"].round(3).tolist(), curves["w1_grad"].round(3).tolist()
    ([0.05, 0.5], [1.0, 1.0])
    """
    thetas = np.asarray(thetas, dtype="float64").reshape(-1)
    if std <= 0 or thetas.size == 0:
        raise ValueError(f"Expected std > 0 and at least one theta, got {std} and {thetas}.")
    p_data = GaussianMixture1D(0.0, std)
    data_samples = p_data.sample(num_samples, seed=seed)
    noise = np.random.default_rng(seed + 1).normal(0.0, std, size=int(num_samples))
    step = std / 10.0
    out: dict[str, list[float]] = {k: [] for k in ("jsd", "value", "value_grad", "w1")}
    out.update(w1_grad=[], w1_samples=[])
    for theta in thetas:
        p_model = GaussianMixture1D(theta, std)
        out["jsd"].append(jensen_shannon(p_data, p_model))
        out["value"].append(value_at_optimum(p_data, p_model))
        out["value_grad"].append(generator_gradient(theta, std))
        out["w1"].append(wasserstein1(p_data, p_model))
        plus = wasserstein1(p_data, GaussianMixture1D(theta + step, std))
        minus = wasserstein1(p_data, GaussianMixture1D(theta - step, std))
        out["w1_grad"].append((plus - minus) / (2 * step))
        out["w1_samples"].append(wasserstein1_from_samples(data_samples, theta + noise))
    return {"theta": thetas, **{k: np.asarray(v) for k, v in out.items()}}


def build_discriminator(
    units: Sequence[int] = (16,),
    center: float = 0.0,
    scale: float = 1.0,
    seed: int = 0,
    activation: str = "tanh",
) -> keras.Model:
    """A small MLP discriminator x `(batch, 1)` -> D(x) in (0, 1) `(batch, 1)`.

    Args:
        units: sequence of ints. Hidden widths.
        center: float. Subtracted from x before the first layer (the data's centre).
        scale: float. x is divided by it (the data's spread), so the MLP sees O(1) inputs.
        seed: int. Seed of the initial weights.
        activation: str. Hidden non-linearity, a Keras activation name. Defaults to tanh.

    Example:
    >>> model = build_discriminator((4,))
    >>> tuple(model(np.zeros((3, 1), "float32")).shape), model.count_params()
    ((3, 1), 13)
    """
    units = [int(u) for u in units]
    if not units or min(units) < 1 or scale <= 0:
        raise ValueError(f"Expected positive hidden units and scale > 0, got {units}, {scale}.")
    inputs = keras.Input((1,))
    h = keras.layers.Rescaling(1.0 / scale, offset=-center / scale)(inputs)
    dense = [keras.layers.Dense(width, activation=activation) for width in units]
    dense.append(keras.layers.Dense(1, activation="sigmoid"))
    for layer in dense:
        h = layer(h)
    # Glorot-uniform kernels drawn by NumPy, not by Keras' initializers, so every backend
    # starts from the same weights and trains to the same D up to rounding.
    rng = np.random.default_rng(seed)
    fan_in = 1
    for layer in dense:
        fan_out = layer.units
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        kernel = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype("float32")
        layer.set_weights([kernel, np.zeros(fan_out, "float32")])
        fan_in = fan_out
    return keras.Model(inputs, h, name="discriminator")


def train_discriminator(
    p_data: GaussianMixture1D,
    p_model: GaussianMixture1D,
    num_samples: int = 4096,
    epochs: int = 20,
    batch_size: int = 256,
    learning_rate: float = 2e-2,
    units: Sequence[int] = (16,),
    seed: int = 0,
    activation: str = "tanh",
) -> keras.Model:
    """Trains D alone (G fixed) by `model.fit` with binary cross-entropy to convergence.

    The training set is `num_samples` draws of p_data labelled 1 and as many of p_model
    labelled 0: with equal classes, the minimiser of the expected cross-entropy is the
    posterior P(data | x) = D*(x) of Theorem 2.

    Args:
        p_data: GaussianMixture1D. The data density (label 1).
        p_model: GaussianMixture1D. The generator's density (label 0).
        num_samples: int. Draws from each density.
        epochs: int. Passes over the 2 * num_samples points.
        batch_size: int. Minibatch size.
        learning_rate: float. Adam's step size (cosine-decayed to 0 over training, so
            the last steps average out the minibatch noise).
        units: sequence of ints. Hidden widths of the MLP.
        seed: int. Seed of the samples, the initial weights and the shuffling.
        activation: str. Hidden non-linearity of the MLP.

    Returns:
        The trained `keras.Model`, x `(batch, 1)` -> D(x) `(batch, 1)`.

    Example:
    >>> p, q = GaussianMixture1D(0.0, 1.0), GaussianMixture1D(1.0, 1.0)
    >>> d = train_discriminator(p, q, num_samples=256, epochs=1, units=(4,))
    >>> d.predict(np.zeros((2, 1)), verbose=0).shape
    (2, 1)
    """
    _check_mixtures(p_data, p_model)
    if int(num_samples) < 1 or int(epochs) < 1 or int(batch_size) < 1:
        raise ValueError(
            f"num_samples, epochs and batch_size must be >= 1, got {num_samples}, {epochs} and "
            f"{batch_size}."
        )
    x = np.concatenate(
        [p_data.sample(num_samples, seed=seed), p_model.sample(num_samples, seed=seed + 1)]
    )
    y = np.concatenate([np.ones(num_samples), np.zeros(num_samples)])
    model = build_discriminator(
        units, center=float(x.mean()), scale=float(x.std()), seed=seed, activation=activation
    )
    # Shuffled by NumPy, one permutation per epoch, and fed as one long epoch: the same
    # minibatches on every backend (Keras' own shuffling draws from the backend's RNG).
    rng = np.random.default_rng(seed + 2)
    order = np.concatenate([rng.permutation(len(x)) for _ in range(int(epochs))])
    x, y = x[order, None].astype("float32"), y[order, None].astype("float32")
    steps = math.ceil(len(x) / int(batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="binary_crossentropy")
    model.fit(x, y, batch_size=int(batch_size), epochs=1, shuffle=False, verbose=0)
    return model


def evaluation_grid(
    p_data: GaussianMixture1D,
    p_model: GaussianMixture1D,
    num: int = 801,
    threshold: float = 0.01,
) -> np.ndarray:
    """The points of a uniform grid where (p_data + p_model)(x) >= threshold x its maximum.

    D*(x) is only pinned down by samples where one of the densities has mass; far out (or
    in a gap between modes) both are ~0 and any D fits the data equally well. The grid of
    `num` points spans both densities' means +- 4 stds; the result may have gaps.

    Example:
    >>> x = evaluation_grid(GaussianMixture1D([-3.0, 3.0], 0.5), GaussianMixture1D(3.0, 0.5))
    >>> bool(x.min() < -2.5), bool(x.max() > 2.5), bool(np.all(np.abs(x) > 1))  # no gap
    (True, True, True)
    """
    _check_mixtures(p_data, p_model)
    if int(num) < 2 or not 0 <= threshold < 1:
        raise ValueError(f"Expected num >= 2 and 0 <= threshold < 1, got {num}, {threshold}.")
    low = min(p_data.support(4.0)[0], p_model.support(4.0)[0])
    high = max(p_data.support(4.0)[1], p_model.support(4.0)[1])
    x = np.linspace(low, high, int(num))
    mass = p_data.pdf(x) + p_model.pdf(x)
    return x[mass >= threshold * mass.max()]


def discriminator_error(
    model: keras.Model, p_data: GaussianMixture1D, p_model: GaussianMixture1D, x: np.ndarray
) -> float:
    """max_x |D(x) - D*(x)| over the points `x` (e.g. from `evaluation_grid`)."""
    x = np.asarray(x, dtype="float64").reshape(-1)
    trained = np.asarray(model.predict(x[:, None].astype("float32"), verbose=0), "float64")
    return float(np.abs(trained[:, 0] - optimal_discriminator(p_data, p_model, x)).max())


def _gradient_play(x0: float, y0: float, eta: float, steps: int, alternate: bool) -> np.ndarray:
    """Gradient descent in x, ascent in y, on x y: d(xy)/dx = y and d(xy)/dy = x."""
    if eta <= 0 or int(steps) < 0:
        raise ValueError(f"Expected eta > 0 and steps >= 0, got {eta} and {steps}.")
    path = np.empty((int(steps) + 1, 2))
    path[0] = x0, y0
    for t in range(int(steps)):
        x, y = path[t]
        new_x = x - eta * y
        path[t + 1] = new_x, y + eta * (new_x if alternate else x)
    return path


def simultaneous_gradient_play(
    x0: float = 1.0, y0: float = 0.0, eta: float = 0.1, steps: int = 100
) -> np.ndarray:
    """Simultaneous gradient descent-ascent on min_x max_y x y, `(steps + 1, 2)` points.

    Both players step from the same point: (x, y) <- (x - eta y, y + eta x), a rotation
    scaled by sqrt(1 + eta^2), so the iterates spiral away from the Nash equilibrium
    (0, 0) by that exact factor per step, for every step size.

    Example:
    >>> path = simultaneous_gradient_play(1.0, 0.0, eta=0.5, steps=2)
    >>> path.tolist()
    [[1.0, 0.0], [1.0, 0.5], [0.75, 1.0]]
    """
    return _gradient_play(x0, y0, eta, steps, alternate=False)


def alternating_gradient_play(
    x0: float = 1.0, y0: float = 0.0, eta: float = 0.1, steps: int = 100
) -> np.ndarray:
    """Alternating gradient descent-ascent on min_x max_y x y, `(steps + 1, 2)` points.

    x steps first, then y steps against the new x: x' = x - eta y, y' = y + eta x'.
    The map has determinant 1 and conserves Q(x, y) = x^2 + y^2 - eta x y, so for
    eta < 2 the iterates stay on an ellipse (`alternating_invariant`): bounded, but
    they never converge to (0, 0) either.

    Example:
    >>> path = alternating_gradient_play(1.0, 0.0, eta=0.5, steps=2)
    >>> path.tolist()
    [[1.0, 0.0], [1.0, 0.5], [0.75, 0.875]]
    """
    return _gradient_play(x0, y0, eta, steps, alternate=True)


def alternating_invariant(path: np.ndarray, eta: float) -> np.ndarray:
    """Q = x^2 + y^2 - eta x y at each point of an alternating path, `(len(path),)`.

    Q is constant along `alternating_gradient_play(..., eta)`: with x' = x - eta y and
    y' = y + eta x', x'^2 + y'^2 - eta x' y' = x'^2 + y^2 + eta x' y = x^2 + y^2 - eta x y.
    Its level set is an ellipse with semi-axes sqrt(Q / (1 -+ eta / 2)).

    Example:
    >>> path = alternating_gradient_play(1.0, 0.0, eta=0.5, steps=50)
    >>> bool(np.ptp(alternating_invariant(path, 0.5)) < 1e-12)
    True
    """
    path = np.asarray(path, dtype="float64")
    return path[:, 0] ** 2 + path[:, 1] ** 2 - eta * path[:, 0] * path[:, 1]
