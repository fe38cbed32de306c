"""What the API asks of the service beyond reading: sync now, and write settings.

One process carries both out itself (`LocalOperations`). A replica on Redis (contract
§11) hands them to the lease holder (`store.replica.ReplicatedOperations`), which runs
them with its own `LocalOperations`; the routes see one interface either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from shared_state.domain.models import SharedState, WritableSection
from shared_state.errors import VersionMismatch
from shared_state.service.sync import Synchronizer, SyncReport
from shared_state.service.writes import SettingsWriter
from shared_state.state.manager import StateManager


class Operations(Protocol):
    async def sync(self) -> SyncReport:
        """Run a sync, or join the running one; its report once its result is served."""

    async def write(
        self, section: WritableSection, values: Mapping[str, Any], *, if_match: str | None
    ) -> SharedState:
        """Write `values` through (contract §6); the state that has them. `VersionMismatch`
        when `if_match` is no longer current, `UpstreamWriteFailed` when an upstream
        refused (nothing changed)."""


class LocalOperations:
    """Syncs and writes carried out in this process."""

    def __init__(
        self, synchronizer: Synchronizer, writer: SettingsWriter, manager: StateManager
    ) -> None:
        self._synchronizer = synchronizer
        self._writer = writer
        self._manager = manager

    async def sync(self) -> SyncReport:
        return await self._synchronizer.sync()

    async def write(
        self, section: WritableSection, values: Mapping[str, Any], *, if_match: str | None
    ) -> SharedState:
        return await self._writer.write(
            section, values, precondition=still_current(self._manager, if_match)
        )


def still_current(manager: StateManager, if_match: str | None) -> Callable[[], None]:
    """The `If-Match` check the writer runs under its locks."""

    def check() -> None:
        if if_match is not None and not manager.is_current(if_match, ("state", "settings")):
            raise VersionMismatch(
                "The state changed since that ETag was read (If-Match); nothing was written."
            )

    return check
