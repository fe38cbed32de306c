"""The periodic sync under APScheduler, on a short real interval: a sync that outlasts
one interval is joined by the next tick, not reported as a skipped job, and the upstream
is never asked twice at once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from shared_state.domain.models import UpstreamSnapshot
from shared_state.service.scheduler import start_sync_schedule, stop_sync_schedule
from shared_state.service.sync import Synchronizer
from shared_state.state.manager import StateManager
from tests.fakes import GatedUpstream, make_snapshot

INTERVAL_S = 0.1


class CountingUpstream(GatedUpstream):
    """Counts the reads that began, and the most in flight at once."""

    def __init__(self) -> None:
        super().__init__("anythingllm", make_snapshot(), is_open=False)
        self.started = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def fetch(self) -> UpstreamSnapshot:
        self.started += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await super().fetch()
        finally:
            self.in_flight -= 1


async def test_a_sync_longer_than_one_interval_is_joined_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    upstream = CountingUpstream()
    manager = StateManager(configured=["anythingllm"])
    synchronizer = Synchronizer(
        [upstream], manager, upstream_lock=asyncio.Lock(), interval_s=INTERVAL_S
    )
    caplog.set_level(logging.INFO, logger="apscheduler")

    scheduler = start_sync_schedule(synchronizer, INTERVAL_S)
    try:
        await asyncio.wait_for(upstream.fetch_started.wait(), timeout=5)
        # Held for one and a half intervals: the next tick comes while the sync runs.
        await asyncio.sleep(INTERVAL_S * 1.5)
        started_while_held = upstream.started
        upstream.gate.set()
        await asyncio.sleep(INTERVAL_S * 2)
    finally:
        stop_sync_schedule(scheduler)
        await synchronizer.aclose()

    joined = [r for r in caplog.records if r.name.startswith("apscheduler.executors")]
    assert started_while_held == 1  # the tick that came meanwhile asked nothing itself
    assert upstream.most_in_flight == 1
    assert upstream.started >= 2  # the schedule went on once the read returned
    assert len(joined) >= 2  # the held tick and the one that joined it both ran
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []
