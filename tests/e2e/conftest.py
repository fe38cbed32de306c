"""End-to-end fixtures: the real app under uvicorn on a loopback port, against the
packaged simulator of both upstreams on loopback ports (the `bizzy` flavour here; the
native flavour's fixtures live with its tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from shared_state import Settings, create_app, embedded
from shared_state.service.runtime import Runtime
from shared_state.simulator import SIM_ANYTHINGLLM_API_KEY, SIM_LIBRECHAT_TOKEN, SimulatorServers
from tests.diagnostics import tasks_report

STOP_WITHIN_S = 30.0
"""A service's stop (its lifespan's end) takes a few seconds at most; a hang fails."""


@dataclass
class Service:
    """The sidecar running on loopback, with a client pointed at it."""

    app: FastAPI
    url: str
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.shared_state
        return runtime

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(f"/api/shared-state{path}", **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.post(f"/api/shared-state{path}", **kwargs)


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` (lifespan included) on a free loopback port; yields its base URL."""
    sock = embedded.bind("127.0.0.1", 0)
    server = embedded.EmbeddedServer(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = await embedded.start(server, sock)
    try:
        yield embedded.url_of(sock)
    finally:
        server.should_exit = True
        done, _ = await asyncio.wait({task}, timeout=STOP_WITHIN_S)
        sock.close()
        if not done:
            task.cancel()
            pytest.fail(f"the service did not stop within {STOP_WITHIN_S:g} s:\n{tasks_report()}")


def sidecar_settings(sims: SimulatorServers, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ANYTHINGLLM_API": "bizzy",
        "LIBRECHAT_API": "bizzy",
        "ANYTHINGLLM_BASE_URL": sims.anythingllm_url,
        "ANYTHINGLLM_API_KEY": SIM_ANYTHINGLLM_API_KEY,
        "LIBRECHAT_BASE_URL": sims.librechat_url,
        "LIBRECHAT_TOKEN": SIM_LIBRECHAT_TOKEN,
        "SHARED_STATE_SYNC_INTERVAL_S": 3600,  # the tests sync explicitly
        "SHARED_STATE_REQUEST_TIMEOUT_S": 2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def run_service(settings: Settings) -> AsyncIterator[Service]:
    app = create_app(settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield Service(app=app, url=url, client=client)


@pytest.fixture
async def sims() -> AsyncIterator[SimulatorServers]:
    async with SimulatorServers(flavour="bizzy") as servers:
        yield servers


@pytest.fixture
async def sim_clients(
    sims: SimulatorServers,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Clients for the simulators' control APIs: (AnythingLLM, LibreChat)."""
    async with (
        httpx.AsyncClient(base_url=sims.anythingllm_url) as anythingllm,
        httpx.AsyncClient(base_url=sims.librechat_url) as librechat,
    ):
        yield anythingllm, librechat


@pytest.fixture
def snapshot_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "snapshot.json"


@pytest.fixture
async def service(sims: SimulatorServers) -> AsyncIterator[Service]:
    """The sidecar against both simulators, after one completed sync."""
    async with run_service(sidecar_settings(sims)) as running:
        await running.runtime.synchronizer.sync()
        yield running
