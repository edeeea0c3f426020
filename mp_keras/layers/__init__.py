"""Reusable building blocks, one topic per file."""

from mp_keras.layers.convolution import (
    Convolution1D,
    Convolution2D,
    convolution_matrix,
    convolve1d,
    convolve2d,
    correlate1d,
    correlate2d,
)
from mp_keras.layers.recurrent import ElmanCell, LSTMCell, recurrent_cell

__all__ = [
    "Convolution1D",
    "Convolution2D",
    "ElmanCell",
    "LSTMCell",
    "convolution_matrix",
    "convolve1d",
    "convolve2d",
    "correlate1d",
    "correlate2d",
    "recurrent_cell",
]
