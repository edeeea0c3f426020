"""Mode coverage of samples from a known mixture of Gaussians (the GAN toy sets)."""

from __future__ import annotations

from typing import Any

import numpy as np


def mode_coverage(
    samples: Any,
    centres: Any,
    std: float,
    threshold: float = 3.0,
    min_share: float = 0.1,
) -> dict[str, float]:
    """How many modes of an isotropic Gaussian mixture the samples cover, and how well.

    Each sample is assigned to its nearest centre; it is *high quality* when it lies
    within `threshold` standard deviations of that centre (Srivastava et al. 2017,
    Metz et al. 2017). A mode is *covered* when it receives at least `min_share` of its
    fair share, `min_share * num_samples / num_modes`, of high-quality samples, so that
    a few stray points do not count as a mode.

    Args:
        samples: array `(num_samples, dims)`.
        centres: array `(num_modes, dims)`, the mixture's means.
        std: float. The mixture components' standard deviation.
        threshold: float. Radius of "high quality", in standard deviations. Defaults
            to `3.0`.
        min_share: float. Share of the fair count a mode needs to be covered. Defaults
            to `0.1`.

    Returns:
        A dict: `modes` (number covered), `high_quality` (fraction of samples within
        the threshold), `kl` (KL divergence in nats of the histogram of high-quality
        samples over modes from the uniform one; 0 for perfect balance, `inf` when no
        sample is of high quality) and `histogram` (high-quality count per mode).

    Example:
    >>> centres = np.array([[0.0, 0.0], [4.0, 0.0]])
    >>> samples = np.array([[0.01, 0.0], [0.0, 0.02], [4.0, 0.01], [9.0, 9.0]])
    >>> result = mode_coverage(samples, centres, std=0.02)
    >>> result["modes"], result["high_quality"], round(result["kl"], 4)
    (2, 0.75, 0.0566)
    """
    samples = np.asarray(samples, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    if samples.ndim != 2 or centres.ndim != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(
            "mode_coverage expects samples (num_samples, dims) and centres (num_modes, dims) "
            f"with the same dims; got {samples.shape} and {centres.shape}."
        )
    if not np.all(np.isfinite(samples)):
        raise ValueError("mode_coverage: the samples contain NaN or infinite values.")
    if not std > 0:
        raise ValueError(f"mode_coverage: std must be > 0; got {std!r}.")
    distances = np.linalg.norm(samples[:, None, :] - centres[None], axis=-1)
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(samples)), nearest] <= threshold * std
    histogram = np.bincount(nearest[good], minlength=len(centres))
    fair = len(samples) / len(centres)
    covered = int(np.sum(histogram >= max(min_share * fair, 1.0)))
    if good.any():
        share = histogram / histogram.sum()
        nonzero = share > 0
        kl = float(np.sum(share[nonzero] * np.log(share[nonzero] * len(centres))))
    else:
        kl = float("inf")
    return {
        "modes": covered,
        "high_quality": float(good.mean()),
        "kl": kl,
        "histogram": histogram.tolist(),
    }
