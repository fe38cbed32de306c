"""The snapshot file: the last good state, kept across restarts.

Written atomically (temporary file, fsync, rename) after each change, read at start-up.
It holds what each upstream last answered (secrets were removed when it arrived), the
settings the service keeps itself, and the version, so that the version never goes
backwards across a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from shared_state.domain.models import (
    DomainModel,
    LocalSettings,
    SourceName,
    SourceStatus,
    Timestamp,
    UpstreamSnapshot,
)

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT: Literal[1] = 1


class SourceRecord(DomainModel):
    """One upstream's status and its last good data."""

    status: SourceStatus
    data: UpstreamSnapshot | None = None


class StoredState(DomainModel):
    """The snapshot file's content."""

    format: Literal[1] = SNAPSHOT_FORMAT
    version: int
    sync_timestamp: Timestamp | None = None
    sources: dict[SourceName, SourceRecord]
    local: LocalSettings = LocalSettings()


class SnapshotStore:
    """Reads and atomically writes the snapshot file; saves are serialised, last one wins."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()
        self._saved_version = -1

    def load(self) -> StoredState | None:
        """The stored state, or None when there is no usable file (logged, never fatal)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read snapshot file %s: %s", self.path, exc.strerror)
            return None
        try:
            return StoredState.model_validate_json(raw)
        except ValidationError:
            log.warning("ignoring snapshot file %s: not a snapshot of this format", self.path)
            return None

    async def save(self, version: int, payload: bytes) -> None:
        """Write `payload` (the whole JSON document of `version`) atomically, off the loop."""
        async with self._lock:
            if version < self._saved_version:
                return  # a newer state was saved while this one waited
            self._saved_version = version
            try:
                await asyncio.to_thread(_write_atomically, self.path, payload)
            except OSError as exc:
                log.warning("cannot write snapshot file %s: %s", self.path, exc.strerror)


def _write_atomically(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(payload)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
