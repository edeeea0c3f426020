"""The models of the course, one file each."""

from mp_keras.models.autoencoder import Autoencoder
from mp_keras.models.clip import CLIP
from mp_keras.models.cnn import CNN
from mp_keras.models.cvrnn import CVRNN
from mp_keras.models.dcgan import DCGAN
from mp_keras.models.ddpm import DDPM
from mp_keras.models.denoisers import MLPDenoiser, UNetDenoiser
from mp_keras.models.flow import Flow
from mp_keras.models.flow2d import Flow2D
from mp_keras.models.fvsbn import FVSBN
from mp_keras.models.gan import GAN
from mp_keras.models.gated_pixelcnn import GatedPixelCNN
from mp_keras.models.glow import Glow
from mp_keras.models.gradient_descent_mlp import GradientDescentMLP
from mp_keras.models.latent_diffusion import LatentDiffusion
from mp_keras.models.linear_autoencoder import LinearAutoencoder
from mp_keras.models.made import MADE
from mp_keras.models.mlp import MLP
from mp_keras.models.nade import NADE
from mp_keras.models.nice import NICE
from mp_keras.models.noisy_classifier import NoisyClassifier
from mp_keras.models.perceptron import Perceptron
from mp_keras.models.pixelcnn import PixelCNN
from mp_keras.models.pixelrnn import PixelRNN
from mp_keras.models.realnvp import RealNVP
from mp_keras.models.seq2seq import Seq2Seq, SequenceGenerator
from mp_keras.models.sequence import SequenceClassifier, SequenceTagger
from mp_keras.models.text_diffusion import TextDiffusion
from mp_keras.models.transformer import Transformer
from mp_keras.models.unet import SegmentationMeanIoU, UNet
from mp_keras.models.unrolled_gan import UnrolledGAN
from mp_keras.models.vae import VAE
from mp_keras.models.vrnn import VRNN
from mp_keras.models.wavenet import WaveNet
from mp_keras.models.wgan import WGAN, WGANGP

__all__ = [
    "CLIP",
    "CNN",
    "CVRNN",
    "DCGAN",
    "DDPM",
    "FVSBN",
    "GAN",
    "MADE",
    "MLP",
    "NADE",
    "NICE",
    "VAE",
    "VRNN",
    "WGAN",
    "WGANGP",
    "Autoencoder",
    "Flow",
    "Flow2D",
    "GatedPixelCNN",
    "Glow",
    "GradientDescentMLP",
    "LatentDiffusion",
    "LinearAutoencoder",
    "MLPDenoiser",
    "NoisyClassifier",
    "Perceptron",
    "PixelCNN",
    "PixelRNN",
    "RealNVP",
    "SegmentationMeanIoU",
    "Seq2Seq",
    "SequenceClassifier",
    "SequenceGenerator",
    "SequenceTagger",
    "TextDiffusion",
    "Transformer",
    "UNet",
    "UNetDenoiser",
    "UnrolledGAN",
    "WaveNet",
]
