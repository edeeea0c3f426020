"""Reusable building blocks, one topic per file."""

from mp_keras.layers.actnorm import ActNorm
from mp_keras.layers.attention import CausalSelfAttention, TransformerBlock
from mp_keras.layers.bijectors import (
    AdditiveCoupling,
    AffineCoupling,
    Bijector,
    Chain,
    Dequantize,
    LogitTransform,
    Scaling,
    Squeeze,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
)
from mp_keras.layers.causal_conv import CausalConv1D, WaveNetBlock
from mp_keras.layers.convolution import (
    Convolution1D,
    Convolution2D,
    convolution_matrix,
    convolve1d,
    convolve2d,
    correlate1d,
    correlate2d,
)
from mp_keras.layers.invertible_conv import Invertible1x1Conv
from mp_keras.layers.masked_conv import GatedPixelCNNBlock, MaskedConv2D
from mp_keras.layers.masked_dense import MaskedDense
from mp_keras.layers.multiscale import FactorOut
from mp_keras.layers.pooling import MaxPooling2DWithIndices
from mp_keras.layers.recurrent import ElmanCell, LSTMCell, recurrent_cell
from mp_keras.layers.row_lstm import RowLSTM
from mp_keras.layers.time_embedding import SinusoidalTimeEmbedding
from mp_keras.layers.token_embedding import ShiftedTokenEmbedding
from mp_keras.layers.upsampling import (
    BedOfNailsUpsampling2D,
    MaxUnpooling2D,
    NearestNeighborUpsampling2D,
)
from mp_keras.layers.vrnn_cell import VRNNCell

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "BedOfNailsUpsampling2D",
    "Bijector",
    "CausalConv1D",
    "CausalSelfAttention",
    "Chain",
    "Convolution1D",
    "Convolution2D",
    "Dequantize",
    "ElmanCell",
    "FactorOut",
    "GatedPixelCNNBlock",
    "Invertible1x1Conv",
    "LSTMCell",
    "LogitTransform",
    "MaskedConv2D",
    "MaskedDense",
    "MaxPooling2DWithIndices",
    "MaxUnpooling2D",
    "NearestNeighborUpsampling2D",
    "RowLSTM",
    "Scaling",
    "ShiftedTokenEmbedding",
    "SinusoidalTimeEmbedding",
    "Squeeze",
    "TransformerBlock",
    "VRNNCell",
    "WaveNetBlock",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
    "convolution_matrix",
    "convolve1d",
    "convolve2d",
    "correlate1d",
    "correlate2d",
    "recurrent_cell",
]
