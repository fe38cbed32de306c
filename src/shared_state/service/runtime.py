"""The running service's parts, as the API layer sees them (`app.state.shared_state`),
and the drain that stops them on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from shared_state.config import Settings
from shared_state.metrics import Metrics
from shared_state.service.idempotency import IdempotencyStore, MemoryIdempotencyStore
from shared_state.service.operations import LocalOperations, Operations
from shared_state.service.propagation import Propagator
from shared_state.service.scheduler import stop_sync_schedule
from shared_state.service.sync import Synchronizer
from shared_state.service.writes import SettingsWriter
from shared_state.state.manager import StateManager

log = logging.getLogger(__name__)


class ReplicaRole(Protocol):
    """This process's part among several replicas (`store.replica.Replica`)."""

    def status(self) -> dict[str, Any]:
        """`/status`'s `store`."""

    async def stop(self) -> None:
        """Step down and stop following (the drain)."""


MEMORY_STORE_STATUS: dict[str, Any] = {
    "kind": "memory",
    "status": "ok",
    "lastError": None,
    "replica": None,
    "leaseHolder": None,
    "holding": True,
    "takeovers": 0,
}
"""`/status`'s `store` for one process: everything in memory, and it does all the syncing."""


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    manager: StateManager
    synchronizer: Synchronizer
    writer: SettingsWriter
    metrics: Metrics = field(default_factory=Metrics)
    idempotency: IdempotencyStore = field(default_factory=MemoryIdempotencyStore)
    scheduler: AsyncIOScheduler | None = None
    propagator: Propagator | None = None
    """Keeps the upstreams in step after each sync (contract §10); its groups are empty
    (it does nothing) unless `SHARED_STATE_PROPAGATE` names some."""
    operations: Operations | None = None
    """Syncs and writes as the API asks for them; None: carried out here, by
    `synchronizer` and `writer` (`LocalOperations`)."""
    replica: ReplicaRole | None = None
    """Set when `SHARED_STATE_REDIS_URL` is (contract §11)."""
    started_monotonic: float = field(default_factory=time.monotonic)
    draining: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the drain begins (SIGTERM), never cleared: `/readyz` answers 503 from
    then on, and a long-lived answer (an event stream) that waits on it sends its last
    words (`: shutdown`) and ends. `StateManager.close()`, called next, ends every bus
    subscription as well."""

    actions: Operations = field(init=False)
    """What `POST /sync`, `?refresh=true` and the writes call: `operations`, or else
    `LocalOperations`."""

    def __post_init__(self) -> None:
        local = LocalOperations(self.synchronizer, self.writer, self.manager)
        object.__setattr__(self, "actions", self.operations or local)

    def store_status(self) -> dict[str, Any]:
        """`/status`'s `store` (and the store's metrics)."""
        return self.replica.status() if self.replica is not None else MEMORY_STORE_STATUS

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
        if self.replica is not None:
            await self.replica.stop()  # the lease goes back now: another replica syncs
        await self.manager.save_snapshot()
        log.info("drained: not ready, streams ended, syncing stopped, snapshot written")

    async def stop_syncing(self) -> None:
        """Issue 6's hook, kept for callers of it: end the event streams and a running
        sync. `drain` (what SIGTERM runs) does this and more."""
        self.manager.close()  # event streams end now (`: shutdown`), not at the grace's end
        await self.synchronizer.aclose()

    @property
    def uptime_s(self) -> float:
        return round(time.monotonic() - self.started_monotonic, 3)
