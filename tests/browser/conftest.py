"""Browser fixtures: Debian's headless Chromium driven by Playwright (never a downloaded
browser), one per test module, and the demo's setup (the native simulators and the
service under uvicorn on loopback) in the same event loop.

Without Chromium the tests are skipped with a loud reason and a warning line in the
pytest summary; with `CI=true` a missing browser is an error, not a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from shared_state import Settings
from shared_state.simulator import (
    SIM_ANYTHINGLLM_API_KEY,
    SIM_ANYTHINGLLM_PASSWORD,
    SIM_ANYTHINGLLM_USERNAME,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
    SimulatorServers,
)
from tests.e2e.conftest import Service, run_service

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

_skips: list[str] = []


def find_chromium() -> str | None:
    """Debian's `chromium` (on PATH, else its usual place), or None."""
    found = shutil.which("chromium")
    if found is None and Path("/usr/bin/chromium").is_file():
        found = "/usr/bin/chromium"
    return found


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium for the whole module."""
    chromium = find_chromium()
    if chromium is None:
        reason = "BROWSER TESTS SKIPPED: no `chromium` found (Debian: apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and no `chromium` found: the browser tests must run ({reason})")
        _skips.append(reason)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say it where nobody can miss it: the browser tests did not run."""
    if _skips:
        terminalreporter.write_sep("!", f"WARNING: {_skips[0]}", red=True, bold=True)


def native_settings(sims: SimulatorServers, **overrides: Any) -> Settings:
    """The demo's configuration (native APIs) against `sims`; the tests sync explicitly."""
    values: dict[str, Any] = {
        "ANYTHINGLLM_BASE_URL": sims.anythingllm_url,
        "ANYTHINGLLM_API_KEY": SIM_ANYTHINGLLM_API_KEY,
        "ANYTHINGLLM_USERNAME": SIM_ANYTHINGLLM_USERNAME,
        "ANYTHINGLLM_PASSWORD": SIM_ANYTHINGLLM_PASSWORD,
        "LIBRECHAT_BASE_URL": sims.librechat_url,
        "LIBRECHAT_EMAIL": SIM_LIBRECHAT_EMAIL,
        "LIBRECHAT_PASSWORD": SIM_LIBRECHAT_PASSWORD,
        "SHARED_STATE_SYNC_INTERVAL_S": 3600,
        "SHARED_STATE_REQUEST_TIMEOUT_S": 2,
        "SHARED_STATE_API_TOKEN": None,
        "SHARED_STATE_SNAPSHOT_PATH": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Demo:
    """The service and both simulators, with clients for the simulators' control APIs."""

    sims: SimulatorServers
    service: Service
    anythingllm: httpx.AsyncClient
    librechat: httpx.AsyncClient

    async def sync(self) -> dict[str, Any]:
        answer: dict[str, Any] = (await self.service.post("/sync")).json()
        return answer

    async def clear_faults(self) -> None:
        """Both simulators answering and accepting writes again, and the service synced.
        (Not `/_sim/reset`: it ends the service's upstream sessions, and LibreChat's
        logins are rate-limited.)"""
        for simulator in (self.anythingllm, self.librechat):
            await simulator.put("/_sim/fault", json={"reads": "ok", "writes": "ok"})
        await self.sync()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo() -> AsyncIterator[Demo]:
    """What `make demo` runs, on free loopback ports, after the first sync."""
    async with (
        SimulatorServers(flavour="native") as sims,
        run_service(native_settings(sims)) as service,
        httpx.AsyncClient(base_url=sims.anythingllm_url) as anythingllm,
        httpx.AsyncClient(base_url=sims.librechat_url) as librechat,
    ):
        await service.runtime.synchronizer.sync()
        yield Demo(sims, service, anythingllm, librechat)
