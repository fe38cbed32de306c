"""The back-off end to end: the sidecar on loopback, scheduling every 0.4 s, against the
packaged simulators, whose fault switch (`PUT /_sim/fault`) makes LibreChat fail, throttle
(429 with `Retry-After`) and recover. `/status` and the simulator's request counts show
when LibreChat was asked."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared_state import create_app
from shared_state.adapters.http import RetryPolicy
from shared_state.app import build_upstreams
from shared_state.simulator import SimulatorServers
from tests.e2e.conftest import Service, serve, sidecar_settings

INTERVAL_S = 0.4  # long enough that a failed sync ends before the next tick
ONE_TRY = RetryPolicy(attempts=1)  # a failed read fails at once: one request per attempt


@asynccontextmanager
async def scheduled_service(sims: SimulatorServers) -> AsyncIterator[Service]:
    """The sidecar with its schedule running every INTERVAL_S."""
    settings = sidecar_settings(sims, SHARED_STATE_SYNC_INTERVAL_S=INTERVAL_S)
    async with AsyncExitStack() as stack:
        upstreams = build_upstreams(settings, stack, retry=ONE_TRY)
        app = create_app(settings, upstreams=upstreams)
        url = await stack.enter_async_context(serve(app))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=10))
        yield Service(app=app, url=url, client=client)


async def status(service: Service) -> dict[str, Any]:
    answer: dict[str, Any] = (await service.get("/status")).json()
    return answer


async def next_change(service: Service, seen: dict[str, Any]) -> dict[str, Any]:
    """Wait until a sync has recorded an attempt since `seen` (a status); the status then.

    Polled: a sync whose sources keep their status publishes no event, and the schedule
    runs on its own clock, so there is nothing else to await."""
    async with asyncio.timeout(30):
        while True:
            current = await status(service)
            if attempts(current) != attempts(seen):
                return current
            await asyncio.sleep(INTERVAL_S / 5)


def attempts(answer: dict[str, Any]) -> list[str | None]:
    return [source["lastAttemptAt"] for source in answer["sources"].values()]


async def ticks(service: Service, count: int) -> dict[str, Any]:
    """Wait until AnythingLLM (healthy, asked at every tick) was asked `count` more times;
    the status then."""
    current = await status(service)
    seen = {current["sources"]["anythingllm"]["lastAttemptAt"]}
    while len(seen) <= count:
        current = await next_change(service, current)
        seen.add(current["sources"]["anythingllm"]["lastAttemptAt"])
    return current


async def until(service: Service, source: str, check: Callable[[dict[str, Any]], bool]) -> Any:
    """Wait until `source`'s status passes `check`; that status."""
    answer = await status(service)
    while not check(answer["sources"][source]):
        answer = await next_change(service, answer)
    return answer["sources"][source]


def failed(times: int) -> Callable[[dict[str, Any]], bool]:
    return lambda source: bool(source["consecutiveFailures"] >= times)


def seconds(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


async def librechat_reads(sims: SimulatorServers) -> int:
    async with httpx.AsyncClient(base_url=sims.librechat_url) as control:
        paths: dict[str, int] = (await control.get("/_sim/stats")).json()["paths"]
    return sum(paths.values())


async def test_failures_grow_the_gap_and_recovery_resets_it(
    sims: SimulatorServers, sim_clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    """LibreChat failing: after 1, 2 and 3 failures the next attempt is 2, 4 and 8
    intervals after the last, and ticks in between do not ask it; once it answers again
    (the fault cleared, the next scheduled attempt), it is back to one interval."""
    _, librechat = sim_clients
    await librechat.put("/_sim/fault", json={"reads": "error"})
    async with scheduled_service(sims) as service:
        scheduled_at = None
        for failures in (1, 2, 3):
            source = await until(service, "librechat", failed(failures))
            assert source["consecutiveFailures"] == failures
            assert source["status"] == "stale"
            # lastAttemptAt is when the answer came; the gap counts from when it was asked
            gap_s = seconds(source["nextAttemptAt"], source["lastAttemptAt"])
            assert 0 < gap_s <= 2**failures * INTERVAL_S
            if scheduled_at is not None:
                # Asked at the tick the last nextAttemptAt named, not an interval sooner,
                # and scheduled 2^n intervals on from there (loop latency aside).
                assert seconds(source["lastAttemptAt"], scheduled_at) > -INTERVAL_S / 2
                grown_s = seconds(source["nextAttemptAt"], scheduled_at)
                assert abs(grown_s - 2**failures * INTERVAL_S) < INTERVAL_S / 2
            scheduled_at = source["nextAttemptAt"]
        reads = await librechat_reads(sims)
        between = await ticks(service, 3)  # within the 8 intervals after the third failure
        assert await librechat_reads(sims) == reads
        assert between["sources"]["librechat"]["consecutiveFailures"] == 3
        assert between["sources"]["librechat"]["lastAttemptAt"] == source["lastAttemptAt"]

        await librechat.put("/_sim/fault", json={"reads": "ok"})
        recovered = await until(service, "librechat", lambda source: source["status"] == "ok")

    assert recovered["consecutiveFailures"] == 0
    gap_s = seconds(recovered["nextAttemptAt"], recovered["lastAttemptAt"])
    assert 0 < gap_s <= INTERVAL_S


async def test_retry_after_is_honoured_and_post_sync_still_asks(
    sims: SimulatorServers, sim_clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    """LibreChat answers 429 with `Retry-After: 3600`: the schedule does not ask it again
    (far past 2 intervals), `/status` says when it will; `POST /sync` asks it anyway, and
    once it answers it is back to one interval."""
    _, librechat = sim_clients
    await librechat.put("/_sim/fault", json={"reads": "throttled", "retry_after": "3600"})
    async with scheduled_service(sims) as service:
        throttled = await until(service, "librechat", failed(1))
        reads = await librechat_reads(sims)
        later = await ticks(service, 4)
        assert await librechat_reads(sims) == reads
        assert later["sources"]["librechat"] == throttled
        assert 3599 < seconds(throttled["nextAttemptAt"], throttled["lastAttemptAt"]) <= 3600
        assert "429" in throttled["lastError"]

        await librechat.put("/_sim/fault", json={"reads": "ok"})
        synced = await service.post("/sync")
        after = (await status(service))["sources"]["librechat"]

    assert synced.status_code == 200
    assert synced.json()["sources"]["librechat"]["status"] == "ok"
    assert await librechat_reads(sims) > reads
    assert after["consecutiveFailures"] == 0
    assert 0 < seconds(after["nextAttemptAt"], after["lastAttemptAt"]) <= INTERVAL_S


async def test_a_503_with_an_http_date_is_honoured(
    sims: SimulatorServers, sim_clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    """`Retry-After` as an HTTP date on a 503 sets the next attempt to that date."""
    _, librechat = sim_clients
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    date = email.utils.format_datetime(moment, usegmt=True)
    await librechat.put("/_sim/fault", json={"reads": "unavailable", "retry_after": date})
    async with scheduled_service(sims) as service:
        source = await until(service, "librechat", failed(1))

    # The date is read against the clock when the answer came, the attempt is counted
    # from when it was asked: the same moment, to within the read's duration.
    assert abs(seconds(source["nextAttemptAt"], moment.isoformat())) < 2
    assert "503" in source["lastError"]
