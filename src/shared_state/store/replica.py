"""One replica's part in a shared state on Redis (contract §11): following it, holding
the lease, and carrying out (or handing on) syncs and writes.

Every replica follows the shared state (`_follow`): it waits on the change log
(`XREAD BLOCK`), takes each new version into its own `StateManager` (`adopt`, with the
events that led to it, so its event streams and its change log are every other
replica's), and, while nothing is published, notices renewed timestamps (`touch`) with
one cheap read a second. It serves every read from its own manager, so a replica that
cannot reach Redis goes on serving the last state it holds.

One replica at a time holds the lease (`LeaseKeeper`). The holder runs the schedule
(and so logs in to the upstreams and propagates), syncs at once when it takes over,
serves the commands other replicas hand it (`CommandQueue`), and publishes every state
before serving it (`Replication`, fenced): a refused publish changes nothing. A holder
that finds Redis empty (a Redis that came back without its data) gives it the newest
state it has, at its version; a first holder with a snapshot file starts from it.

`ReplicatedOperations` is what the routes call: the holder runs a sync or a write
itself; any other replica hands it to the holder and answers once its own copy has the
resulting version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.exceptions import RedisError

from shared_state.config import Settings
from shared_state.domain.events import ChangedEvent
from shared_state.domain.models import SharedState, SourceStatus, WritableSection
from shared_state.errors import (
    HolderUnavailable,
    StoreUnavailable,
    UpstreamWriteFailed,
    VersionMismatch,
)
from shared_state.service.operations import LocalOperations
from shared_state.service.scheduler import start_sync_schedule, stop_sync_schedule
from shared_state.service.sync import Synchronizer, SyncReport
from shared_state.state.manager import StateManager
from shared_state.store.commands import Command, CommandQueue
from shared_state.store.connection import connect, redacted_url
from shared_state.store.idempotency import RedisIdempotencyStore
from shared_state.store.keys import StoreKeys
from shared_state.store.lease import Lease, LeaseKeeper, NotHolder
from shared_state.store.shared_state import SharedStateStore, StaleFence, Update
from shared_state.store.tasks import stop_task
from shared_state.store.upstream_lock import FencedUpstreamLock

log = logging.getLogger(__name__)

WAIT_S = 1.0
"""How long one wait in Redis lasts (`XREAD BLOCK`, `BLPOP`): how soon a follower
notices renewed timestamps, and a stopping replica its stop."""
RETRY_CAP_S = 1.0
"""The longest pause between two attempts to reach a Redis that does not answer."""


def replica_id() -> str:
    """This process's name in the lease and in `/status`: host, pid and a few random
    characters (a restarted process with the same pid is another replica)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class Replica:
    """Follows the shared state, keeps (or waits for) the lease, and publishes the
    holder's states; `manager.replication` is this object once `start`ed."""

    def __init__(
        self,
        settings: Settings,
        manager: StateManager,
        stack: AsyncExitStack,
        *,
        schedule: bool = True,
        restore: bool = True,
        name: str | None = None,
    ) -> None:
        assert settings.redis_url is not None
        url = settings.redis_url.get_secret_value()
        self.url = redacted_url(url)
        # A write may make two Redis calls (its Idempotency-Key, the upstream lock), each
        # tried twice: all four fit in the request timeout, as contract §11 asks of the
        # 503 for a Redis that stopped answering.
        timeout_s = max(0.05, min(settings.request_timeout_s / 4, 2.5))
        self._redis = connect(url, timeout_s=timeout_s)
        self._blocking = connect(url, timeout_s=timeout_s, wait_s=WAIT_S)
        stack.push_async_callback(self._blocking.aclose)
        stack.push_async_callback(self._redis.aclose)
        keys = StoreKeys(settings.redis_prefix)
        self.id = name or replica_id()
        self.store = SharedStateStore(
            self._redis, keys, replay_versions=settings.replay_versions, blocking=self._blocking
        )
        self.lease = Lease(self._redis, keys, self.id, settings.lease_ttl_s)
        self.keeper = LeaseKeeper(self.lease, on_change=self._tenure_changed)
        self.commands = CommandQueue(self._redis, self._blocking, keys, wait_s=WAIT_S)
        self.idempotency = RedisIdempotencyStore(self._redis, keys)
        self.upstream_lock = FencedUpstreamLock(
            self._redis, keys, self.lease, wait_s=settings.lease_ttl_s + timeout_s
        )
        self._settings = settings
        self._manager = manager
        self._synchronizer: Synchronizer | None = None
        self._schedule = schedule
        self._restore = restore
        self._scheduler: AsyncIOScheduler | None = None
        self._serving: asyncio.Task[None] | None = None
        self._tenure: int | None = None
        """The fencing token of the tenure whose commands `_serve` carries out."""
        self._following: asyncio.Task[None] | None = None
        self._stopping = False
        self._pulling = asyncio.Lock()
        self._seen_touch = 0
        self._refused_version = -1
        self.local: LocalOperations | None = None
        self.lease_holder: str | None = None
        self.last_error: str | None = None
        self.is_available = True

    # --- the parts the runtime shows ---------------------------------------------------

    @property
    def is_holder(self) -> bool:
        return self.lease.held

    def status(self) -> dict[str, Any]:
        """`/status`'s `store`."""
        holding = self.is_holder
        return {
            "kind": "redis",
            "status": "ok" if self.is_available else "unavailable",
            "lastError": self.last_error,
            "replica": self.id,
            "leaseHolder": self.id if holding else self.lease_holder,
            "holding": holding,
            "takeovers": self.keeper.takeovers,
        }

    # --- life --------------------------------------------------------------------------

    async def start(self, synchronizer: Synchronizer, local: LocalOperations) -> None:
        """Load the shared state (when Redis answers: otherwise it follows once it
        does), then follow it and compete for the lease; as the holder it syncs with
        `synchronizer` on the schedule and carries commands out with `local`."""
        self._synchronizer = synchronizer
        self.local = local
        self._manager.replication = self
        log.info("replica %s on %s (prefix %s)", self.id, self.url, self._settings.redis_prefix)
        with contextlib.suppress(StoreUnavailable):
            await self.pull()
        self._following = asyncio.create_task(self._follow(), name="replica-follow")
        self.keeper.start()

    async def stop(self) -> None:
        """Step down (the lease goes back at once, so another replica takes over without
        waiting for it to run out) and stop following. Twice is once."""
        if self._stopping:
            return
        self._stopping = True
        await self.keeper.stop()
        await self._step_down()
        if self._following is not None:
            await stop_task(self._following, grace_s=WAIT_S * 2, within_s=WAIT_S)

    # --- Replication: the holder's states go to Redis before they are served ------------

    async def publish(self, version: int, snapshot: bytes, event: ChangedEvent) -> None:
        fence = self._fence()
        async with self._reaching_redis():
            await self.store.publish(
                holder=self.id, fence=fence, version=version, snapshot=snapshot, event=event
            )
        self._seen_touch = 0

    async def touch(self, version: int, snapshot: bytes) -> None:
        fence = self._fence()
        async with self._reaching_redis():
            self._seen_touch = await self.store.touch(
                holder=self.id, fence=fence, version=version, snapshot=snapshot
            )

    async def restart(self, version: int, snapshot: bytes) -> None:
        fence = self._fence()
        async with self._reaching_redis():
            await self.store.publish(
                holder=self.id, fence=fence, version=version, snapshot=snapshot, event=None
            )
        self._seen_touch = 0

    def _fence(self) -> int:
        fence = self.lease.fence
        if fence is None or not self.lease.held:
            raise NotHolder("This replica does not hold the sync lease; nothing was published.")
        return fence

    @contextlib.asynccontextmanager
    async def _reaching_redis(self) -> Any:
        """Redis errors as `StoreUnavailable` (and in `/status`); a refused fence as
        `NotHolder`."""
        try:
            yield
        except StaleFence as refused:
            log.warning("the shared state refused this replica's publish: %s", refused)
            await self._check_lease()
            raise NotHolder("This replica lost the sync lease; nothing was published.") from None
        except (RedisError, OSError) as error:
            self._failed(error)
            raise StoreUnavailable(
                f"Redis did not answer ({type(error).__name__}); nothing was changed."
            ) from error
        self._answered()

    async def _check_lease(self) -> None:
        """Redis says this replica does not hold the lease, though its clock says it
        does: ask now (a failed renewal drops the fencing token, so `is_holder` turns
        false at once and the keeper steps down at its next turn)."""
        with contextlib.suppress(RedisError, OSError):
            await self.lease.renew()

    def _failed(self, error: BaseException) -> None:
        if self.is_available:
            log.warning("Redis unavailable (%s): serving the last state held", type(error).__name__)
        self.is_available = False
        self.last_error = f"{type(error).__name__}: {error}"[:300]

    def _answered(self) -> None:
        if not self.is_available:
            log.info("Redis answers again")
        self.is_available = True
        self.last_error = None  # as a source's: the error of the current trouble, if any

    # --- following ---------------------------------------------------------------------

    async def pull(self) -> None:
        """Take what Redis has that this replica does not: newer versions (with their
        events), or renewed timestamps. A holder that finds Redis empty fills it."""
        async with self._pulling:
            version = self._manager.state.version
            async with self._reaching_redis():
                if version == 0:
                    held = await self.store.held()  # a start: every event the log holds
                    update = None if held is None else Update(held[0], held[1])
                else:
                    update = await self.store.changes_after(version)
            if update is None or update.state.version < version:
                await self._redis_lost_versions(version, update)
                return
            shared = update.state
            if self.is_holder and shared.version == version < shared.highest:
                # Another replica has seen a version this Redis lost: go on above it.
                await self._manager.advance(shared.highest + 1)
                return
            if shared.version == version and shared.touch == self._seen_touch:
                return
            await self._manager.adopt(shared.snapshot, update.events)
            self._seen_touch = shared.touch

    async def catch_up(self, version: int) -> None:
        """Wait until this replica serves `version` (or a newer one): the answer to a
        command the holder carried out."""
        if self._manager.state.version < version:
            with contextlib.suppress(StoreUnavailable):
                await self.pull()

    async def _redis_lost_versions(self, version: int, update: Update | None) -> None:
        """Redis holds an older state than this replica (or none): it lost data (a
        restart without persistence). Every replica reports its version; the holder
        gives Redis the newest state it has, at its version (from the snapshot file, for
        a first holder that has one), and goes on above any version reported."""
        shared = None if update is None else update.state
        if version > 0:
            async with self._reaching_redis():
                await self.store.report(version)
            if shared is not None and shared.version != self._refused_version:
                self._refused_version = shared.version
                log.warning(
                    "the shared state is at version %d, behind this replica's %d: Redis lost data",
                    shared.version,
                    version,
                )
        if not self.is_holder:
            return
        manager = self._manager
        if version == 0 and self._restore:
            self._restore = False  # once: after that, the state comes from syncs
            manager.restore()
        if manager.state.version == 0:
            return  # nothing to give: the first sync publishes
        fence = self._fence()
        async with self._reaching_redis():
            await self.store.publish(
                holder=self.id,
                fence=fence,
                version=manager.state.version,
                snapshot=manager.replica_snapshot(),
                event=None,
            )
        self._seen_touch = 0
        log.info("gave the shared state version %d to Redis", manager.state.version)

    async def _follow(self) -> None:
        pause = 0.05
        must_pull = False
        while not self._stopping:
            try:
                if must_pull:
                    await self.pull()
                    must_pull = False
                version = self._manager.state.version
                async with self._reaching_redis():
                    if not self.is_holder:
                        self.lease_holder = await self.lease.current_holder()
                    if await self.store.wait_for_change(version, block_ms=int(WAIT_S * 1000)):
                        must_pull = True
                        continue
                    touched = await self.store.touched()
                must_pull = (
                    touched is None
                    or touched[:2] != (version, self._seen_touch)
                    or (self.is_holder and touched[2] > version)
                )
                pause = 0.05
            except (StoreUnavailable, NotHolder):
                must_pull = True
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_CAP_S)
            except Exception:
                log.exception("following the shared state failed; trying again")
                must_pull = True
                await asyncio.sleep(RETRY_CAP_S)

    # --- holding -----------------------------------------------------------------------

    async def _tenure_changed(self, fence: int | None) -> None:
        if fence is None:
            if self._stopping:
                log.info("replica %s gave the sync lease back", self.id)
            else:
                log.warning("replica %s no longer holds the sync lease", self.id)
            await self._step_down()
            return
        log.info("replica %s holds the sync lease (fence %d): it syncs now", self.id, fence)
        self._tenure = fence
        with contextlib.suppress(StoreUnavailable):
            await self.pull()  # catch up before syncing (and fill an empty Redis)
        if self._stopping or self._tenure != fence:
            return
        self._serving = asyncio.create_task(self._serve(fence), name="replica-commands")
        if self._schedule and self._synchronizer is not None:
            interval_s = self._settings.sync_interval_s
            self._scheduler = start_sync_schedule(self._synchronizer, interval_s)

    async def _step_down(self) -> None:
        self._tenure = None  # `_serve` ends at its next turn
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            stop_sync_schedule(scheduler)
        serving, self._serving = self._serving, None
        if serving is not None:
            await stop_task(serving, grace_s=WAIT_S * 2, within_s=WAIT_S)
        await self.commands.aclose()

    async def _serve(self, fence: int) -> None:
        """Carry commands out for the whole tenure `fence` (`_step_down` ends it). A
        moment in which this replica's own clock says the lease ran out (a renewal late
        on a loaded machine) pauses the popping, not the tenure: the keeper's next turn
        renews the lease or steps down."""
        pause = 0.05
        while not self._stopping and self._tenure == fence:
            if not self.is_holder:
                await asyncio.sleep(0.05)
                continue
            try:
                async with self._reaching_redis():
                    await self.commands.serve_once(self._carry_out)
                pause = 0.05
            except StoreUnavailable:
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_CAP_S)

    async def _carry_out(self, command: Command) -> dict[str, Any] | None:
        """Run one command for another replica: its answer as JSON, or None when this
        replica turned out not to hold the lease any more (the command goes back)."""
        assert self.local is not None
        try:
            if command.get("op") == "sync":
                report = await self.local.sync()
                return {"outcome": "ok", "version": report.version, "report": _report(report)}
            if command.get("op") == "write" and command.get("section") in ("llm", "ui"):
                state = await self.local.write(
                    command["section"], dict(command["values"]), if_match=command.get("ifMatch")
                )
                return {"outcome": "ok", "version": state.version}
            return {"outcome": "holder_unavailable", "detail": "Unknown command."}
        except NotHolder:
            await self._check_lease()
            return None
        except VersionMismatch as refused:
            return {"outcome": "version_mismatch", "detail": str(refused)}
        except UpstreamWriteFailed as failed:
            return {"outcome": "write_failed", "results": failed.results}
        except (StoreUnavailable, HolderUnavailable) as unavailable:
            return {"outcome": unavailable.code, "detail": str(unavailable)}


class ReplicatedOperations:
    """`Operations` on a replica: the holder carries a sync or a write out itself, any
    other replica hands it over and answers once it serves the result."""

    def __init__(
        self, replica: Replica, local: LocalOperations, manager: StateManager, settings: Settings
    ) -> None:
        self._replica = replica
        self._local = local
        self._manager = manager
        # A write may wait behind a whole sync in the holder's upstream lock.
        self._timeout_s = settings.sync_timeout_s + 2 * settings.request_timeout_s

    async def sync(self) -> SyncReport:
        if self._replica.is_holder:
            with contextlib.suppress(NotHolder):
                return await self._local.sync()
        answer = await self._call({"op": "sync"})
        report = answer["report"]
        await self._replica.catch_up(int(answer["version"]))
        return SyncReport(
            version=int(report["version"]),
            changed=list(report["changed"]),
            sources={
                name: SourceStatus.model_validate(status)
                for name, status in report["sources"].items()
            },
            duration_ms=float(report["durationMs"]),
        )

    async def write(
        self, section: WritableSection, values: Mapping[str, Any], *, if_match: str | None
    ) -> SharedState:
        if self._replica.is_holder:
            with contextlib.suppress(NotHolder):
                return await self._local.write(section, values, if_match=if_match)
        answer = await self._call(
            {"op": "write", "section": section, "values": dict(values), "ifMatch": if_match}
        )
        await self._replica.catch_up(int(answer["version"]))
        return self._manager.state

    async def _call(self, command: Command) -> dict[str, Any]:
        if not self._replica.is_available:
            # Known down: say so at once rather than after a timeout (the follower tries
            # Redis again every second and clears this when it answers).
            raise StoreUnavailable(
                "Redis does not answer now; nothing was changed (/status shows the error)."
            )
        answer = await self._replica.commands.call(command, timeout_s=self._timeout_s)
        outcome = answer.get("outcome")
        if outcome == "ok":
            return answer
        if outcome == "version_mismatch":
            raise VersionMismatch(str(answer["detail"]))
        if outcome == "write_failed":
            raise UpstreamWriteFailed(answer["results"])
        if outcome == "store_unavailable":
            raise StoreUnavailable(str(answer["detail"]))
        raise HolderUnavailable(str(answer.get("detail", "The syncing replica refused.")))


def _report(report: SyncReport) -> dict[str, Any]:
    return {
        "version": report.version,
        "changed": report.changed,
        "sources": {
            name: status.model_dump(mode="json", by_alias=True)
            for name, status in report.sources.items()
        },
        "durationMs": report.duration_ms,
    }
