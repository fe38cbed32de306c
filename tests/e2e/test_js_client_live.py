"""The JS client against the real service under uvicorn with the simulators.

`node clients/js/test/live/client-live.mjs` runs the real client (Node's fetch, the
fetch-streaming event reader): reads with ETags, a 404, a write the simulator records,
a 412 from a stale If-Match, a change made in the simulator arriving through the stream,
and `close()`, after which the process must exit by itself; and, against a service with
an API token, the stream read with fetch and an Authorization header.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared_state.simulator import SimulatorServers
from tests.e2e.conftest import Service, run_service, sidecar_settings

LIVE = Path(__file__).resolve().parents[2] / "clients/js/test/live"
SCRIPT = LIVE / "client-live.mjs"
TOKEN_SCRIPT = LIVE / "token-live.mjs"
TOKEN = "js-live-token-0123456789"
NODE = shutil.which("node")


def _node_or_skip() -> str:
    if NODE is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is not installed; with CI=true the JS client's live test is required")
        pytest.skip("node is not installed: the JS client's live test needs Node 20+")
    return NODE


async def _run_client(*args: str, script: Path = SCRIPT) -> tuple[int, list[dict[str, Any]], str]:
    process = await asyncio.create_subprocess_exec(
        _node_or_skip(),
        str(script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # Generous: the bound is "exits by itself after close()", not a speed.
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("the JS client's process did not exit by itself after close()")
    steps = [json.loads(line) for line in stdout.decode().splitlines() if line.startswith("{")]
    return process.returncode or 0, steps, stderr.decode()


async def test_js_client_reads_writes_and_follows_the_live_service(
    service: Service, sim_clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    """The real client reads, writes through to the simulator, gets a 412 for a stale
    ETag, sees a simulator change arrive by the stream, and exits after close()."""
    anythingllm, _ = sim_clients
    code, steps, stderr = await _run_client(service.url, str(anythingllm.base_url))
    assert code == 0, stderr
    by_step = {step.pop("step"): step for step in steps}

    assert by_step["live"]["connection"] == "live"
    assert by_step["live"]["firstEvent"] == "snapshot"
    assert by_step["live"]["model"] == "gpt-4o"

    reads = by_step["reads"]
    assert reads["sameCachedBody"] is True  # a 304 answered from the client's cache
    assert reads["missing"] == {"isError": True, "status": 404, "code": "not_found"}
    assert reads["workspaceSlug"]
    assert reads["subscribers"] >= 1

    assert by_step["write"] == {
        "optimistic": "gpt-live-js",
        "answer": "gpt-live-js",
        "shown": "gpt-live-js",
    }
    writes = (await anythingllm.get("/_sim/writes")).json()
    assert any(w["body"].get("OpenAiModelPref") == "gpt-live-js" for w in writes)

    assert by_step["mismatch"]["status"] == 412
    assert by_step["mismatch"]["code"] == "version_mismatch"
    assert by_step["mismatch"]["theme"] != "light"  # rolled back, nothing written

    change = by_step["upstream-change"]
    assert change["model"] == "gpt-from-simulator"
    assert change["viaEvent"] is True
    assert "settings" in change["changed"]
    assert change["workspacesShared"] is True
    assert change["uiShared"] is True
    assert change["lastEventId"] == (await service.get("")).json()["version"]

    assert by_step["closed"] == {"connection": "closed"}


async def test_js_client_streams_with_a_token(sims: SimulatorServers) -> None:
    """With SHARED_STATE_API_TOKEN set, the client streams (fetch with Authorization) and
    reads with its token; without it, a read rejects with 401 `unauthorized`."""
    settings = sidecar_settings(sims, SHARED_STATE_API_TOKEN=TOKEN)
    async with run_service(settings) as running:
        await running.runtime.synchronizer.sync()
        code, steps, stderr = await _run_client(running.url, TOKEN, script=TOKEN_SCRIPT)
    assert code == 0, stderr
    assert TOKEN not in stderr
    [result] = steps
    assert result["version"] >= 1
    assert result["username"]
    assert result["refused"] == {"status": 401, "code": "unauthorized"}
