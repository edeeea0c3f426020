"""Fault injection: `mp-keras train` killed with SIGKILL again and again still ends right.

A subprocess trains a small VAE (it has a seed generator, so the resume must restore
random state too) and is killed at moments chosen to hurt: while a checkpoint is being
written (a temporary entry is seen in the checkpoint folder), at random short delays
after an epoch's checkpoint, and while the finished run's files are being staged. After
every kill each file in the folder must be readable, and the run is started again with
the same command. It must finish, and its weights and history must equal those of a run
that was never interrupted.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from mp_keras.io import is_temporary

EPOCHS = 8
KILLS = 5
COMMAND = ["train", "vae", "--epochs", str(EPOCHS), "--batch-size", "128", "--seed", "3"]


def _start(out: Path) -> subprocess.Popen:
    """`mp-keras train` in a subprocess; its stderr goes to `out`'s sibling `.err` file."""
    env = dict(
        os.environ,
        KERAS_BACKEND=keras.backend.backend(),
        TF_CPP_MIN_LOG_LEVEL="3",
        OMP_NUM_THREADS="1",  # the same numerics in every process, killed or not
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "mp_keras.cli", *COMMAND, "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(out.parent / f"{out.name}.err", "w"),
    )


def _stderr(out: Path) -> str:
    return (out.parent / f"{out.name}.err").read_text()[-2000:]


def _entries(folder: Path) -> list[str]:
    """The names in `folder`, or none: the run may rename or remove it while we look."""
    try:
        return sorted(os.listdir(folder))
    except FileNotFoundError:
        return []


def _checkpoints(out: Path) -> list[str]:
    return _entries(out / ".run" / "checkpoints")


def _finished_checkpoints(out: Path) -> set[str]:
    """The checkpoints written whole (the folder keeps only the last two)."""
    return {name for name in _checkpoints(out) if not is_temporary(name)}


def _wait(process: subprocess.Popen, condition, timeout: float = 120.0) -> bool:
    """Polls `condition()` every millisecond until it holds or the process ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.001)
    raise AssertionError("the training process neither progressed nor ended")


def _assert_readable(out: Path) -> int:
    """Every non-temporary file of the folder can be read whole; returns how many."""
    import h5py
    from PIL import Image

    checked = 0
    for path in out.rglob("*"):
        if not path.is_file() or any(is_temporary(part) for part in path.relative_to(out).parts):
            continue
        if "tfevents" in path.name:
            continue  # TensorBoard's append-only logs: a torn last record is skipped by readers
        if path.suffix == ".json" or path.name == "COMMIT":
            json.loads(path.read_text())
        elif path.name.endswith(".h5"):
            with h5py.File(path, "r") as handle:
                handle.visititems(
                    lambda _, item: item[()] if isinstance(item, h5py.Dataset) else None
                )
        elif path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None, path
        elif path.suffix == ".png":
            with Image.open(path) as image:
                image.verify()
        checked += 1
    return checked


def test_sigkill_at_random_moments_never_loses_or_corrupts(tmp_path):
    rng = random.Random(0)
    reference_dir, out = tmp_path / "reference", tmp_path / "killed"
    reference = _start(reference_dir)  # runs alongside the kills

    kills = 0
    moments = ["checkpoint write", "random delay", "checkpoint write", "random delay", "commit"]
    for moment in moments[:KILLS]:
        process = _start(out)
        before = _finished_checkpoints(out)
        if moment == "checkpoint write":
            # A temporary entry lives for milliseconds and polling can miss it; then the
            # kill lands just after the checkpoint it belonged to, which must be safe too.
            reached = _wait(
                process,
                lambda b=before: (
                    any(map(is_temporary, _checkpoints(out))) or _finished_checkpoints(out) != b
                ),
            )
        elif moment == "random delay":
            reached = _wait(process, lambda b=before: _finished_checkpoints(out) != b)
            time.sleep(rng.uniform(0.0, 0.5))
        else:
            result = out / ".run" / "result"
            reached = _wait(process, lambda r=result: bool(_entries(r)))
        if reached and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        assert process.returncode in (0, -signal.SIGKILL), _stderr(out)
        _assert_readable(out)
        if process.returncode == 0:
            break  # it finished before the kill

    final = _start(out)
    final.wait(timeout=300)
    assert final.returncode == 0, _stderr(out)
    reference.wait(timeout=300)
    assert reference.returncode == 0, _stderr(reference_dir)
    assert _assert_readable(out) >= 3
    assert not (out / ".run").exists()
    print(f"\n{kills} SIGKILLs injected and survived on {keras.backend.backend()}")
    assert kills >= 3, "too few kills landed to test anything"

    import mp_keras.models  # noqa: F401

    resumed = keras.saving.load_model(out / "model.keras").get_weights()
    uninterrupted = keras.saving.load_model(reference_dir / "model.keras").get_weights()
    for a, b in zip(resumed, uninterrupted, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    history = json.loads((out / "metrics.json").read_text())["history"]
    expected = json.loads((reference_dir / "metrics.json").read_text())["history"]
    assert history.keys() == expected.keys()
    for key in expected:
        assert len(history[key]) == EPOCHS
        np.testing.assert_allclose(history[key], expected[key], rtol=1e-5, err_msg=key)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-s"]))
