"""Sample quality of image generators: Fréchet and kernel distances, class coverage.

The distances compare the *features* of real and generated images, taken from the
penultimate layer of a classifier trained on the same dataset: here the project's own
`mp_keras.models.CNN` (`train_feature_classifier`), not the Inception-v3 network of the
published FID/KID numbers. The values are therefore only comparable with each other
(same classifier, same data, same number of samples), never with papers' FID.

* `frechet_distance`: the Fréchet (2-Wasserstein) distance between Gaussians fitted to
  the two sets of features (Heusel et al. 2017),
  ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).
* `kernel_distance`: the unbiased estimate of the squared maximum mean discrepancy with
  the polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets
  (Binkowski et al. 2018, "KID"). Unbiased: about 0, possibly negative, for two samples
  of one distribution.
* `class_coverage`: the share of classes that are the classifier's argmax for at least
  one sample (a mode-collapse measure for labelled image data).

In `fit`, the `SampleQuality` callback samples the model at the end of an epoch and puts
`val_fid`, `val_kid` and `val_class_coverage` into the logs (so History, EarlyStopping
and checkpoints see them); `sample_quality` is the same computation as a function.
`FrechetDistance` and `KernelDistance` are the streaming `keras.metrics.Metric` forms,
`update_state(real_features, fake_features)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

__all__ = [
    "ClassifierFeatures",
    "FrechetDistance",
    "KernelDistance",
    "SampleQuality",
    "class_coverage",
    "frechet_distance",
    "kernel_distance",
    "sample_quality",
    "train_feature_classifier",
]


# === NumPy functions ===


def _features(name: str, features: Any) -> np.ndarray:
    array = np.asarray(keras.ops.convert_to_numpy(features), dtype=np.float64)
    if array.ndim != 2 or len(array) < 2:
        raise ValueError(
            f"{name} expects features of shape (num_samples >= 2, num_features); got {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: the features contain NaN or infinite values.")
    return array


def _pair(name: str, a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _features(name, a), _features(name, b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name} expects two sets of features of the same width; got {a.shape[1]} and "
            f"{b.shape[1]}."
        )
    return a, b


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_from_moments(mu_a: Any, cov_a: Any, mu_b: Any, cov_b: Any) -> float:
    """The Fréchet distance between N(mu_a, cov_a) and N(mu_b, cov_b).

    Tr((S_a S_b)^(1/2)) is computed as the sum of the square roots of the eigenvalues of
    the symmetric matrix S_a^(1/2) S_b S_a^(1/2), which has the same eigenvalues as
    S_a S_b: two symmetric eigendecompositions, no general matrix square root.

    Example:
    >>> frechet_from_moments([0.0, 0.0], np.eye(2), [3.0, 4.0], 4 * np.eye(2))
    27.0
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    cross = np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None)))
    distance = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross
    return float(max(distance, 0.0))


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Fréchet distance between Gaussians fitted to two sets of features ("FID").

    ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) with the sample means and the
    unbiased sample covariances, in float64.

    Args:
        features_a: array `(num_a, num_features)`.
        features_b: array `(num_b, num_features)`.

    Returns:
        A float >= 0.

    Example:
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(4000, 2)), rng.normal(size=(4000, 2)) + [3.0, 0.0]
    >>> round(frechet_distance(a, b))
    9
    """
    a, b = _pair("frechet_distance", features_a, features_b)
    return frechet_from_moments(
        a.mean(axis=0), np.cov(a, rowvar=False), b.mean(axis=0), np.cov(b, rowvar=False)
    )


def polynomial_mmd2(x: Any, y: Any) -> float:
    """Unbiased MMD^2 of two samples with k(x, y) = (x.y / d + 1)^3.

    (sum_{i != j} k(x_i, x_j)) / (m (m - 1)) + (sum_{i != j} k(y_i, y_j)) / (n (n - 1))
    - 2 mean_{i, j} k(x_i, y_j).
    """
    x, y = _pair("polynomial_mmd2", x, y)
    d = x.shape[1]
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kernel_distance(
    features_a: Any,
    features_b: Any,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel distance ("KID"): unbiased MMD^2, polynomial kernel, over random subsets.

    Binkowski et al., "Demystifying MMD GANs", ICLR 2018. Each of `subsets` draws takes
    `min(subset_size, num_a, num_b)` rows of each set without replacement and computes
    the unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 (`polynomial_mmd2`); the result is
    the mean and standard deviation of those estimates. When the subset is the whole of
    both sets every draw gives the same value, so one subset suffices.

    Args:
        features_a: array `(num_a, num_features)`.
        features_b: array `(num_b, num_features)`.
        subsets: int. Number of random subsets. Defaults to `100`.
        subset_size: int. Rows per subset (capped by the smaller set). Defaults to `1000`.
        seed: int. Seed of the subset draws. Defaults to `0`.

    Returns:
        `(mean, std)` of the estimates; the mean is about 0 (either sign) for two
        samples of one distribution.

    Example:
    >>> rng = np.random.default_rng(0)
    >>> same, _ = kernel_distance(rng.normal(size=(500, 4)), rng.normal(size=(500, 4)))
    >>> shifted, _ = kernel_distance(rng.normal(size=(500, 4)), rng.normal(size=(500, 4)) + 1)
    >>> abs(same) < 0.01, shifted > 1
    (True, True)
    """
    a, b = _pair("kernel_distance", features_a, features_b)
    if int(subsets) < 1 or int(subset_size) < 2:
        raise ValueError(
            f"kernel_distance expects subsets >= 1 and subset_size >= 2; got {subsets!r} "
            f"and {subset_size!r}."
        )
    size = min(int(subset_size), len(a), len(b))
    if size == len(a) == len(b):
        value = polynomial_mmd2(a, b)
        return value, 0.0
    rng = np.random.default_rng(seed)
    estimates = [
        polynomial_mmd2(
            a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)]
        )
        for _ in range(int(subsets))
    ]
    return float(np.mean(estimates)), float(np.std(estimates))


def class_coverage(probabilities: Any, num_classes: int | None = None) -> dict[str, Any]:
    """The share of classes that are the argmax of at least one sample.

    Args:
        probabilities: array `(num_samples, num_classes)` of class probabilities (or
            logits: only the argmax matters).
        num_classes: int or None. Number of classes; defaults to the array's width.

    Returns:
        A dict: `coverage` (share of classes hit, in [0, 1]), `classes` (how many) and
        `histogram` (samples per class).

    Example:
    >>> class_coverage([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1], [0.1, 0.7, 0.2]])
    {'coverage': 0.6666666666666666, 'classes': 2, 'histogram': [2, 1, 0]}
    """
    probabilities = np.asarray(keras.ops.convert_to_numpy(probabilities))
    if probabilities.ndim != 2 or len(probabilities) < 1 or probabilities.shape[1] < 2:
        raise ValueError(
            "class_coverage expects probabilities of shape (num_samples >= 1, "
            f"num_classes >= 2); got {probabilities.shape}."
        )
    num_classes = probabilities.shape[1] if num_classes is None else int(num_classes)
    if num_classes < probabilities.shape[1]:
        raise ValueError(
            f"class_coverage: num_classes {num_classes} is smaller than the width "
            f"{probabilities.shape[1]} of the probabilities."
        )
    histogram = np.bincount(probabilities.argmax(axis=1), minlength=num_classes)
    classes = int(np.sum(histogram > 0))
    return {
        "coverage": classes / num_classes,
        "classes": classes,
        "histogram": histogram.tolist(),
    }


# === The feature classifier ===


class ClassifierFeatures:
    """(Penultimate features, class probabilities) of images from a trained classifier.

    The classifier is an `mp_keras.models.CNN` (or any model with a `keras.Sequential`
    `network` attribute, or a `keras.Sequential` itself) whose last layer gives logits;
    the features are the input of that last layer, evaluated in inference mode (dropout
    off), and the probabilities its softmax.

    Args:
        classifier: the trained classifier.
        batch_size: int. Images per forward pass. Defaults to `500`.

    Example:
    >>> from mp_keras.models import CNN
    >>> cnn = CNN(input_shape=(8, 8, 1), num_classes=3, filters=(2,), dense_units=5)
    >>> features, probabilities = ClassifierFeatures(cnn)(np.zeros((4, 8, 8, 1), "float32"))
    >>> features.shape, probabilities.shape
    ((4, 5), (4, 3))
    """

    def __init__(self, classifier: Any, batch_size: int = 500) -> None:
        network = getattr(classifier, "network", classifier)
        if not isinstance(network, keras.Sequential) or len(network.layers) < 2:
            raise ValueError(
                "ClassifierFeatures expects a classifier with a keras.Sequential `network` "
                "(e.g. mp_keras.models.CNN) or a keras.Sequential of two or more layers; got "
                f"{type(classifier).__name__}."
            )
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}.")
        self.classifier = classifier
        self.batch_size = int(batch_size)
        self.input_shape = tuple(network.input_shape[1:])
        # A functional model sharing the classifier's layers: `predict` compiles its
        # forward pass once (every batch is padded to `batch_size`, so one shape).
        inputs = keras.Input(self.input_shape)
        h = inputs
        for layer in network.layers[:-1]:
            h = layer(h)
        probabilities = keras.layers.Softmax()(network.layers[-1](h))
        self.model = keras.Model(inputs, [h, probabilities])

    def __call__(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """`(features (n, width), probabilities (n, num_classes))` as NumPy arrays."""
        images = np.asarray(keras.ops.convert_to_numpy(images), dtype="float32")
        if images.shape[1:] != self.input_shape or len(images) < 1:
            raise ValueError(
                f"ClassifierFeatures expects images of shape (batch, {self.input_shape}); got "
                f"{images.shape}."
            )
        num = len(images)
        padding = -num % self.batch_size
        if padding:
            images = np.concatenate([images, np.zeros((padding, *self.input_shape), "float32")])
        features, probabilities = self.model.predict(images, batch_size=self.batch_size, verbose=0)
        return np.asarray(features)[:num], np.asarray(probabilities)[:num]


def _as_extractor(classifier: Any) -> ClassifierFeatures:
    return (
        classifier if isinstance(classifier, ClassifierFeatures) else ClassifierFeatures(classifier)
    )


def train_feature_classifier(
    x: Any,
    y: Any,
    epochs: int = 5,
    seed: int = 0,
    path: str | Path | None = None,
    filters: Sequence[int] = (16, 32),
    dense_units: int = 64,
    batch_size: int = 64,
    verbose: int = 0,
) -> Any:
    """Trains (or loads from `path`) the project's CNN on images `x` and labels `y`.

    The classifier whose penultimate layer (`dense_units` ReLU units) gives the features
    of the distances. Seeded (`keras.utils.set_random_seed(seed)` and the dropout seed),
    Adam, `epochs` epochs. With `path`, an existing `.keras` file there is loaded instead
    of training, and a newly trained model is saved there atomically.

    Args:
        x: images `(num, height, width, channels)`.
        y: int labels `(num,)` in `[0, num_classes)`.
        epochs: int. Training epochs. Defaults to `5`.
        seed: int. Seed of the initial weights and dropout. Defaults to `0`.
        path: path of a `.keras` cache, or None. Defaults to `None`.
        filters: tuple of ints. The CNN's conv blocks. Defaults to `(16, 32)`.
        dense_units: int. Width of the feature layer. Defaults to `64`.
        batch_size: int. Defaults to `64`.
        verbose: int. `fit`'s verbosity. Defaults to `0`.

    Returns:
        The trained `mp_keras.models.CNN`.
    """
    from mp_keras import io
    from mp_keras.models import CNN

    if path is not None and Path(path).exists():
        return keras.models.load_model(path)
    x = np.asarray(x, dtype="float32")
    y = np.asarray(y).astype("int32")
    if x.ndim != 4 or y.shape != (len(x),):
        raise ValueError(
            "train_feature_classifier expects images (num, height, width, channels) and "
            f"labels (num,); got {x.shape} and {y.shape}."
        )
    if int(dense_units) < 1 or int(epochs) < 1:
        raise ValueError(
            f"dense_units and epochs must be >= 1 (the features are the dense layer); got "
            f"{dense_units!r} and {epochs!r}."
        )
    keras.utils.set_random_seed(seed)
    model = CNN(
        input_shape=x.shape[1:],
        num_classes=int(y.max()) + 1,
        filters=filters,
        dense_units=dense_units,
        dropout=0.25,
        seed=seed,
    )
    model.compile()
    model.fit(x, y, epochs=int(epochs), batch_size=int(batch_size), verbose=verbose)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        io.save_model(model, path)
    return model


# === One evaluation ===


def sample_quality(
    model: Any,
    real_x: Any,
    classifier: Any,
    num_samples: int = 1000,
    seed: int = 0,
    kid_subsets: int = 10,
    kid_subset_size: int = 1000,
) -> dict[str, Any]:
    """FD, KD and class coverage of `num_samples` samples of `model` against `real_x`.

    `model.sample(num_samples, seed=seed)` draws the samples (a class-conditional model
    draws its classes in turn, `condition=[0, 1, ..., 0, 1, ...]`); `classifier` (a
    trained classifier or a `ClassifierFeatures`) gives the features of both sets.

    Returns:
        A dict: `fid`, `kid`, `kid_std`, `class_coverage`, `classes` and `histogram`
        (generated samples per predicted class), and `num_samples`.
    """
    extractor = _as_extractor(classifier)
    real_features, _ = extractor(real_x)
    if getattr(model, "is_conditional", False):
        labels = np.arange(int(num_samples)) % int(model.num_classes)
        samples = model.sample(int(num_samples), seed=seed, condition=labels)
    else:
        samples = model.sample(int(num_samples), seed=seed)
    return _quality(extractor, real_features, samples, kid_subsets, kid_subset_size, seed)


def _quality(
    extractor: ClassifierFeatures,
    real_features: np.ndarray,
    samples: Any,
    kid_subsets: int,
    kid_subset_size: int,
    seed: int,
) -> dict[str, Any]:
    fake_features, probabilities = extractor(samples)
    kid, kid_std = kernel_distance(
        real_features, fake_features, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
    )
    coverage = class_coverage(probabilities)
    return {
        "fid": frechet_distance(real_features, fake_features),
        "kid": kid,
        "kid_std": kid_std,
        "class_coverage": coverage["coverage"],
        "classes": coverage["classes"],
        "histogram": coverage["histogram"],
        "num_samples": len(fake_features),
    }


class SampleQuality(keras.callbacks.Callback):
    """Adds `val_fid`, `val_kid` and `val_class_coverage` to the logs of `fit`'s epochs.

    At the end of every `every`-th epoch the model being fitted draws
    `model.sample(num_samples, seed=seed)`; the classifier's features of those samples
    are compared with those of `real_images` (computed once), as in `sample_quality`.
    Put it before callbacks that read these keys (EarlyStopping, ModelCheckpoint); the
    History sees them in any order. Epochs that are skipped have no such keys.

    Args:
        real_images: held-out real images, the reference set.
        classifier: a trained classifier (`train_feature_classifier`) or a
            `ClassifierFeatures`.
        num_samples: int. Generated samples per evaluation. Defaults to `1000`.
        every: int. Evaluate every this many epochs. Defaults to `1`.
        seed: int. Seed of the samples (the same noise every time). Defaults to `0`.
        kid_subsets: int. Subsets of the kernel distance. Defaults to `10`.
        kid_subset_size: int. Defaults to `1000`.
    """

    def __init__(
        self,
        real_images: Any,
        classifier: Any,
        num_samples: int = 1000,
        every: int = 1,
        seed: int = 0,
        kid_subsets: int = 10,
        kid_subset_size: int = 1000,
    ) -> None:
        super().__init__()
        if int(num_samples) < 2 or int(every) < 1:
            raise ValueError(
                f"SampleQuality expects num_samples >= 2 and every >= 1; got {num_samples!r} "
                f"and {every!r}."
            )
        self.extractor = _as_extractor(classifier)
        self.real_features, _ = self.extractor(real_images)
        self.num_samples = int(num_samples)
        self.every = int(every)
        self.seed = seed
        self.kid_subsets = int(kid_subsets)
        self.kid_subset_size = int(kid_subset_size)
        self.history: list[dict[str, Any]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (epoch + 1) % self.every:
            return
        samples = self.model.sample(self.num_samples, seed=self.seed)
        result = _quality(
            self.extractor,
            self.real_features,
            samples,
            self.kid_subsets,
            self.kid_subset_size,
            self.seed,
        )
        self.history.append({"epoch": epoch, **result})
        if logs is not None:
            logs["val_fid"] = result["fid"]
            logs["val_kid"] = result["kid"]
            logs["val_class_coverage"] = result["class_coverage"]


# === Streaming Keras metrics ===


def _moments_update(count: Any, mean: Any, scatter: Any, batch: Any) -> tuple[Any, Any, Any]:
    """Chan et al.'s pairwise update of (count, mean, sum of centred outer products)."""
    batch = ops.cast(batch, "float32")
    n_b = ops.cast(ops.shape(batch)[0], "float32")
    mean_b = ops.mean(batch, axis=0)
    centred = batch - mean_b
    scatter_b = ops.matmul(ops.transpose(centred), centred)
    total = count + n_b
    delta = mean_b - mean
    new_mean = mean + delta * (n_b / total)
    new_scatter = scatter + scatter_b + ops.outer(delta, delta) * (count * n_b / total)
    return total, new_mean, new_scatter


def _ops_sqrt_psd(matrix: Any) -> Any:
    values, vectors = ops.eigh((matrix + ops.transpose(matrix)) / 2.0)
    return ops.matmul(vectors * ops.sqrt(ops.maximum(values, 0.0)), ops.transpose(vectors))


def _check_features(name: str, features: Any, width: int) -> None:
    shape = tuple(features.shape)
    if len(shape) != 2 or (shape[1] is not None and shape[1] != width):
        raise ValueError(f"{name} expects features of shape (batch, {width}); got {shape}.")


@keras.saving.register_keras_serializable(package="mp_keras")
class FrechetDistance(keras.metrics.Metric):
    """Streaming Fréchet distance between real and generated features.

    `update_state(real_features, fake_features)` accumulates, for each set, the count,
    mean and centred scatter matrix (Chan et al.'s pairwise update, stable in float32);
    `result()` is `frechet_distance` of everything seen, in `keras.ops` (`ops.eigh` for
    the two symmetric square roots). Batches of the two sets may differ in size. As
    `compile(metrics=...)` calls `update_state(y_true, y_pred)`, it also works on a model
    whose targets are real features and whose outputs are generated ones.

    Args:
        num_features: int. Width of the features.
        name: str. Defaults to `"frechet_distance"`.

    Example:
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(100, 3)), rng.normal(size=(100, 3)) + 1
    >>> metric = FrechetDistance(num_features=3)
    >>> metric.update_state(a[:50], b[:60])
    >>> metric.update_state(a[50:], b[60:])
    >>> bool(abs(float(metric.result()) - frechet_distance(a, b)) < 1e-3)
    True
    """

    def __init__(self, num_features: int, name: str = "frechet_distance", **kwargs: Any) -> None:
        if int(num_features) < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features!r}.")
        super().__init__(name=name, **kwargs)
        self.num_features = int(num_features)
        d = self.num_features
        self.moments = []
        for side in ("real", "fake"):
            self.moments.append(
                (
                    self.add_variable((), "zeros", name=f"{side}_count"),
                    self.add_variable((d,), "zeros", name=f"{side}_mean"),
                    self.add_variable((d, d), "zeros", name=f"{side}_scatter"),
                )
            )

    def update_state(
        self, real_features: Any, fake_features: Any, sample_weight: Any = None
    ) -> None:
        if sample_weight is not None:
            raise ValueError("FrechetDistance does not take sample weights.")
        for (count, mean, scatter), batch in zip(self.moments, (real_features, fake_features)):
            batch = ops.convert_to_tensor(batch)
            _check_features("FrechetDistance", batch, self.num_features)
            new = _moments_update(count.value, mean.value, scatter.value, batch)
            for variable, value in zip((count, mean, scatter), new):
                variable.assign(value)

    def result(self) -> Any:
        (n_a, mu_a, m_a), (n_b, mu_b, m_b) = [tuple(v.value for v in side) for side in self.moments]
        cov_a = m_a / ops.maximum(n_a - 1.0, 1.0)
        cov_b = m_b / ops.maximum(n_b - 1.0, 1.0)
        root_a = _ops_sqrt_psd(cov_a)
        middle = ops.matmul(ops.matmul(root_a, cov_b), root_a)
        eigenvalues, _ = ops.eigh((middle + ops.transpose(middle)) / 2.0)
        cross = ops.sum(ops.sqrt(ops.maximum(eigenvalues, 0.0)))
        distance = (
            ops.sum(ops.square(mu_a - mu_b)) + ops.trace(cov_a) + ops.trace(cov_b) - 2.0 * cross
        )
        return ops.maximum(distance, 0.0)

    def reset_state(self) -> None:
        for side in self.moments:
            for variable in side:
                variable.assign(ops.zeros(variable.shape, variable.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_features": self.num_features}


@keras.saving.register_keras_serializable(package="mp_keras")
class KernelDistance(keras.metrics.Metric):
    """Streaming kernel distance: the mean unbiased polynomial MMD^2 over batch pairs.

    Unbiased MMD^2 is not a function of running moments of bounded size (the cubic
    kernel would need third-order moment tensors, d^3 numbers), so each
    `update_state(real_features, fake_features)` computes the unbiased estimate of one
    pair of batches (as `polynomial_mmd2`, in `keras.ops`), and `result()` is their mean:
    `kernel_distance` with the batches as its subsets. A single update with all the data
    equals `kernel_distance` on the whole sets. Both batches need >= 2 rows. `std()` is the
    standard deviation of the per-batch estimates.

    Args:
        num_features: int. Width of the features.
        name: str. Defaults to `"kernel_distance"`.

    Example:
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3)) + 1
    >>> metric = KernelDistance(num_features=3)
    >>> metric.update_state(a, b)
    >>> bool(abs(float(metric.result()) - kernel_distance(a, b)[0]) < 1e-3)
    True
    """

    def __init__(self, num_features: int, name: str = "kernel_distance", **kwargs: Any) -> None:
        if int(num_features) < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features!r}.")
        super().__init__(name=name, **kwargs)
        self.num_features = int(num_features)
        self.total = self.add_variable((), "zeros", name="total")
        self.total_squares = self.add_variable((), "zeros", name="total_squares")
        self.batches = self.add_variable((), "zeros", name="batches")

    def update_state(
        self, real_features: Any, fake_features: Any, sample_weight: Any = None
    ) -> None:
        if sample_weight is not None:
            raise ValueError("KernelDistance does not take sample weights.")
        x = ops.cast(ops.convert_to_tensor(real_features), "float32")
        y = ops.cast(ops.convert_to_tensor(fake_features), "float32")
        _check_features("KernelDistance", x, self.num_features)
        _check_features("KernelDistance", y, self.num_features)
        d = float(self.num_features)

        def kernel(u: Any, v: Any) -> Any:
            return (ops.matmul(u, ops.transpose(v)) / d + 1.0) ** 3

        m = ops.cast(ops.shape(x)[0], "float32")
        n = ops.cast(ops.shape(y)[0], "float32")
        k_xx, k_yy = kernel(x, x), kernel(y, y)
        within_x = (ops.sum(k_xx) - ops.trace(k_xx)) / (m * (m - 1.0))
        within_y = (ops.sum(k_yy) - ops.trace(k_yy)) / (n * (n - 1.0))
        estimate = within_x + within_y - 2.0 * ops.mean(kernel(x, y))
        self.total.assign(self.total.value + estimate)
        self.total_squares.assign(self.total_squares.value + estimate**2)
        self.batches.assign(self.batches.value + 1.0)

    def result(self) -> Any:
        return self.total.value / ops.maximum(self.batches.value, 1.0)

    def std(self) -> Any:
        """Standard deviation of the per-batch estimates."""
        mean = self.result()
        mean_square = self.total_squares.value / ops.maximum(self.batches.value, 1.0)
        return ops.sqrt(ops.maximum(mean_square - mean**2, 0.0))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_features": self.num_features}
