"""Data-parallel training on Keras' own `keras.distribution` (JAX backend).

`DataParallel` over a `DeviceMesh` replicates every variable (weights, every optimizer's
slots, seed states) on each device and splits each batch along its first axis; the
engine's JAX step is stateless, so the Keras JAX trainer jits it with those shardings
and XLA inserts the gradient all-reduce. Nothing in the engine changes with the device
count: the loss of a phase is a mean over the global batch, as on one device.

On a machine without accelerators, `simulate_cpu_devices(n)` makes XLA expose `n` CPU
devices (it must run before JAX starts), so the same path runs and is tested anywhere.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def simulate_cpu_devices(num: int) -> None:
    """Asks XLA for `num` CPU devices; call before JAX is imported (no-op for 1).

    Only the host platform is affected: on a machine with GPUs, Keras still lists them
    first.
    """
    if num <= 1:
        return
    if "jax" in sys.modules:
        raise RuntimeError(
            f"simulate_cpu_devices({num}) must run before JAX is imported (XLA reads "
            f"XLA_FLAGS when it starts); set XLA_FLAGS={_HOST_DEVICES_FLAG}={num} instead."
        )
    flags = os.environ.get("XLA_FLAGS", "")
    if _HOST_DEVICES_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {_HOST_DEVICES_FLAG}={num}".strip()


def data_parallel(num_devices: int, batch_size: int | None = None) -> Any:
    """Sets `keras.distribution.DataParallel` over the first `num_devices` devices.

    Call it before building the model, so that its variables are created replicated.

    Args:
        num_devices: int. Devices to train on (>= 1; 1 sets no distribution).
        batch_size: int or None. Global batch size, checked to split evenly.

    Returns:
        The distribution, or None for one device.

    Raises:
        ValueError: not on the JAX backend, fewer devices than asked for, or a batch
            that does not split evenly (Keras would fail with a `ZeroDivisionError`
            deep inside, keras#21167).
    """
    import keras

    if num_devices == 1:
        return None
    if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
        raise ValueError(f"The number of devices must be an integer >= 1, got {num_devices!r}.")
    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(
            f"Data-parallel training runs on the JAX backend (keras.distribution); this is "
            f"{backend}. Use --backend jax (see docs/distributed.md)."
        )
    devices = keras.distribution.list_devices()
    if len(devices) < num_devices:
        raise ValueError(
            f"{num_devices} devices were asked for but JAX sees {len(devices)} ({devices}). "
            f"On a CPU-only machine, set XLA_FLAGS={_HOST_DEVICES_FLAG}={num_devices} "
            "before JAX starts (`mp-keras train --devices N` does)."
        )
    check_batch_size(batch_size, num_devices)
    distribution = keras.distribution.DataParallel(devices=devices[:num_devices])
    keras.distribution.set_distribution(distribution)
    return distribution


def check_batch_size(batch_size: int | None, num_devices: int) -> None:
    """Raises `ValueError` unless `batch_size` splits evenly over `num_devices`."""
    if batch_size is not None and batch_size % num_devices:
        raise ValueError(
            f"The batch size {batch_size} does not split evenly over {num_devices} devices; "
            f"use a multiple of {num_devices} (every device gets the same share)."
        )


def num_devices() -> int:
    """Devices the current `keras.distribution` splits batches over (1 without one)."""
    import keras

    distribution = keras.distribution.distribution()
    if distribution is None:
        return 1
    return int(distribution.device_mesh.shape[0]) if distribution.device_mesh else 1
