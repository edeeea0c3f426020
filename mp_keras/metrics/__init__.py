"""Sample-quality metrics of generative models (chapter 8, reused by chapter 9)."""

from mp_keras.metrics.modes import mode_coverage
from mp_keras.metrics.sample_quality import (
    ClassifierFeatures,
    FrechetDistance,
    KernelDistance,
    SampleQuality,
    class_coverage,
    frechet_distance,
    kernel_distance,
    sample_quality,
    train_feature_classifier,
)

__all__ = [
    "ClassifierFeatures",
    "FrechetDistance",
    "KernelDistance",
    "SampleQuality",
    "class_coverage",
    "frechet_distance",
    "kernel_distance",
    "mode_coverage",
    "sample_quality",
    "train_feature_classifier",
]
