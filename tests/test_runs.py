"""Reliability of training runs: exact resume, checkpoints, NaN, folders as one unit.

The SIGKILL version of the resume test is `test_fault_injection.py`; here the same
guarantees are checked in-process, case by case.
"""

from __future__ import annotations

import json
import os
import re

import h5py
import keras
import numpy as np
import pytest

import mp_keras.models  # noqa: F401  (registers the classes for load_model)
from mp_keras import io, runs, training
from mp_keras.callbacks import NonFiniteLossError
from mp_keras.cli import main
from mp_keras.runs import RunFolder, RunFolderError


class _Interrupt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt as epoch `epoch` begins: what a killed process leaves."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _interrupted(model: str, out, epochs: int, at: int, **kwargs) -> None:
    with pytest.raises(KeyboardInterrupt):
        training.train(model, out, epochs=epochs, verbose=0, callbacks=[_Interrupt(at)], **kwargs)


def _weights(folder) -> list[np.ndarray]:
    return keras.saving.load_model(folder / "model.keras").get_weights()


def _assert_same_run(a, b) -> None:
    for x, y in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5)
    history_a = json.loads((a / "metrics.json").read_text())["history"]
    history_b = json.loads((b / "metrics.json").read_text())["history"]
    assert history_a.keys() == history_b.keys()
    for key, values in history_a.items():
        np.testing.assert_allclose(values, history_b[key], rtol=1e-5, err_msg=key)


def _snapshot(folder) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".run" not in p.parts
    }


@pytest.fixture(scope="module")
def finished_mlp(tmp_path_factory):
    """A finished `mlp` run on digits (2 epochs), not to be modified by tests."""
    out = tmp_path_factory.mktemp("mlp_run")
    training.train("mlp", out, epochs=2, verbose=0)
    return out


def _copy_of(folder, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


# === Exact resume ===


@pytest.mark.parametrize("model, epochs, at", [("vae", 4, 2), ("gan", 3, 1)])
def test_resumed_run_equals_the_uninterrupted_one(tmp_path, model, epochs, at):
    """Weights, seed state (VAE noise), both GAN optimizers and the history all resume."""
    training.train(model, tmp_path / "straight", epochs=epochs, verbose=0)
    _interrupted(model, tmp_path / "resumed", epochs, at)
    assert not (tmp_path / "resumed" / "model.keras").exists()
    metrics = training.train(model, tmp_path / "resumed", epochs=epochs, verbose=0)
    assert metrics.status == "resumed" and metrics.initial_epoch == at
    assert all(len(values) == epochs for values in metrics["history"].values())
    assert metrics["train_seconds"] > 0
    _assert_same_run(tmp_path / "straight", tmp_path / "resumed")


def test_an_unreadable_checkpoint_falls_back_to_the_previous_one(tmp_path):
    training.train("mlp", tmp_path / "straight", epochs=4, verbose=0)
    out = tmp_path / "run"
    _interrupted("mlp", out, 4, 3)
    checkpoints = RunFolder(out).checkpoints
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch-00002", "epoch-00003"]
    newest = checkpoints / "epoch-00003" / "checkpoint.weights.h5"
    newest.write_bytes(newest.read_bytes()[:1000])  # torn, as by a crash mid-write
    with pytest.warns(UserWarning, match="epoch-00003 .* unreadable; resuming from epoch-00002"):
        metrics = training.train("mlp", out, epochs=4, verbose=0)
    assert metrics.initial_epoch == 2
    _assert_same_run(tmp_path / "straight", out)


def test_no_readable_checkpoint_starts_over_with_a_warning(tmp_path):
    out = tmp_path / "run"
    _interrupted("mlp", out, 3, 2)
    for folder in RunFolder(out).checkpoints.iterdir():
        (folder / "state.json").write_text("{")
    with pytest.warns(UserWarning, match="no readable checkpoint .* training starts over"):
        metrics = training.train("mlp", out, epochs=3, verbose=0)
    assert metrics.initial_epoch == 0 and len(metrics["history"]["loss"]) == 3


def test_checkpoints_hold_the_seed_generator_state(tmp_path):
    _interrupted("vae", tmp_path, 3, 2)
    folder = RunFolder(tmp_path).checkpoints / "epoch-00002"
    state = json.loads((folder / "state.json").read_text())
    (seed_state,) = state["seed_states"]
    assert seed_state["path"].endswith("seed_generator_state")
    assert seed_state["value"][1] > 0  # the counter moved: it must be restored
    with h5py.File(folder / "checkpoint.weights.h5") as handle:
        assert "optimizer" in handle


# === Non-finite losses ===


def _huge_npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "huge.npz"
    np.savez(
        path, x=rng.uniform(-3e38, 3e38, (200, 8)).astype("float32"), y=rng.integers(0, 10, 200)
    )
    return path


def test_a_non_finite_loss_keeps_the_previous_model_and_fails(finished_mlp, tmp_path, capsys):
    out = _copy_of(finished_mlp, tmp_path)
    before = _snapshot(out)
    npz = _huge_npz(tmp_path)
    args = ["train", "mlp", "--dataset", f"npz:{npz}", "--epochs", "2", "--out", str(out)]
    assert main([*args, "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert re.search("loss became (nan|inf) at epoch 1, batch 1", err) and err.count("\n") == 1
    assert _snapshot(out) == before  # the good model, metrics and figure are untouched
    assert main(["train", "mlp", "--epochs", "2", "--out", str(out)]) == 0  # still finished
    assert "holds this finished run" in capsys.readouterr().out
    with pytest.raises(NonFiniteLossError) as caught:
        training.train("mlp", tmp_path / "new", dataset=f"npz:{npz}", epochs=2, verbose=0)
    assert caught.value.epoch == 0 and caught.value.batch == 0
    assert not (tmp_path / "new" / "model.keras").exists()


# === The folder as one unit ===


def test_a_used_folder_is_refused_and_overwrite_replaces_it(finished_mlp, tmp_path, capsys):
    out = _copy_of(finished_mlp, tmp_path)
    before = _snapshot(out)
    assert main(["train", "vae", "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds a finished run of mlp on digits" in err and "--overwrite" in err
    with pytest.raises(RunFolderError, match="not mlp on digits \\(3 epochs"):
        training.train("mlp", out, epochs=3, verbose=0)
    assert _snapshot(out) == before
    metrics = training.train("vae", out, epochs=1, overwrite=True, verbose=0)
    assert metrics.status == "trained"
    assert json.loads((out / "metrics.json").read_text())["model"] == "vae"
    assert (out / "samples.png").is_file()
    assert not (out / "predictions.png").exists()  # the MLP's figure went with it


def test_a_finished_run_is_recognised(finished_mlp, capsys):
    before = _snapshot(finished_mlp)
    args = ["train", "mlp", "--epochs", "2", "--out", str(finished_mlp)]
    assert main(args) == 0
    assert "holds this finished run" in capsys.readouterr().out
    assert _snapshot(finished_mlp) == before
    assert training.train("mlp", finished_mlp, epochs=2, verbose=0).status == "finished"


def test_an_unfinished_run_of_other_arguments_is_refused(tmp_path):
    _interrupted("mlp", tmp_path, 3, 1)
    with pytest.raises(RunFolderError, match="unfinished run of mlp on digits \\(3 epochs"):
        training.train("mlp", tmp_path, epochs=3, seed=1, verbose=0)
    other = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}[keras.backend.backend()]
    identity = json.loads((tmp_path / ".run" / "identity.json").read_text())
    io.write_json(tmp_path / ".run" / "identity.json", {**identity, "backend": other})
    with pytest.raises(RunFolderError, match=f"resume it with --backend {other}"):
        training.train("mlp", tmp_path, epochs=3, verbose=0)


def test_a_failed_run_leaves_the_folder_untouched(finished_mlp, tmp_path, monkeypatch):
    out = _copy_of(finished_mlp, tmp_path)
    before = _snapshot(out)

    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(training, "save_figure", broken)
    with pytest.raises(RuntimeError, match="figure failed"):
        training.train("mlp", out, epochs=1, overwrite=True, verbose=0)
    assert _snapshot(out) == before


def test_data_is_checked_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "unet"
    assert main(["train", "unet", "--dataset", "digits", "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "UNet expects masks of shape (batch, 8, 8)" in err and "got shape (1500,)" in err
    assert not out.exists() or not any(out.iterdir())


def test_an_interrupted_commit_is_completed(tmp_path, monkeypatch):
    identity = {"model": "m", "dataset": "d", "epochs": 1, "batch_size": 1, "seed": 0}
    run = RunFolder(tmp_path)
    run.begin(identity)
    (run.result / "model.keras").write_bytes(b"new model")
    (run.result / "samples.png").write_bytes(b"new figure")
    io.write_json(run.result / "metrics.json", identity)
    moves = []

    def dying_replace(source, target):
        if moves:
            raise KeyboardInterrupt  # killed after the first move
        moves.append(target)
        os.rename(source, target)

    monkeypatch.setattr(runs.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        run.commit()
    monkeypatch.undo()
    assert (tmp_path / ".run" / "COMMIT").is_file() and not (tmp_path / "metrics.json").exists()
    assert RunFolder(tmp_path).prepare({**identity, "backend": "x"}, overwrite=False) == "finished"
    assert (tmp_path / "samples.png").read_bytes() == b"new figure"
    assert not (tmp_path / ".run").exists()


# === Atomic writes ===


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = io.write_text(tmp_path / "a.json", "old")
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_replace_directory_swaps_whole_folders(tmp_path):
    old, new = tmp_path / "export", tmp_path / "staging"
    old.mkdir()
    (old / "a").write_text("old")
    new.mkdir()
    (new / "b").write_text("new")
    io.replace_directory(new, old)
    assert [p.name for p in old.iterdir()] == ["b"] and not new.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["export"]
