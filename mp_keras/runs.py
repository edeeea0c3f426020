"""A training run's folder, written as one unit.

Layout of `OUT` (what `mp-keras train ... --out OUT` writes):

    OUT/model.keras, metrics.json, samples.png | predictions.png, logs/   the finished run
    OUT/.run/                       the run in progress (absent once it has finished):
        identity.json               what is being trained: model, dataset, epochs, ...
        checkpoints/epoch-NNNNN/    the last two epochs (`mp_keras.callbacks.CrashSafeBackup`)
        logs/                       TensorBoard logs so far (`tensorboard --logdir OUT/.run/logs`)
        result/                     the finished run's files, staged before the commit
        COMMIT                      present while the staged files are being moved into OUT

The finished files appear in `OUT` only when the whole run has succeeded: they are
staged in `.run/result/`, then a `COMMIT` marker is written and each staged entry is
renamed into place (`metrics.json`, the mark of a finished run, last). A process killed
during the commit leaves the marker, and the next start finishes the moves. Until the
commit, whatever `OUT` held before (a previous run's model) is untouched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mp_keras import io

WORK = ".run"
METRICS = "metrics.json"
# What a finished run holds; anything else in OUT belongs to the user and is left alone.
ARTIFACTS = ("model.keras", METRICS, "samples.png", "predictions.png", "logs", "export")
IDENTITY_KEYS = ("model", "recipe", "dataset", "epochs", "batch_size", "seed")
# What a key means when a run's files predate it.
_IDENTITY_DEFAULTS = {"recipe": "default"}


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    """The identity keys of a run's record, with the defaults of keys it predates."""
    return {key: record.get(key, _IDENTITY_DEFAULTS.get(key)) for key in IDENTITY_KEYS}


class RunFolderError(ValueError):
    """The output folder holds another run, or something that is not a run."""


def describe(identity: dict[str, Any]) -> str:
    """`mlp on digits (30 epochs, batch size 64, seed 0)`; `made (paper recipe) on ...`."""
    recipe = identity.get("recipe", "default")
    model = (
        identity.get("model")
        if recipe == "default"
        else f"{identity.get('model')} ({recipe} recipe)"
    )
    return (
        f"{model} on {identity.get('dataset')} ({identity.get('epochs')} "
        f"epochs, batch size {identity.get('batch_size')}, seed {identity.get('seed')})"
    )


class RunFolder:
    """The output folder of one training run (see the module docstring for its layout).

    Args:
        path: path. The folder (`--out`).

    Example:
        >>> import tempfile
        >>> run = RunFolder(tempfile.mkdtemp())
        >>> wanted = {"model": "mlp", "dataset": "digits", "epochs": 2, "batch_size": 8,
        ...           "seed": 0, "backend": "jax"}
        >>> run.prepare(wanted, overwrite=False)
        'new'
        >>> run.begin(wanted)
        >>> _ = io.write_bytes(run.result / "model.keras", b"(a saved model)")
        >>> _ = io.write_json(run.result / METRICS, {**wanted, "loss": 0.5})
        >>> run.commit()
        >>> run.prepare(wanted, overwrite=False), (run.path / ".run").exists()
        ('finished', False)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.work = self.path / WORK
        self.checkpoints = self.work / "checkpoints"
        self.logs = self.work / "logs"
        self.result = self.work / "result"
        self._marker = self.work / "COMMIT"
        self._identity = self.work / "identity.json"

    # === State ===

    def finished_identity(self) -> dict[str, Any] | None:
        """The identity recorded by the finished run in the folder, if there is one."""
        metrics = io.read_json(self.path / METRICS)
        if not isinstance(metrics, dict) or not (self.path / "model.keras").is_file():
            return None
        return _identity(metrics)

    def partial_identity(self) -> dict[str, Any] | None:
        """The identity of the unfinished run in `.run/`, if there is one."""
        identity = io.read_json(self._identity)
        return identity if isinstance(identity, dict) else None

    def prepare(self, identity: dict[str, Any], overwrite: bool) -> str:
        """Recovers from a crash and says what to do for a run of `identity`.

        Returns `"finished"` (the folder holds this very run, finished), `"resume"` (it
        holds this run, unfinished) or `"new"` (nothing to resume; with `overwrite`, a
        previous unfinished run has been discarded). Writes nothing except to finish an
        interrupted commit and to remove temporary files of killed processes.

        Raises:
            RunFolderError: the folder holds a different run, or files that are not a
                run's, and `overwrite` is false.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path} exists and is not a folder.")
        if self._marker.exists():
            self._finish_commit()
        io.remove_temporaries(self.path)
        wanted = _identity(identity)
        if overwrite:
            io.remove_path(self.work)
            return "new"
        finished = self.finished_identity()
        if finished == wanted:
            return "finished"
        partial = self.partial_identity()
        if partial is not None and not self._has_checkpoint():
            io.remove_path(self.work)  # a run that failed before its first epoch ended
            partial = None
        if partial is not None:
            if _identity(partial) != wanted:
                raise RunFolderError(
                    f"{self.path} holds an unfinished run of {describe(partial)}, not "
                    f"{describe(wanted)}. Rerun with the same arguments to resume it, "
                    "pass --overwrite to discard it, or choose another --out."
                )
            if partial.get("backend") != identity.get("backend"):
                raise RunFolderError(
                    f"{self.path} holds an unfinished run started on the "
                    f"{partial.get('backend')} backend; resume it with --backend "
                    f"{partial.get('backend')} (an exact resume needs the same backend), "
                    "or pass --overwrite to start over."
                )
            if partial.get("devices", 1) != identity.get("devices", 1):
                raise RunFolderError(
                    f"{self.path} holds an unfinished run on {partial.get('devices', 1)} "
                    f"device(s); resume it with --devices {partial.get('devices', 1)}, or pass "
                    "--overwrite to start over."
                )
            return "resume"
        if finished is not None:
            raise RunFolderError(
                f"{self.path} holds a finished run of {describe(finished)}, not "
                f"{describe(wanted)}. Pass --overwrite to replace it, or choose another --out."
            )
        if self.path.is_dir():
            ours = sorted(name for name in ARTIFACTS if (self.path / name).exists())
            if ours or (self.path / "backup").exists():
                raise RunFolderError(
                    f"{self.path} holds {', '.join(ours) or 'backup/'} but no finished run "
                    "that mp_keras recognises (no readable metrics.json next to model.keras). "
                    "Pass --overwrite to replace them, or choose another --out."
                )
        return "new"

    def _has_checkpoint(self) -> bool:
        return self.checkpoints.is_dir() and any(
            not io.is_temporary(entry) for entry in self.checkpoints.iterdir()
        )

    # === Writing ===

    def begin(self, identity: dict[str, Any]) -> None:
        """Creates `.run/` for a new run of `identity` (a no-op when resuming it)."""
        self.work.mkdir(parents=True, exist_ok=True)
        if self.partial_identity() is None:
            io.write_json(self._identity, identity)
        io.remove_path(self.result)
        self.result.mkdir()

    def commit(self) -> None:
        """Moves the staged files of `.run/result/` into the folder and removes `.run/`.

        Artifacts of an earlier run that this run does not produce (another model's
        figure, an old export) are removed, so the folder describes one run only.
        """
        if self.logs.is_dir() and not (self.result / "logs").exists():
            os.rename(self.logs, self.result / "logs")
        names = sorted(entry.name for entry in self.result.iterdir())
        if METRICS not in names:
            raise RuntimeError(f"Nothing to commit in {self.result}: it has no {METRICS}.")
        plan = {
            "move": [name for name in names if name != METRICS],
            "remove": [name for name in ARTIFACTS if name not in names],
        }
        io.write_json(self._marker, plan)
        self._finish_commit()

    def _finish_commit(self) -> None:
        plan = io.read_json(self._marker)
        if not isinstance(plan, dict):
            plan = {}
        for name in [*plan.get("move", []), *plan.get("remove", []), METRICS]:
            staged, target = self.result / name, self.path / name
            if name in plan.get("remove", []):
                io.remove_path(target)
            elif staged.is_dir():
                io.replace_directory(staged, target)
            elif staged.exists():
                os.replace(staged, target)
            # else: moved before a crash
        io.fsync_path(self.path)
        io.remove_path(self.work)
