"""Test set-up: quiet TensorFlow, and the backend under test in every report header."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MP_KERAS_ALLOW_DOWNLOAD", "0")

import keras

if keras.backend.backend() == "torch":
    import torch

    # Small ops on a few shared cores: torch's spinning worker threads cost 15-50x.
    torch.set_num_threads(1)


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"
