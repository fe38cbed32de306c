"""One sync: fetch every upstream concurrently, record the results, report.

`sync()` is single-flight: the timer, `?refresh=true` and `POST /sync` that arrive
while a sync runs share that run, so an upstream is never asked twice at once. One
failing upstream never fails the sync (its last good data stays) and never stops the
loop.

A whole sync has a deadline (`SHARED_STATE_SYNC_TIMEOUT_S`): an upstream still being read
when it passes is given up for this sync and marked stale with a `lastError` that says
so, and its last good data stays. Without it, an upstream that accepts connections and
never answers would hold the upstream lock (and every write behind it) for as long as
its retries last.

The schedule backs off a failing upstream (`service/backoff.py`): a scheduled tick
(`sync(scheduled=True)`) asks only the sources that are due; `POST /sync` and
`?refresh=true` (`sync()`) ask every upstream. A source not asked keeps its status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared_state.adapters.base import Upstream
from shared_state.config import DEFAULT_SYNC_INTERVAL_S
from shared_state.domain.models import SECTIONS, Section, SourceName, SourceStatus, UpstreamSnapshot
from shared_state.errors import (
    SharedStateError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamUnavailable,
)
from shared_state.service.backoff import Backoff
from shared_state.state.manager import StateManager

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
UpstreamLock = AbstractAsyncContextManager[Any]
"""What keeps syncs and writes apart: an `asyncio.Lock` in one process, a lock in Redis
as well on replicas (`store.upstream_lock`), which may refuse (`SharedStateError`)."""
AfterSync = Callable[[Mapping[SourceName, UpstreamSnapshot | UpstreamError]], Awaitable[bool]]
"""Runs after a sync recorded its results, still under the upstream lock (propagation);
True when it changed the state."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SyncReport:
    """What one sync did: the answer of `POST /api/shared-state/sync`."""

    version: int
    changed: list[Section]
    sources: dict[SourceName, SourceStatus]
    duration_ms: float


class Synchronizer:
    """Runs syncs, one at a time; the scheduler and the API only call `sync()`."""

    def __init__(
        self,
        upstreams: Sequence[Upstream],
        manager: StateManager,
        *,
        upstream_lock: UpstreamLock,
        clock: Clock = utc_now,
        deadline_s: float | None = None,
        interval_s: float = DEFAULT_SYNC_INTERVAL_S,
        observe_duration_s: Callable[[float], None] | None = None,
        after_sync: AfterSync | None = None,
    ) -> None:
        self._upstreams = list(upstreams)
        self._backoffs = {u.name: Backoff(interval_s) for u in self._upstreams}
        self._running_asks_all = True
        self._observe_duration_s = observe_duration_s  # the sync-duration metric
        self._deadline_s = deadline_s
        self._after_sync = after_sync
        self._manager = manager
        self._upstream_lock = upstream_lock
        self._clock = clock
        self._running: asyncio.Future[SyncReport] | None = None
        self._is_closed = False

    def backoff(self, source: SourceName) -> Backoff | None:
        """The schedule of `source` (failures in a row, next attempt); None if not configured."""
        return self._backoffs.get(source)

    async def sync(self, *, scheduled: bool = False) -> SyncReport:
        """Sync now, or join the sync already running. `scheduled` (the timer's tick)
        asks only the upstreams whose back-off says they are due, and nothing when none
        is; otherwise every upstream is asked. Once the service is stopping (`aclose`),
        the answer is the state as it is, without asking any upstream."""
        while True:
            if self._is_closed:
                return self._report_as_is()
            running = self._running
            if running is not None and running.done():
                running = None  # finished; its done callback has not run yet
            if running is None:
                asked = self._upstreams
                if scheduled:
                    now = self._clock()
                    asked = [u for u in self._upstreams if self._backoffs[u.name].is_due(now)]
                    if not asked:
                        return self._report_as_is()
                running = asyncio.ensure_future(self.sync_once(asked))
                self._running = running
                self._running_asks_all = len(asked) == len(self._upstreams)
                running.add_done_callback(self._finished)
                return await self._join(running)
            if scheduled or self._running_asks_all:
                return await self._join(running)
            # A forced sync met a scheduled run that skips a backed-off upstream: let it
            # finish (an upstream is never asked twice at once), then ask every upstream.
            await self._join(running)

    async def _join(self, running: asyncio.Future[SyncReport]) -> SyncReport:
        try:
            # shield: a caller that goes away (a closed request) must not cancel the shared run.
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._is_closed and task is not None and not task.cancelling():
                return self._report_as_is()  # shutdown cut the shared run short
            raise

    def _report_as_is(self) -> SyncReport:
        state = self._manager.state
        return SyncReport(
            version=state.version, changed=[], sources=dict(state.sources), duration_ms=0.0
        )

    async def aclose(self) -> None:
        """Stop syncing (shutdown): cancel a running sync, whose waiters then get the state
        as it is, and answer later calls the same way. The upstream clients close next."""
        self._is_closed = True
        running = self._running
        if running is not None:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    def _finished(self, future: asyncio.Future[SyncReport]) -> None:
        if self._running is future:
            self._running = None
        error = None if future.cancelled() else future.exception()
        if isinstance(error, SharedStateError):
            # A replica that lost the lease or cannot reach Redis: no upstream was asked.
            log.warning("sync not carried out: %s", error)
        elif error is not None:
            log.error("sync failed", exc_info=error)

    async def sync_once(self, upstreams: Sequence[Upstream] | None = None) -> SyncReport:
        """One pass: fetch `upstreams` (default: every one) concurrently, record, report."""
        asked = self._upstreams if upstreams is None else list(upstreams)
        async with self._upstream_lock:
            started = time.perf_counter()
            attempted_at = self._clock()
            outcomes = await asyncio.gather(*(self._fetch(u) for u in asked))
            results = {
                upstream.name: outcome for upstream, outcome in zip(asked, outcomes, strict=True)
            }
            self._record_attempts(results, attempted_at)
            commit = await self._manager.record_sync(results, self._clock())
            changed = commit.changed
            # Under the lock: no write through the API runs while propagation writes.
            if (
                self._after_sync is not None
                and await self._after_sync(results)
                and "settings" not in changed
            ):
                changed = [s for s in SECTIONS if s in changed or s == "settings"]
            state = self._manager.state
            duration_s = time.perf_counter() - started
            duration_ms = round(duration_s * 1000, 1)
        if self._observe_duration_s is not None:
            self._observe_duration_s(duration_s)
        failed = [
            name for name, outcome in results.items() if not isinstance(outcome, UpstreamSnapshot)
        ]
        log.info(
            "sync finished in %.0f ms: version %d, changed %s%s",
            duration_ms,
            state.version,
            ", ".join(changed) or "nothing",
            f", failed: {', '.join(failed)}" if failed else "",
        )
        return SyncReport(
            version=state.version,
            changed=changed,
            sources=dict(state.sources),
            duration_ms=duration_ms,
        )

    def _record_attempts(
        self, results: dict[SourceName, UpstreamSnapshot | UpstreamError], at: datetime
    ) -> None:
        for name, outcome in results.items():
            backoff = self._backoffs[name]
            if isinstance(outcome, UpstreamSnapshot):
                backoff.succeeded(at)
            else:
                retry_after_s = (
                    outcome.retry_after_s if isinstance(outcome, UpstreamStatusError) else None
                )
                backoff.failed(at, retry_after_s)
                log.info(
                    "%s: %d failure(s) in a row; next scheduled attempt at %s",
                    name,
                    backoff.consecutive_failures,
                    backoff.next_attempt_at,
                )

    async def _fetch(self, upstream: Upstream) -> UpstreamSnapshot | UpstreamError:
        try:
            async with asyncio.timeout(self._deadline_s):
                return await upstream.fetch()
        except TimeoutError:
            reason = (
                f"no complete answer within the sync deadline of {self._deadline_s:g} s "
                "(SHARED_STATE_SYNC_TIMEOUT_S); keeping the last good data"
            )
            log.warning("%s: %s", upstream.name, reason)
            return UpstreamUnavailable(upstream.name, reason)
        except UpstreamError as exc:
            log.warning("%s", exc)
            return exc
        except Exception as exc:  # a bug must not kill the loop: keep the data, report it
            log.exception("unexpected error while reading %s", upstream.name)
            return UpstreamError(upstream.name, f"unexpected {type(exc).__name__}")
