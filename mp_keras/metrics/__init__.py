"""Sample-quality metrics of generative models (chapter 8, reused by chapter 9)."""

from mp_keras.metrics.modes import mode_coverage

__all__ = ["mode_coverage"]
