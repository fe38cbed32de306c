"""`Runtime.drain()`, what SIGTERM runs first (contract §8 "SIGTERM"), in-process: never
ready again, subscriptions ended, the schedule stopped, a running sync ended, the
snapshot written."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from shared_state.domain.events import ChangedEvent
from tests.api.conftest import make_anythingllm, make_settings, start_service


async def test_drain_ends_readiness_streams_schedule_and_sync_and_writes_the_snapshot(
    tmp_path: Path,
) -> None:
    snapshot = tmp_path / "snapshot.json"
    anythingllm = make_anythingllm()
    settings = make_settings(SHARED_STATE_SNAPSHOT_PATH=str(snapshot))
    async with start_service(settings, [anythingllm]) as service:
        runtime = service.runtime
        ready = await service.client.get("/readyz")
        subscription = runtime.manager.subscribe()
        anythingllm.gate.clear()
        anythingllm.fetch_started.clear()
        syncing = asyncio.create_task(service.client.post("/api/shared-state/sync"))
        await anythingllm.fetch_started.wait()
        snapshot.unlink()

        await runtime.drain()
        after = await service.client.get("/readyz")
        events: list[ChangedEvent | object] = [event async for event in subscription]
        synced = await syncing

        assert runtime.is_draining
        assert runtime.scheduler is not None
        assert not runtime.scheduler.running
        assert runtime.draining.is_set()

    assert ready.status_code == 200
    assert after.status_code == 503
    assert after.json() == {"detail": "The service is shutting down.", "code": "shutting_down"}
    assert events == []
    assert synced.status_code == 200
    assert anythingllm.fetch_count == 1  # the held sync's read did not complete
    assert json.loads(snapshot.read_bytes())["version"] == synced.json()["version"]


async def test_drain_twice_and_then_shutdown_is_quiet() -> None:
    async with start_service(make_settings(), [make_anythingllm()]) as service:
        await service.runtime.drain()
        await service.runtime.drain()
        assert (await service.client.get("/readyz")).status_code == 503
