"""Crash-safe writes: every file mp_keras writes goes to a temporary name, then is renamed.

`os.replace` of a file is atomic on POSIX and Windows, so a reader (or a process killed
with SIGKILL at any instant) sees either the old complete file or the new complete one,
never a half-written one. Temporary names start with `.tmp-` and keep the final name's
suffix (Keras and Matplotlib choose the format from it); leftovers of a killed process are
removed by `remove_temporaries`. Folders are replaced whole by `replace_directory`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMPORARY_PREFIX = ".tmp-"


def temporary_sibling(path: str | os.PathLike) -> Path:
    """A fresh temporary name in the folder of `path`, ending like `path`.

    Example:
        >>> name = temporary_sibling("/data/run/model.keras").name
        >>> name.startswith(".tmp-"), name.endswith("-model.keras")
        (True, True)
    """
    path = Path(path)
    return path.parent / f"{TEMPORARY_PREFIX}{uuid.uuid4().hex[:12]}-{path.name}"


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether `path` names a temporary file or folder of `atomic_path`/`replace_directory`."""
    return Path(path).name.startswith(TEMPORARY_PREFIX)


def fsync_path(path: str | os.PathLike) -> None:
    """Flushes a file, or a folder's entries, to disk (best effort for folders)."""
    path = Path(path)
    if path.is_dir():
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # e.g. Windows cannot open folders
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
        return
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path to write; on success it is flushed and renamed to `path`.

    If the block raises, the temporary file (or folder) is removed and `path` is left as
    it was.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with atomic_path(folder / "a.txt") as tmp:
        ...     _ = tmp.write_text("done")
        >>> (folder / "a.txt").read_text(), [p.name for p in folder.iterdir()]
        ('done', ['a.txt'])
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        if tmp.is_dir():
            replace_directory(tmp, path)
            return
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        remove_path(tmp)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Writes `obj` as indented JSON to `path` atomically."""
    return write_text(path, json.dumps(obj, indent=2) + "\n")


def save_model(model: Any, path: str | os.PathLike) -> Path:
    """`model.save(path)` to a temporary name, then renamed: never a torn `.keras` file."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)


def read_json(path: str | os.PathLike) -> Any | None:
    """The JSON content of `path`, or None if it is missing or not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def remove_path(path: str | os.PathLike) -> None:
    """Removes a file or a folder tree if it exists.

    A folder is first renamed to a temporary name, so that it vanishes from its old name
    at once even if the removal is interrupted.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        doomed = path if is_temporary(path) else temporary_sibling(path)
        if doomed != path:
            try:
                os.rename(path, doomed)
            except OSError:
                doomed = path
        shutil.rmtree(doomed, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Removes the temporary files and folders left in `folder` by killed processes."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    leftovers = [entry for entry in folder.iterdir() if is_temporary(entry)]
    for entry in leftovers:
        remove_path(entry)
    return leftovers


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swaps two existing paths (Linux renameat2); False where unsupported."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        renameat2 = ctypes.CDLL(name, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(
        at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), ctypes.c_uint(_RENAME_EXCHANGE)
    )
    return result == 0


def replace_directory(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Moves the folder `source` to `target`, replacing any folder already there.

    Where the system can swap two paths atomically (Linux), `target` is at every instant
    either the old folder or the new one. Elsewhere the old folder is first renamed aside,
    which leaves a moment with neither at `target`, but never a mixed folder.
    """
    source, target = Path(source), Path(target)
    for entry in source.rglob("*"):
        if entry.is_file():
            fsync_path(entry)
    if not target.exists():
        os.rename(source, target)
    elif _exchange(source, target):
        remove_path(source)  # now holds the old folder
    else:
        old = temporary_sibling(target)
        os.rename(target, old)
        os.rename(source, target)
        remove_path(old)
    fsync_path(target.parent)
