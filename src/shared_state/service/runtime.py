"""The running service's parts, as the API layer sees them (`app.state.shared_state`),
and the drain that stops them on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from shared_state.config import Settings
from shared_state.service.scheduler import stop_sync_schedule
from shared_state.service.sync import Synchronizer
from shared_state.service.writes import SettingsWriter
from shared_state.state.manager import StateManager

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    manager: StateManager
    synchronizer: Synchronizer
    writer: SettingsWriter
    scheduler: AsyncIOScheduler | None = None
    started_monotonic: float = field(default_factory=time.monotonic)
    draining: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the drain begins (SIGTERM), never cleared: `/readyz` answers 503 from
    then on, and a long-lived answer (an event stream) that waits on it sends its last
    words (`: shutdown`) and ends. `StateManager.close()`, called next, ends every bus
    subscription as well."""

    @property
    def is_draining(self) -> bool:
        return self.draining.is_set()

    async def drain(self) -> None:
        """The process is stopping (SIGTERM), in this order: stop being ready, end the
        event streams, stop the schedule, end a running sync (requests waiting on it
        answer with the state as it is, before the server's grace period ends), and
        write the snapshot file. The server then waits for requests in flight."""
        self.draining.set()
        self.manager.close()
        if self.scheduler is not None:
            stop_sync_schedule(self.scheduler)
        await self.synchronizer.aclose()
        await self.manager.save_snapshot()
        log.info("drained: not ready, streams ended, syncing stopped, snapshot written")

    async def stop_syncing(self) -> None:
        """The syncing part of `drain` alone (issue 6's hook; `drain` supersedes it)."""
        await self.synchronizer.aclose()

    @property
    def uptime_s(self) -> float:
        return round(time.monotonic() - self.started_monotonic, 3)
