"""Whole-file writes that a crash cannot leave half done: a temporary file beside the
target, fsynced, then renamed over it. For the snapshot file and its small companions."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_temporary(path: Path, payload: bytes) -> str:
    """`payload` in a new fsynced temporary file beside `path` (hidden, same directory,
    so a rename onto `path` is atomic); its name. The caller renames or removes it."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(payload)
            tmp.flush()
            os.fsync(tmp.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return tmp_name


def write_atomically(path: Path, payload: bytes) -> None:
    """Replace `path` with `payload` whole: readers see the old content or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = write_temporary(path, payload)
    try:
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
