"""Silences the backends' own log lines in the `mp-keras` command (`--verbose` keeps them).

TensorFlow 2.21 and XLA log through C++ absl, which ignores `TF_CPP_MIN_LOG_LEVEL` for
many messages (`All log messages before absl::InitializeLog()`, `Could not find cuda
drivers`, `Reading SavedModel from ...`), and they write straight to file descriptor 2.
So the command routes descriptor 2 through a pipe, drops the lines in the C++ log
format, and passes everything else through: Python warnings, mp_keras' own messages,
tracebacks and fatal (`F`) log lines.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading

# glog/absl lines: "I0000 00:00:1796111524.218 24081 port.cc:153] ..." (levels I, W, E).
_NOISE = re.compile(
    rb"^(?:[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|To enable the following instructions: .* rebuild TensorFlow"
    rb"|INFO: Created TensorFlow Lite)"
)
_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR", "GLOG_minloglevel": "3"}
_LOGGERS = ("absl", "tensorflow", "jax._src.xla_bridge", "h5py")
_installed = False


def is_backend_noise(line: bytes) -> bool:
    """Whether a line of stderr is a backend's C++ log line.

    Example:
        >>> is_backend_noise(b"I0000 00:00:1796111524.218099   24081 port.cc:153] oneDNN on")
        True
        >>> is_backend_noise(b"mp-keras: warning: checkpoint epoch-00003 is unreadable")
        False
    """
    return bool(_NOISE.match(line))


def quiet_backends() -> None:
    """Sets the backends' log levels and filters their C++ lines out of stderr (once)."""
    global _installed
    if _installed:
        return
    _installed = True
    for name, value in _ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    _filter_stderr()


def _filter_stderr() -> None:
    try:
        original = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        return
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        pending = b""
        while chunk := os.read(read_end, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not is_backend_noise(line))
            if kept:
                os.write(original, kept)
        if pending and not is_backend_noise(pending):
            os.write(original, pending)

    thread = threading.Thread(target=forward, name="mp-keras-stderr", daemon=True)
    thread.start()

    def restore() -> None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)  # closes the pipe's last write end: the thread reads EOF
        thread.join(timeout=2.0)

    atexit.register(restore)
