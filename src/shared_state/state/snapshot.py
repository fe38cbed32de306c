"""The snapshot file: the last good state, kept across restarts.

Written atomically (temporary file, fsync, rename) after each change, off the event
loop, read at start-up. It holds what each upstream last answered (secrets were removed
when it arrived), the settings the service keeps itself, and the version, so that the
version never goes backwards across a restart, and propagation's memory (the value per
field the upstreams last agreed on, open conflicts), so a restart neither takes an old
difference for a change nor misses one made while it was down. Beside it:

- `<name>.version`: the highest version ever saved, written (atomically) before the
  file itself, so the version survives a snapshot file that is lost or corrupt;
- `<name>.prev`: the previous save, loaded when the file itself is missing or corrupt;
- `<name>.corrupt-<UTC time>`: a file that could not be read as a snapshot, moved aside
  (never overwritten) for a person to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from shared_state.atomic_file import fsync_directory, write_atomically, write_temporary
from shared_state.domain.models import (
    DomainModel,
    LocalSettings,
    SourceName,
    SourceStatus,
    Timestamp,
    UpstreamSnapshot,
)
from shared_state.domain.propagation import PropagationMemory

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
    propagation: PropagationMemory = PropagationMemory()
    """Propagation's bases and open conflicts (contract §10); absent in older files."""


class SnapshotStore:
    """Reads and atomically writes the snapshot file; saves are serialised, last one wins."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.version_path = path.with_name(f"{path.name}.version")
        self.previous_path = path.with_name(f"{path.name}.prev")
        self._lock = asyncio.Lock()
        self._saved_version = -1

    def load(self) -> StoredState | None:
        """The stored state, or None when there is nothing usable (logged, never fatal).

        A corrupt file is moved aside and the previous save is used instead; the version
        is the highest ever saved, so it continues above it even when no data survived
        (the state then holds no data, only the version)."""
        highest = self._read_version()
        stored = self._load_file(self.path)
        if stored is None and self.previous_path.exists():
            stored = self._load_file(self.previous_path)
            if stored is not None:
                log.warning(
                    "restoring the previous snapshot %s (version %d) instead",
                    self.previous_path,
                    stored.version,
                )
        if stored is None:
            if highest is None:
                return None
            log.warning(
                "no snapshot data survived; continuing above version %d from %s",
                highest,
                self.version_path,
            )
            return StoredState(version=highest, sources={})
        if highest is not None and highest > stored.version:
            stored = stored.model_copy(update={"version": highest})
        return stored

    async def save(self, version: int, payload: bytes) -> None:
        """Write `payload` (the whole JSON document of a `StoredState` at `version`) as
        the snapshot file, off the event loop; a save older than the last one is dropped."""
        async with self._lock:
            if version < self._saved_version:
                return  # a newer state was saved while this one waited
            self._saved_version = version
            try:
                await asyncio.to_thread(self._write, version, payload)
            except OSError as exc:
                log.warning("cannot write snapshot file %s: %s", self.path, exc.strerror)

    def _write(self, version: int, payload: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        highest = self._read_version(quiet=True)
        if highest is None or version > highest:
            write_atomically(self.version_path, b"%d\n" % version)
        tmp_name = write_temporary(self.path, payload)
        try:
            if self.path.is_file():
                os.replace(self.path, self.previous_path)
            os.replace(tmp_name, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        fsync_directory(self.path.parent)

    def _read_version(self, *, quiet: bool = False) -> int | None:
        try:
            text = self.version_path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            if not quiet:
                log.warning("ignoring snapshot version file %s: %s", self.version_path, exc)
            return None
        if not text.isdigit() or len(text) > 18:
            if not quiet:
                log.warning("ignoring snapshot version file %s: not a version", self.version_path)
            return None
        return int(text)

    def _load_file(self, path: Path) -> StoredState | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read snapshot file %s: %s", path, exc.strerror)
            return None
        try:
            return StoredState.model_validate_json(raw)
        except ValidationError:
            aside = _move_aside(path)
            log.warning(
                "snapshot file %s is not a snapshot of this format (corrupt or truncated); "
                "kept as %s",
                path,
                aside or "is (it could not be moved)",
            )
            return None


def _move_aside(path: Path) -> Path | None:
    """Rename a corrupt file to `<name>.corrupt-<UTC time>`, never over another one."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(100):
        suffix = f".corrupt-{stamp}" + (f"-{attempt}" if attempt else "")
        target = path.with_name(path.name + suffix)
        if target.exists():
            continue
        try:
            os.rename(path, target)
        except OSError:
            return None
        return target
    return None
