"""The running service's parts, as the API layer sees them (`app.state.shared_state`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from shared_state.config import Settings
from shared_state.metrics import Metrics
from shared_state.service.idempotency import IdempotencyStore, MemoryIdempotencyStore
from shared_state.service.sync import Synchronizer
from shared_state.service.writes import SettingsWriter
from shared_state.state.manager import StateManager


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    manager: StateManager
    synchronizer: Synchronizer
    writer: SettingsWriter
    metrics: Metrics = field(default_factory=Metrics)
    idempotency: IdempotencyStore = field(default_factory=MemoryIdempotencyStore)
    started_monotonic: float = field(default_factory=time.monotonic)

    async def stop_syncing(self) -> None:
        """The process is stopping (SIGTERM): end a running sync now, so that requests
        waiting on it answer (with the state as it is) before the server's grace period
        for in-flight requests ends, rather than being cancelled with a traceback."""
        self.manager.close()  # event streams end now (`: shutdown`), not at the grace's end
        await self.synchronizer.aclose()

    @property
    def uptime_s(self) -> float:
        return round(time.monotonic() - self.started_monotonic, 3)
