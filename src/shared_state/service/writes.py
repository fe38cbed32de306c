"""Write-through of LLM and UI settings to the upstreams that store them (contract §6).

Every upstream that stores any of the fields is written concurrently. If all accept,
the state takes the new values at once; if any fails, the ones that accepted are put
back to their previous values and the state stays as it was. Fields that no configured
upstream stores are kept by the service itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shared_state.adapters.base import Upstream
from shared_state.domain.models import SOURCE_NAMES, SharedState, SourceName, WritableSection
from shared_state.errors import UpstreamError, UpstreamWriteFailed, WriteResult
from shared_state.service.sync import Clock, UpstreamLock, utc_now
from shared_state.state.manager import StateManager

log = logging.getLogger(__name__)


class SettingsWriter:
    """Writes settings through; one write at a time, never during a sync (a write that
    no upstream stores takes no upstream lock)."""

    def __init__(
        self,
        upstreams: Sequence[Upstream],
        manager: StateManager,
        *,
        upstream_lock: UpstreamLock,
        clock: Clock = utc_now,
        on_written: Callable[[WritableSection, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self._upstreams = list(upstreams)
        # Propagation hears of every write that landed, before the state records it, so
        # the base it sets is in the snapshot file saved with that state.
        self._on_written = on_written
        self._manager = manager
        self._upstream_lock = upstream_lock
        self._clock = clock
        # Writes run one at a time, so that a precondition checked for one still holds
        # when it commits (two writes with one `If-Match` tag: the second gets a 412).
        self._write_lock = asyncio.Lock()

    async def write(
        self,
        section: WritableSection,
        values: Mapping[str, Any],
        *,
        precondition: Callable[[], None] | None = None,
    ) -> SharedState:
        """Write `values` (snake_case fields of `section`); the new state, or
        `UpstreamWriteFailed` with a result per upstream. `precondition` (an `If-Match`
        check) runs under the locks, before any upstream is called, and raises to stop
        the write."""
        async with self._write_lock:
            return await self._write(section, values, precondition or _no_precondition)

    async def _write(
        self, section: WritableSection, values: Mapping[str, Any], precondition: Callable[[], None]
    ) -> SharedState:
        plan = {
            upstream: {k: v for k, v in values.items() if k in stored}
            for upstream in self._upstreams
            if (stored := upstream.stored_fields.get(section, frozenset()))
            and not stored.isdisjoint(values)
        }
        stored_anywhere = set().union(*(u.stored_fields.get(section, ()) for u in self._upstreams))
        kept_locally = {k: v for k, v in values.items() if k not in stored_anywhere}
        if not plan:
            # No upstream is asked, so nothing to keep apart from a sync: a write of fields
            # only the service keeps never waits behind a sync (or a hung upstream), only
            # behind another write.
            precondition()
            commit = await self._manager.record_write(section, {}, kept_locally, self._clock())
            return commit.state
        async with self._upstream_lock:
            precondition()  # under the lock: no sync or write can change the state meanwhile
            outcomes = await asyncio.gather(
                *(self._write_one(upstream, section, subset) for upstream, subset in plan.items())
            )
            previous = dict(zip(plan, outcomes, strict=True))
            if not any(isinstance(outcome, UpstreamError) for outcome in outcomes):
                if self._on_written is not None:
                    self._on_written(section, values)
                commit = await self._manager.record_write(
                    section,
                    {upstream.name: subset for upstream, subset in plan.items()},
                    kept_locally,
                    self._clock(),
                )
                return commit.state
            results = await self._roll_back(section, previous)
        raise UpstreamWriteFailed(results)

    async def _write_one(
        self, upstream: Upstream, section: WritableSection, values: Mapping[str, Any]
    ) -> dict[str, Any] | UpstreamError:
        try:
            return await upstream.write_settings(section, values)
        except UpstreamError as exc:
            log.warning("writing %s settings to %s failed: %s", section, upstream.name, exc.reason)
            return exc

    async def _roll_back(
        self,
        section: WritableSection,
        previous: Mapping[Upstream, dict[str, Any] | UpstreamError],
    ) -> dict[SourceName, WriteResult]:
        """Put back every upstream that accepted; the result per upstream."""
        results: dict[SourceName, WriteResult] = {name: "skipped" for name in SOURCE_NAMES}
        accepted = {
            u: values for u, values in previous.items() if not isinstance(values, UpstreamError)
        }
        for upstream, outcome in previous.items():
            if isinstance(outcome, UpstreamError):
                results[upstream.name] = "failed"
        undo = await asyncio.gather(
            *(self._write_one(upstream, section, values) for upstream, values in accepted.items())
        )
        for upstream, outcome in zip(accepted, undo, strict=True):
            if isinstance(outcome, UpstreamError):
                results[upstream.name] = "rollback_failed"
                log.warning(
                    "rollback of %s settings on %s failed; the next sync shows what it holds",
                    section,
                    upstream.name,
                )
            else:
                results[upstream.name] = "rolled_back"
        return results


def _no_precondition() -> None:
    return None
