"""Test set-up: quiet TensorFlow, fast XLA compiles on JAX, the backend in each report."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MP_KERAS_ALLOW_DOWNLOAD", "0")
if os.environ.get("KERAS_BACKEND") == "jax" and "xla_backend_optimization_level" not in (
    os.environ.get("XLA_FLAGS", "")
):
    # The tests compile thousands of tiny programs, so compile time dominates: without
    # LLVM's optimisation passes the JAX suite ran in 1620 s against 1890 s with them
    # (side by side on 2 cores). A level the user set is kept.
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_backend_optimization_level=0".strip()

import keras

if keras.backend.backend() == "torch":
    import torch

    # Small ops on a few shared cores: torch's spinning worker threads cost 15-50x.
    torch.set_num_threads(1)


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"
