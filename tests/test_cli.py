"""The `shared-state` command, run as a user runs it: as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path

import httpx

from shared_state.simulator import (
    SECRET_CANARY,
    SIM_ANYTHINGLLM_API_KEY,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
    SimulatorServers,
)

ENV_BASE = {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}


async def _run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared_state",
        *args,
        env={**ENV_BASE, **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_sync_once_prints_the_merged_state_and_exits_0(tmp_path: Path) -> None:
    """With both upstreams answering: one JSON document on stdout, exit code 0."""
    async with SimulatorServers() as sims:
        env = {
            "ANYTHINGLLM_BASE_URL": sims.anythingllm_url,
            "ANYTHINGLLM_API_KEY": SIM_ANYTHINGLLM_API_KEY,
            "LIBRECHAT_BASE_URL": sims.librechat_url,
            "LIBRECHAT_EMAIL": SIM_LIBRECHAT_EMAIL,
            "LIBRECHAT_PASSWORD": SIM_LIBRECHAT_PASSWORD,
        }
        code, stdout, stderr = await _run(["sync", "--once"], env, tmp_path)
    assert code == 0, stderr
    state = json.loads(stdout)
    assert state["version"] == 1
    assert state["user"]["libreChat"]["email"] == SIM_LIBRECHAT_EMAIL
    assert {s["status"] for s in state["sources"].values()} == {"ok"}
    assert SECRET_CANARY not in stdout + stderr


async def test_sync_once_with_an_upstream_down_still_prints_json_and_exits_1(
    tmp_path: Path,
) -> None:
    """One upstream unreachable: still one JSON document, that source stale, exit code 1."""
    async with SimulatorServers() as sims:
        env = {
            "ANYTHINGLLM_BASE_URL": sims.anythingllm_url,
            "ANYTHINGLLM_API_KEY": SIM_ANYTHINGLLM_API_KEY,
            "LIBRECHAT_BASE_URL": "http://127.0.0.1:9",
            "LIBRECHAT_TOKEN": "unused-nothing-listens",
        }
        code, stdout, _ = await _run(["sync", "--once"], env, tmp_path)
    assert code == 1
    state = json.loads(stdout)
    assert state["sources"]["librechat"]["status"] == "stale"
    assert state["sources"]["anythingllm"]["status"] == "ok"
    assert state["workspaces"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_demo_serves_the_simulated_state_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """`shared-state demo` prints its URLs, serves merged state, and exits cleanly on SIGINT."""
    port, allm_port, lc_port = _free_port(), _free_port(), _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared_state",
        "demo",
        "--port",
        str(port),
        "--anythingllm-port",
        str(allm_port),
        "--librechat-port",
        str(lc_port),
        env=ENV_BASE,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    banner = ""
    async with asyncio.timeout(30):
        while "Ctrl-C stops everything" not in banner:
            banner += (await process.stderr.readline()).decode()
    assert f"http://127.0.0.1:{port}" in banner
    assert f"http://127.0.0.1:{allm_port}" in banner
    first_url = re.search(r"http://\S+", banner)
    assert first_url is not None
    assert first_url.group() == f"http://127.0.0.1:{port}/"  # the dashboard, first
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            async with asyncio.timeout(30):
                while (await client.get("/readyz")).status_code != 200:  # noqa: ASYNC110 (another process: only HTTP can tell)
                    await asyncio.sleep(0.05)  # the first sync runs in the background
            state = (await client.get("/api/shared-state")).json()
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), timeout=30)
    assert len(state["workspaces"]) == 5
    assert len(state["conversations"]) == 37  # 40 seeded, 3 archived
    assert state["user"]["anythingLLM"] is not None
    assert process.returncode == 0
