"""Tests of the Synchronizer: single-flight syncs, failing upstreams, reports, shutdown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from shared_state.domain.models import SourceStatus, UpstreamSnapshot
from shared_state.errors import UpstreamUnavailable
from shared_state.service.sync import Synchronizer
from shared_state.state.manager import StateManager
from tests.fakes import FakeUpstream, GatedUpstream, make_snapshot

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WORKSPACE = {"id": 1, "name": "Research", "slug": "research"}
CONVERSATION = {"id": "c-1", "title": "Quarterly plan"}


class BrokenUpstream(FakeUpstream):
    """An upstream whose adapter has a bug: every read raises a `RuntimeError`."""

    async def fetch(self) -> UpstreamSnapshot:
        self.fetch_count += 1
        raise RuntimeError("adapter bug")


def make_synchronizer(*upstreams: FakeUpstream) -> tuple[Synchronizer, StateManager]:
    """A Synchronizer over `upstreams` with a fixed clock, and its StateManager."""
    manager = StateManager(configured=[u.name for u in upstreams])
    synchronizer = Synchronizer(upstreams, manager, upstream_lock=asyncio.Lock(), clock=lambda: NOW)
    return synchronizer, manager


def make_anythingllm(*, is_open: bool = True) -> GatedUpstream:
    return GatedUpstream("anythingllm", make_snapshot(workspaces=[WORKSPACE]), is_open=is_open)


def make_librechat(*, is_open: bool = True) -> GatedUpstream:
    return GatedUpstream(
        "librechat", UpstreamSnapshot(conversations=[CONVERSATION]), is_open=is_open
    )


async def test_concurrent_syncs_share_one_run() -> None:
    """Five syncs started while one is in flight read each upstream once and get one report."""
    anythingllm, librechat = make_anythingllm(is_open=False), make_librechat(is_open=False)
    synchronizer, _ = make_synchronizer(anythingllm, librechat)

    tasks = [asyncio.create_task(synchronizer.sync()) for _ in range(5)]
    await anythingllm.fetch_started.wait()
    await librechat.fetch_started.wait()
    anythingllm.gate.set()
    librechat.gate.set()
    reports = await asyncio.gather(*tasks)

    assert anythingllm.fetch_count == 1
    assert librechat.fetch_count == 1
    assert all(report is reports[0] for report in reports)
    assert reports[0].version == 1


async def test_sync_after_a_finished_one_runs_again() -> None:
    """A sync that starts after the previous one finished reads the upstreams again."""
    anythingllm, librechat = make_anythingllm(), make_librechat()
    synchronizer, _ = make_synchronizer(anythingllm, librechat)

    first = await synchronizer.sync()
    second = await synchronizer.sync()

    assert anythingllm.fetch_count == 2
    assert librechat.fetch_count == 2
    assert first is not second
    assert (first.version, second.version) == (1, 1)
    assert second.changed == []


async def test_caller_that_goes_away_does_not_cancel_the_shared_run() -> None:
    """Cancelling one waiting caller leaves the shared run going for the others."""
    anythingllm = make_anythingllm(is_open=False)
    synchronizer, manager = make_synchronizer(anythingllm)

    leaving = asyncio.create_task(synchronizer.sync())
    staying = asyncio.create_task(synchronizer.sync())
    await anythingllm.fetch_started.wait()
    leaving.cancel()
    anythingllm.gate.set()
    report = await staying

    assert leaving.cancelled()
    assert report.version == 1
    assert anythingllm.fetch_count == 1
    assert manager.state.workspaces == [WORKSPACE]


async def test_failing_upstream_is_stale_and_the_other_is_recorded() -> None:
    """An unavailable upstream is `stale` with its error; the other one's data is recorded."""
    anythingllm, librechat = make_anythingllm(), make_librechat()
    librechat.fail_reads = UpstreamUnavailable("librechat", "timeout")
    synchronizer, manager = make_synchronizer(anythingllm, librechat)

    report = await synchronizer.sync()

    assert report.sources["librechat"] == SourceStatus(
        status="stale", last_success_at=None, last_attempt_at=NOW, last_error="timeout"
    )
    assert report.sources["anythingllm"] == SourceStatus(
        status="ok", last_success_at=NOW, last_attempt_at=NOW, last_error=None
    )
    assert manager.state.workspaces == [WORKSPACE]
    assert manager.state.conversations == []
    assert manager.state.sync_timestamp == NOW


async def test_failing_upstream_keeps_its_last_good_data() -> None:
    """After a good read, a failed one keeps serving that upstream's last good data."""
    librechat = make_librechat()
    synchronizer, manager = make_synchronizer(librechat)
    await synchronizer.sync()

    librechat.fail_reads = UpstreamUnavailable("librechat", "connection refused")
    report = await synchronizer.sync()

    assert report.sources["librechat"].status == "stale"
    assert report.sources["librechat"].last_error == "connection refused"
    assert report.sources["librechat"].last_success_at == NOW
    assert report.changed == ["sources"]
    assert manager.state.conversations == [CONVERSATION]


async def test_unexpected_adapter_error_is_reported_not_raised() -> None:
    """A `RuntimeError` in an adapter becomes that source's `lastError`; the sync goes on."""
    broken = BrokenUpstream("anythingllm")
    librechat = make_librechat()
    synchronizer, manager = make_synchronizer(broken, librechat)

    report = await synchronizer.sync()

    assert broken.fetch_count == 1
    assert report.sources["anythingllm"].status == "stale"
    assert report.sources["anythingllm"].last_error == "unexpected RuntimeError"
    assert report.sources["librechat"].status == "ok"
    assert manager.state.conversations == [CONVERSATION]


async def test_every_upstream_failing_still_finishes_the_sync() -> None:
    """When no upstream answers the sync reports both stale and keeps `syncTimestamp` null."""
    anythingllm, librechat = make_anythingllm(), make_librechat()
    anythingllm.fail_reads = UpstreamUnavailable("anythingllm", "timeout")
    librechat.fail_reads = UpstreamUnavailable("librechat", "timeout")
    synchronizer, manager = make_synchronizer(anythingllm, librechat)

    report = await synchronizer.sync()

    assert {name: status.status for name, status in report.sources.items()} == {
        "anythingllm": "stale",
        "librechat": "stale",
    }
    assert manager.state.sync_timestamp is None
    assert manager.is_ready is True


async def test_report_lists_the_changed_sections() -> None:
    """The first sync reports every section it filled; a later one only what changed."""
    anythingllm, librechat = make_anythingllm(), make_librechat()
    synchronizer, _ = make_synchronizer(anythingllm, librechat)

    first = await synchronizer.sync()
    librechat.snapshot = UpstreamSnapshot(conversations=[{"id": "c-2", "title": "Roadmap"}])
    second = await synchronizer.sync()

    assert first.changed == ["user", "settings", "workspaces", "conversations", "sources"]
    assert second.changed == ["conversations"]
    assert second.version == first.version + 1 == 2
    assert second.duration_ms >= 0


async def test_aclose_cancels_a_running_sync_and_its_callers_get_the_state_as_is() -> None:
    """`aclose()` (shutdown) cancels the sync in flight: its callers get a report of the
    state as it is instead of a cancellation, nothing is recorded, and later syncs ask
    no upstream."""
    anythingllm = make_anythingllm(is_open=False)
    synchronizer, manager = make_synchronizer(anythingllm)

    waiting = asyncio.create_task(synchronizer.sync())
    await anythingllm.fetch_started.wait()
    await synchronizer.aclose()

    report = await waiting
    assert (report.version, report.changed) == (0, [])
    assert report.sources["anythingllm"].status == "pending"
    assert anythingllm.fetch_count == 0
    assert manager.state.version == 0

    anythingllm.gate.set()
    later = await synchronizer.sync()
    assert later.version == 0
    assert anythingllm.fetch_count == 0


async def test_a_caller_cancelled_itself_still_sees_its_cancellation() -> None:
    """A caller that is itself cancelled (a closed request) gets its CancelledError, even
    while the service stops; only the shared run's cancellation is turned into a report."""
    anythingllm = make_anythingllm(is_open=False)
    synchronizer, _ = make_synchronizer(anythingllm)
    waiting = asyncio.create_task(synchronizer.sync())
    await anythingllm.fetch_started.wait()

    waiting.cancel()
    await synchronizer.aclose()

    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_aclose_without_a_running_sync_does_nothing() -> None:
    """`aclose()` when idle returns and leaves the state as it was."""
    synchronizer, manager = make_synchronizer(make_anythingllm())

    await synchronizer.aclose()

    assert manager.state.version == 0
    assert manager.state.sources["anythingllm"].status == "pending"


async def test_an_upstream_past_the_sync_deadline_is_stale_and_keeps_its_data() -> None:
    """A sync has a deadline: an upstream that never answers is given up when it passes,
    marked stale with a `lastError` that says so, and its last good data stays; the
    upstream that answered is recorded as usual."""
    anythingllm, librechat = make_anythingllm(), make_librechat()
    manager = StateManager(configured=["anythingllm", "librechat"])
    synchronizer = Synchronizer(
        [anythingllm, librechat],
        manager,
        upstream_lock=asyncio.Lock(),
        clock=lambda: NOW,
        deadline_s=0.2,
    )
    await synchronizer.sync()
    anythingllm.gate.clear()  # from now on AnythingLLM never answers

    async with asyncio.timeout(10):  # generous; the deadline is 0.2 s
        report = await synchronizer.sync()

    assert report.sources["anythingllm"].status == "stale"
    assert report.sources["librechat"].status == "ok"
    assert "sync deadline of 0.2 s" in (report.sources["anythingllm"].last_error or "")
    assert manager.state.workspaces == [WORKSPACE]
