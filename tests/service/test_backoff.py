"""Tests of the per-source back-off (`Backoff`, pure, on plain datetimes), of
`parse_retry_after`, and of the Synchronizer's scheduled syncs that use them, with an
injected clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import TypeAdapter

from shared_state.adapters.http import JsonApi, RetryPolicy, parse_retry_after
from shared_state.domain.models import SourceName
from shared_state.errors import UpstreamStatusError, UpstreamUnavailable
from shared_state.service.backoff import MAX_RETRY_AFTER_S, Backoff
from shared_state.service.sync import Synchronizer
from shared_state.state.manager import StateManager
from tests.fakes import FakeUpstream, GatedUpstream, make_snapshot

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
INTERVAL_S = 30.0


def at(intervals: float) -> datetime:
    """The moment `intervals` sync intervals after T0."""
    return T0 + timedelta(seconds=INTERVAL_S * intervals)


# --- Backoff ---------------------------------------------------------------------------


def test_a_source_never_attempted_is_due_at_once() -> None:
    backoff = Backoff(INTERVAL_S)

    assert backoff.is_due(T0)
    assert backoff.next_attempt_at is None
    assert backoff.consecutive_failures == 0


def test_a_healthy_source_is_due_every_interval() -> None:
    backoff = Backoff(INTERVAL_S)
    backoff.succeeded(T0)

    assert backoff.next_attempt_at == at(1)
    assert not backoff.is_due(at(0.4))
    assert backoff.is_due(at(1))


@pytest.mark.parametrize(("failures", "gap"), [(1, 2), (2, 4), (3, 8), (4, 10), (5, 10), (12, 10)])
def test_after_n_failures_the_gap_is_min_2_to_the_n_and_10_intervals(
    failures: int, gap: int
) -> None:
    backoff = Backoff(INTERVAL_S)
    for _ in range(failures):
        backoff.failed(T0)

    assert backoff.consecutive_failures == failures
    assert backoff.next_attempt_at == at(gap)
    assert not backoff.is_due(at(gap - 1))
    assert backoff.is_due(at(gap))


def test_a_tick_a_little_before_the_gap_ends_is_on_time() -> None:
    """Attempts are recorded a little after their tick; the tick `gap` intervals later
    still asks (it does not wait another interval)."""
    backoff = Backoff(INTERVAL_S)
    backoff.failed(at(0) + timedelta(milliseconds=40))

    assert backoff.is_due(at(2))


def test_retry_after_is_never_undercut() -> None:
    backoff = Backoff(INTERVAL_S)
    backoff.failed(T0, retry_after_s=INTERVAL_S * 3.2)

    assert backoff.next_attempt_at == at(3.2)
    assert not backoff.is_due(at(3))
    assert backoff.is_due(at(4))


def test_a_retry_after_shorter_than_the_gap_changes_nothing() -> None:
    backoff = Backoff(INTERVAL_S)
    backoff.failed(T0, retry_after_s=1)

    assert backoff.next_attempt_at == at(2)


def test_a_huge_or_negative_retry_after_is_bounded() -> None:
    huge, negative = Backoff(INTERVAL_S), Backoff(INTERVAL_S)
    huge.failed(T0, retry_after_s=1e12)
    negative.failed(T0, retry_after_s=-50)

    assert huge.next_attempt_at == T0 + timedelta(seconds=MAX_RETRY_AFTER_S)
    assert negative.next_attempt_at == at(2)


def test_success_resets_to_one_interval_and_forgets_retry_after() -> None:
    backoff = Backoff(INTERVAL_S)
    for _ in range(4):
        backoff.failed(T0, retry_after_s=3600)
    backoff.succeeded(at(20))

    assert backoff.consecutive_failures == 0
    assert backoff.next_attempt_at == at(21)
    assert backoff.is_due(at(21))


# --- Retry-After -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Wed, 02 Dec 2026 12:01:30 GMT", 90.0),
        ("Wed, 02 Dec 2026 11:00:00 GMT", 0.0),  # a date in the past: now
        (None, None),
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("٣", None),  # a digit, but not an ASCII one
        ("9" * 100, None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=T0) == expected


# --- scheduled syncs -------------------------------------------------------------------


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def make_synchronizer(*upstreams: FakeUpstream) -> tuple[Synchronizer, StateManager, Clock]:
    clock = Clock()
    manager = StateManager(configured=[u.name for u in upstreams])
    synchronizer = Synchronizer(
        upstreams, manager, upstream_lock=asyncio.Lock(), clock=clock, interval_s=INTERVAL_S
    )
    return synchronizer, manager, clock


async def tick(synchronizer: Synchronizer, clock: Clock, intervals: float) -> None:
    """The scheduler's tick at `intervals` intervals after T0."""
    clock.now = at(intervals)
    await synchronizer.sync(scheduled=True)


async def test_scheduled_ticks_skip_a_failing_source_for_a_growing_gap() -> None:
    """A failing LibreChat is asked at ticks 0, 2, 6, 14, 24, 34 (gaps 2, 4, 8, 10, 10);
    AnythingLLM, healthy, at every tick."""
    anythingllm = FakeUpstream("anythingllm", make_snapshot())
    librechat = FakeUpstream("librechat")
    librechat.fail_reads = UpstreamUnavailable("librechat", "connection refused")
    synchronizer, _, clock = make_synchronizer(anythingllm, librechat)

    asked_at = []
    for number in range(35):
        before = librechat.fetch_count
        await tick(synchronizer, clock, number)
        if librechat.fetch_count > before:
            asked_at.append(number)

    assert asked_at == [0, 2, 6, 14, 24, 34]
    assert anythingllm.fetch_count == 35
    backoff = synchronizer.backoff("librechat")
    assert backoff is not None
    assert backoff.consecutive_failures == 6
    assert backoff.next_attempt_at == at(44)


async def test_a_source_not_asked_keeps_its_status() -> None:
    """While LibreChat is backed off, a tick that asks only AnythingLLM leaves LibreChat's
    status (its last attempt and error) as it was."""
    anythingllm = FakeUpstream("anythingllm", make_snapshot())
    librechat = FakeUpstream("librechat")
    librechat.fail_reads = UpstreamUnavailable("librechat", "connection refused")
    synchronizer, manager, clock = make_synchronizer(anythingllm, librechat)
    await tick(synchronizer, clock, 0)
    stale = manager.state.sources["librechat"]

    await tick(synchronizer, clock, 1)

    assert librechat.fetch_count == 1
    assert manager.state.sources["librechat"] == stale
    assert stale.status == "stale"
    assert stale.last_attempt_at == T0
    assert manager.state.sources["anythingllm"].last_attempt_at == at(1)


async def test_retry_after_pushes_the_next_scheduled_attempt_back() -> None:
    """A 429 with `Retry-After: 100 s` (over 3 intervals) is not asked before it passes."""
    librechat = FakeUpstream("librechat")
    librechat.fail_reads = UpstreamStatusError(
        "librechat", "GET /x answered HTTP 429", status=429, retry_after_s=100
    )
    synchronizer, _, clock = make_synchronizer(librechat)
    await tick(synchronizer, clock, 0)

    for number in (1, 2, 3):
        await tick(synchronizer, clock, number)
    assert librechat.fetch_count == 1
    await tick(synchronizer, clock, 4)

    assert librechat.fetch_count == 2


async def test_recovery_resets_the_gap_to_one_interval() -> None:
    librechat = FakeUpstream("librechat")
    librechat.fail_reads = UpstreamUnavailable("librechat", "down")
    synchronizer, manager, clock = make_synchronizer(librechat)
    await tick(synchronizer, clock, 0)
    await tick(synchronizer, clock, 2)
    librechat.fail_reads = None

    await tick(synchronizer, clock, 6)
    await tick(synchronizer, clock, 7)

    assert librechat.fetch_count == 4
    assert manager.state.sources["librechat"].status == "ok"
    backoff = synchronizer.backoff("librechat")
    assert backoff is not None
    assert (backoff.consecutive_failures, backoff.next_attempt_at) == (0, at(8))


async def test_a_forced_sync_asks_every_upstream_whatever_the_back_off() -> None:
    librechat = FakeUpstream("librechat")
    librechat.fail_reads = UpstreamUnavailable("librechat", "down")
    synchronizer, _, clock = make_synchronizer(librechat)
    await tick(synchronizer, clock, 0)
    clock.now = at(0.5)

    await synchronizer.sync()
    await synchronizer.sync()

    assert librechat.fetch_count == 3
    backoff = synchronizer.backoff("librechat")
    assert backoff is not None
    assert backoff.consecutive_failures == 3


async def test_a_tick_with_nothing_due_asks_nothing_and_changes_nothing() -> None:
    librechat = FakeUpstream("librechat")
    librechat.fail_reads = UpstreamUnavailable("librechat", "down")
    synchronizer, manager, clock = make_synchronizer(librechat)
    await tick(synchronizer, clock, 0)
    version = manager.state.version

    await tick(synchronizer, clock, 1)

    assert librechat.fetch_count == 1
    assert manager.state.version == version


async def test_a_forced_sync_during_a_partial_scheduled_run_then_asks_everyone() -> None:
    """`POST /sync` arriving while a tick reads only the due AnythingLLM waits for that
    run, then asks both: the backed-off LibreChat too, and nothing twice at once."""
    anythingllm = GatedUpstream("anythingllm", make_snapshot())
    librechat = FakeUpstream("librechat")
    librechat.fail_reads = UpstreamUnavailable("librechat", "down")
    synchronizer, _, clock = make_synchronizer(anythingllm, librechat)
    await tick(synchronizer, clock, 0)
    anythingllm.gate.clear()
    anythingllm.fetch_started.clear()
    clock.now = at(1)
    scheduled = asyncio.create_task(synchronizer.sync(scheduled=True))
    await anythingllm.fetch_started.wait()

    forced = asyncio.create_task(synchronizer.sync())
    await asyncio.sleep(0)  # let it meet the running partial sync
    assert librechat.fetch_count == 1
    anythingllm.gate.set()
    await scheduled
    report = await forced

    assert librechat.fetch_count == 2
    assert anythingllm.fetch_count == 3
    assert report.sources["librechat"].last_attempt_at == at(1)


def test_backoff_of_an_unconfigured_source_is_none() -> None:
    synchronizer, _, _ = make_synchronizer(FakeUpstream("anythingllm"))
    name: SourceName = "librechat"

    assert synchronizer.backoff(name) is None


# --- Retry-After on the wire -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [(429, "30", 30.0), (503, "12", 12.0), (500, "30", None), (429, None, None)],
)
async def test_the_status_error_carries_retry_after_of_429_and_503_only(
    status: int, header: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": header} if header is not None else {}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": "busy"}, headers=headers)

    transport = httpx.MockTransport(answer)
    async with httpx.AsyncClient(transport=transport, base_url="http://upstream") as client:
        api = JsonApi(client, source="librechat", retry=RetryPolicy(attempts=1))
        with pytest.raises(UpstreamStatusError) as raised:
            await api.get("/api/user", TypeAdapter(dict[str, str]))

    assert raised.value.status == status
    assert raised.value.retry_after_s == expected
