"""mp_keras: the models of a Machine Perception course in Keras 3."""

__version__ = "0.1.0"
