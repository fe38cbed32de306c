"""The demo's steady state end to end: the sidecar syncing on its own schedule against the
native simulators, with nothing changing, logs no warning and every sync is quick."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared_state import Settings
from shared_state.simulator import (
    SIM_ANYTHINGLLM_API_KEY,
    SIM_ANYTHINGLLM_PASSWORD,
    SIM_ANYTHINGLLM_USERNAME,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
    SimulatorServers,
)
from tests.e2e.conftest import run_service

SYNCS = 12  # a minute of the demo's 5 s interval
INTERVAL_S = 1  # the demo's 5 s, shortened; the simulators' keep-alive shortened to match
QUICK_SYNC_MS = 500.0  # generous: a sync here takes ~20 ms; one retried read takes >= 200 ms


class _SyncWatcher(logging.Handler):
    """Collects every log record; wakes the test once `count` syncs have finished."""

    def __init__(self, count: int) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.durations_ms: list[float] = []
        self.finished = asyncio.Event()
        self._count = count
        self._loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if record.name == "shared_state.service.sync" and record.msg.startswith("sync finished"):
            assert isinstance(record.args, tuple)
            duration_ms = record.args[0]
            assert isinstance(duration_ms, float)
            self.durations_ms.append(duration_ms)
            if len(self.durations_ms) >= self._count:
                self._loop.call_soon_threadsafe(self.finished.set)


@pytest.fixture
async def watcher() -> AsyncIterator[_SyncWatcher]:
    handler = _SyncWatcher(SYNCS)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def _demo_settings(sims: SimulatorServers, **overrides: Any) -> Settings:
    """What `shared-state demo` configures, with a shorter interval."""
    values: dict[str, Any] = {
        "ANYTHINGLLM_BASE_URL": sims.anythingllm_url,
        "ANYTHINGLLM_API_KEY": SIM_ANYTHINGLLM_API_KEY,
        "ANYTHINGLLM_USERNAME": SIM_ANYTHINGLLM_USERNAME,
        "ANYTHINGLLM_PASSWORD": SIM_ANYTHINGLLM_PASSWORD,
        "LIBRECHAT_BASE_URL": sims.librechat_url,
        "LIBRECHAT_EMAIL": SIM_LIBRECHAT_EMAIL,
        "LIBRECHAT_PASSWORD": SIM_LIBRECHAT_PASSWORD,
        "SHARED_STATE_SYNC_INTERVAL_S": INTERVAL_S,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def test_idle_demo_logs_no_warning_and_every_sync_is_quick(watcher: _SyncWatcher) -> None:
    """With the sync interval equal to the upstreams' keep-alive (the race between reusing
    a pooled connection and the upstream closing it), a minute's worth of scheduled syncs
    logs nothing at WARNING or above and none of them waits for a retry."""
    async with (
        SimulatorServers(flavour="native", keep_alive_s=INTERVAL_S) as sims,
        run_service(_demo_settings(sims)) as service,
    ):
        async with asyncio.timeout(SYNCS * INTERVAL_S * 3 + 10):
            await watcher.finished.wait()
        status = (await service.get("/status")).json()

    assert {source["status"] for source in status["sources"].values()} == {"ok"}
    loud = [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in watcher.records
        if r.levelno >= logging.WARNING
    ]
    assert loud == []
    assert len(watcher.durations_ms) >= SYNCS
    # The first sync logs in to both upstreams (password hashing in the simulators), which
    # on a loaded machine can take longer than a retry's wait: only the idle ones count.
    assert max(watcher.durations_ms[1:]) < QUICK_SYNC_MS, watcher.durations_ms
