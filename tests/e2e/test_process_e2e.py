"""`shared-state serve` as a process: SIGTERM with a hung upstream, a taken port, idle
and half-sent connections under a low file descriptor limit, and restarts that keep
LibreChat's login budget. Each test runs the real command as a subprocess on a free
loopback port, against the packaged simulators where it needs upstreams."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared_state.simulator import (
    SIM_ANYTHINGLLM_API_KEY,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
    SimulatorServers,
)
from tests.e2e.conftest import run_service
from tests.e2e.test_native_e2e import native_settings

ENV_BASE = {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}
SHUTDOWN_TIMEOUT_S = 4


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def native_env(sims: SimulatorServers) -> dict[str, str]:
    return {
        "ANYTHINGLLM_BASE_URL": sims.anythingllm_url,
        "ANYTHINGLLM_API_KEY": SIM_ANYTHINGLLM_API_KEY,
        "LIBRECHAT_BASE_URL": sims.librechat_url,
        "LIBRECHAT_EMAIL": SIM_LIBRECHAT_EMAIL,
        "LIBRECHAT_PASSWORD": SIM_LIBRECHAT_PASSWORD,
    }


@dataclass
class Served:
    """A running `shared-state serve` and where it listens."""

    process: asyncio.subprocess.Process
    url: str


@asynccontextmanager
async def serve(
    env: Mapping[str, str],
    cwd: Path,
    *,
    preexec_fn: Callable[[], None] | None = None,
) -> AsyncIterator[Served]:
    """`shared-state serve` on a free port; yields once `/healthz` answers. The caller
    stops it; on the way out a still-running process is killed."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared_state",
        "serve",
        "--port",
        str(port),
        env={**ENV_BASE, **env},
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=preexec_fn,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client, asyncio.timeout(30):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                assert process.returncode is None, "serve exited while starting"
                await asyncio.sleep(0.05)  # another process: only HTTP can tell it is up
        yield Served(process, url)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


async def stop(process: asyncio.subprocess.Process) -> tuple[int, str, float]:
    """SIGTERM; the exit code, stderr and the seconds it took to exit."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stderr.decode(), time.monotonic() - started


async def sim_stats(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url) as client:
        stats: dict[str, Any] = (await client.get("/_sim/stats")).json()
        return stats


# --- SIGTERM ---------------------------------------------------------------------------


async def test_sigterm_exits_0_in_time_while_a_sync_waits_on_a_hung_upstream(
    tmp_path: Path,
) -> None:
    """AnythingLLM accepts the sync's request and never answers, and a client waits on
    `?refresh=true`: SIGTERM still ends the process within SHARED_STATE_SHUTDOWN_TIMEOUT_S,
    with exit code 0 and no traceback."""
    async with SimulatorServers() as sims:
        async with httpx.AsyncClient(base_url=sims.anythingllm_url) as control:
            await control.put("/_sim/fault", json={"reads": "slow", "delay_s": 3600})
        env = {
            **native_env(sims),
            "SHARED_STATE_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
            "SHARED_STATE_REQUEST_TIMEOUT_S": "300",
            "SHARED_STATE_SNAPSHOT_PATH": str(tmp_path / "snapshot.json"),
        }
        async with serve(env, tmp_path) as served:
            async with asyncio.timeout(30):
                while not (await sim_stats(sims.anythingllm_url))["paths"]:  # noqa: ASYNC110 (another process)
                    await asyncio.sleep(0.05)
            async with httpx.AsyncClient(base_url=served.url, timeout=60) as client:
                waiting = asyncio.create_task(client.get("/api/shared-state?refresh=true"))
                await asyncio.sleep(0.2)  # let the request reach the server; not a wait for state
                code, stderr, took_s = await stop(served.process)
                with contextlib.suppress(httpx.HTTPError):
                    await waiting

    assert code == 0, stderr
    assert took_s < SHUTDOWN_TIMEOUT_S + 2  # + the interpreter's own exit
    assert "Traceback" not in stderr
    assert "CancelledError" not in stderr


# --- the port --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "taken_option", "expected"),
    [
        pytest.param(["serve"], "--port", "serve", id="serve"),
        pytest.param(["demo"], "--port", "demo", id="demo-service-port"),
        pytest.param(["demo"], "--anythingllm-port", "demo", id="demo-anythingllm-port"),
        pytest.param(["demo"], "--librechat-port", "demo", id="demo-librechat-port"),
        pytest.param(["simulate"], "--librechat-port", None, id="simulate"),
    ],
)
async def test_a_taken_port_is_one_line_naming_the_port_and_the_option(
    tmp_path: Path, command: list[str], taken_option: str, expected: str | None
) -> None:
    """Another process on the port: one line on stderr (which port, which option, how to
    pass it through make), exit code 1, and no upstream was asked anything (`serve` binds
    before it restores the snapshot and starts syncing)."""
    ports = {option: free_port() for option in ("--port", "--anythingllm-port", "--librechat-port")}
    args = [*command] if command == ["simulate"] else [*command, "--port", str(ports["--port"])]
    if command != ["serve"]:
        args += ["--anythingllm-port", str(ports["--anythingllm-port"])]
        args += ["--librechat-port", str(ports["--librechat-port"])]
    snapshot = tmp_path / "snapshot.json"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", ports[taken_option]))
        holder.listen()
        async with SimulatorServers() as sims:
            env = {**native_env(sims), "SHARED_STATE_SNAPSHOT_PATH": str(snapshot)}
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "shared_state",
                *args,
                env={**ENV_BASE, **env},
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
            stats = [await sim_stats(url) for url in (sims.anythingllm_url, sims.librechat_url)]

    port = ports[taken_option]
    option_hint = "--port" if command == ["serve"] else taken_option
    assert stderr.decode().splitlines()[-1:] == [
        line
        for line in stderr.decode().splitlines()
        if line.startswith(f"shared-state: port {port} on 127.0.0.1 is in use; ")
    ]
    assert len(stderr.decode().strip().splitlines()) == 1, stderr.decode()
    assert f"pass {option_hint} N" in stderr.decode()
    if expected is not None:
        assert f'(make {expected} ARGS="{option_hint} N")' in stderr.decode()
    assert process.returncode == 1
    assert all(not s["paths"] and s["logins"] == 0 for s in stats)
    assert not snapshot.exists()


# --- idle and half-sent connections ----------------------------------------------------


def low_file_limit() -> None:
    """In the child: at most 256 open files, soft and hard (so it cannot raise them)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


async def is_closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Read until the server closes (an answer, then EOF, or a reset); True once closed."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass
    return True


async def test_idle_and_half_sent_connections_are_closed_and_do_not_stop_service(
    tmp_path: Path,
) -> None:
    """With 256 file descriptors, 300 connections that send nothing, half the headers or
    half a body: a normal GET is still answered 200 within a bounded time, the server
    closes every one of the 300, and the cap is logged once."""
    env = {"SHARED_STATE_CLIENT_TIMEOUT_S": "2"}
    async with serve(env, tmp_path, preexec_fn=low_file_limit) as served:
        port = int(served.url.rsplit(":", 1)[1])
        streams = []
        for index in range(300):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if index % 10 == 1:
                writer.write(b"GET /api/shared-state HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            elif index % 10 == 2:
                writer.write(
                    b"POST /api/shared-state/ui-settings HTTP/1.1\r\nHost: x\r\n"
                    b'Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{"th'
                )
            streams.append((reader, writer))

        async with httpx.AsyncClient(base_url=served.url, timeout=5) as client:
            async with asyncio.timeout(30):
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        response = await client.get("/api/shared-state")
                        if response.status_code == 200:
                            break
                        assert response.status_code == 503
                        assert response.json()["code"] == "too_many_connections"
                    await asyncio.sleep(0.1)  # the silent clients hold the slots until timed out

        async with asyncio.timeout(30):
            closed = await asyncio.gather(*(is_closed_by_server(r) for r, _ in streams))
        for _, writer in streams:
            writer.close()
        code, stderr, _ = await stop(served.process)

    assert all(closed)
    assert code == 0, stderr
    assert stderr.count("client connections are open") == 1
    assert "Traceback" not in stderr


async def test_a_request_that_stops_halfway_is_answered_408(tmp_path: Path) -> None:
    """Headers that never end get `408 {"code": "request_timeout"}`, then the connection
    closes; a connection that sends nothing is closed too."""
    async with serve({"SHARED_STATE_CLIENT_TIMEOUT_S": "1"}, tmp_path) as served:
        port = int(served.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", port)
        async with asyncio.timeout(20):
            answer = await reader.read()
            silent = await silent_reader.read()
        writer.close()
        silent_writer.close()
        code, stderr, _ = await stop(served.process)

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"code": "request_timeout"' in answer
    assert silent == b""
    assert code == 0, stderr


# --- restarts ----------------------------------------------------------------------------


async def test_eight_restarts_stay_within_librechats_login_limit(tmp_path: Path) -> None:
    """A crash loop: eight starts within the window log in to LibreChat at most five
    times (the session's budget, below LibreChat's 7 per 5 minutes), never get a 429,
    and the budget file beside the snapshot holds no credential."""
    snapshot = tmp_path / "snapshot.json"
    async with SimulatorServers(flavour="native") as sims:
        settings = native_settings(sims, SHARED_STATE_SNAPSHOT_PATH=str(snapshot))
        for _ in range(8):
            async with run_service(settings) as service:
                await service.runtime.synchronizer.sync()
        stats = await sim_stats(sims.librechat_url)

    assert 1 <= stats["logins"] <= 5
    assert stats["login_rejections_429"] == 0
    budget = snapshot.with_name(f"{snapshot.name}.librechat-logins").read_bytes()
    assert SIM_LIBRECHAT_PASSWORD.encode() not in budget
    assert SIM_LIBRECHAT_EMAIL.encode() not in budget


# --- the access log ------------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "is_logged"), [(None, False), ("true", True)])
async def test_the_access_log_is_off_unless_asked_for(
    tmp_path: Path, setting: str | None, is_logged: bool
) -> None:
    """By default no line per request; SHARED_STATE_ACCESS_LOG=true writes uvicorn's."""
    env = {} if setting is None else {"SHARED_STATE_ACCESS_LOG": setting}
    async with serve(env, tmp_path) as served:
        async with httpx.AsyncClient(base_url=served.url) as client:
            assert (await client.get("/api/shared-state/status")).status_code == 200
        code, stderr, _ = await stop(served.process)

    assert code == 0, stderr
    assert ('"GET /api/shared-state/status HTTP/1.1" 200' in stderr) is is_logged


# --- a hung upstream and the writes it must not hold up ------------------------------------


async def test_a_ui_write_does_not_wait_behind_a_sync_on_a_hung_anythingllm(
    tmp_path: Path,
) -> None:
    """Native LibreChat stores no UI fields and AnythingLLM stores none either, so a UI
    write is the service's own: it answers at once while a sync waits on an AnythingLLM
    that never answers."""
    async with SimulatorServers(flavour="native") as sims:
        settings = native_settings(sims, SHARED_STATE_REQUEST_TIMEOUT_S=300)
        async with run_service(settings) as service:
            await service.runtime.synchronizer.sync()
            async with httpx.AsyncClient(base_url=sims.anythingllm_url) as control:
                await control.put("/_sim/fault", json={"reads": "slow", "delay_s": 3600})
                await control.delete("/_sim/stats")
                syncing = asyncio.create_task(service.post("/sync"))
                async with asyncio.timeout(30):
                    while not (await sim_stats(sims.anythingllm_url))["paths"]:  # noqa: ASYNC110 (the sync runs in the service's tasks)
                        await asyncio.sleep(0.05)

                async with asyncio.timeout(10):  # generous: the hung sync would take hours
                    response = await service.post("/ui-settings", json={"theme": "light"})

                assert response.status_code == 200
                assert response.json()["theme"] == "light"
                assert not syncing.done()
                await service.runtime.stop_syncing()  # what SIGTERM does first
                assert (await syncing).status_code == 200


# --- a corrupt snapshot across a restart ---------------------------------------------------


async def test_a_corrupt_snapshot_is_kept_aside_and_the_version_goes_on(tmp_path: Path) -> None:
    """A snapshot truncated while the service was down: the restarted service keeps it
    aside as `.corrupt-*`, serves the previous save's data and continues above the highest
    version it ever saved."""
    snapshot = tmp_path / "snapshot.json"
    async with SimulatorServers(flavour="native") as sims:
        settings = native_settings(sims, SHARED_STATE_SNAPSHOT_PATH=str(snapshot))
        async with run_service(settings) as service:
            await service.runtime.synchronizer.sync()
            await service.post("/ui-settings", json={"theme": "dark"})
            before = (await service.get("")).json()
        content = snapshot.read_bytes()
        snapshot.write_bytes(content[: len(content) // 2])

        async with run_service(settings) as service:
            restored = (await service.get("")).json()

    assert restored["version"] > before["version"]
    assert len(restored["workspaces"]) == len(before["workspaces"]) > 0
    assert {s["status"] for s in restored["sources"].values()} == {"stale"}
    (aside,) = tmp_path.glob("snapshot.json.corrupt-*")
    assert aside.read_bytes() == content[: len(content) // 2]


# --- the drain on SIGTERM (issue 7) --------------------------------------------------------


async def test_sigterm_drains_100_waiting_requests_exits_0_and_writes_the_snapshot(
    tmp_path: Path,
) -> None:
    """100 clients hold `?refresh=true` while the sync waits on an AnythingLLM that never
    answers: SIGTERM ends the sync, every one of them is answered 200 (the state as it
    is), the snapshot file is written, and the process exits 0 within
    SHARED_STATE_SHUTDOWN_TIMEOUT_S, having logged the drain."""
    snapshot = tmp_path / "snapshot.json"
    async with SimulatorServers() as sims:
        async with httpx.AsyncClient(base_url=sims.anythingllm_url) as control:
            await control.put("/_sim/fault", json={"reads": "slow", "delay_s": 3600})
        env = {
            **native_env(sims),
            "SHARED_STATE_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
            "SHARED_STATE_REQUEST_TIMEOUT_S": "300",
            "SHARED_STATE_SNAPSHOT_PATH": str(snapshot),
        }
        async with serve(env, tmp_path) as served:
            async with asyncio.timeout(30):
                while not (await sim_stats(sims.anythingllm_url))["paths"]:  # noqa: ASYNC110 (another process)
                    await asyncio.sleep(0.05)
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(base_url=served.url, timeout=60, limits=limits) as client:
                waiting = [
                    asyncio.create_task(client.get("/api/shared-state?refresh=true"))
                    for _ in range(100)
                ]
                await asyncio.sleep(1)  # let 100 requests reach the server; not a wait for state
                assert not any(task.done() for task in waiting)
                code, stderr, took_s = await stop(served.process)
                answers = await asyncio.gather(*waiting, return_exceptions=True)

    assert code == 0, stderr
    assert took_s < SHUTDOWN_TIMEOUT_S + 2  # + the interpreter's own exit
    assert [getattr(a, "status_code", a) for a in answers] == [200] * 100
    assert "Traceback" not in stderr
    assert "drained" in stderr
    assert snapshot.is_file()


async def test_sigterm_ends_100_open_streams_and_a_hung_sync_exits_0_in_time(
    tmp_path: Path,
) -> None:
    """100 open event streams and a sync waiting on an AnythingLLM that never answers:
    SIGTERM sends every stream `: shutdown` and ends it, writes the snapshot file and
    exits 0 within SHARED_STATE_SHUTDOWN_TIMEOUT_S."""
    from tests.e2e.test_events_e2e import EVENTS, EventReader  # it imports this module

    snapshot = tmp_path / "snapshot.json"
    async with SimulatorServers() as sims:
        async with httpx.AsyncClient(base_url=sims.anythingllm_url) as control:
            await control.put("/_sim/fault", json={"reads": "slow", "delay_s": 3600})
        env = {
            **native_env(sims),
            "SHARED_STATE_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
            "SHARED_STATE_REQUEST_TIMEOUT_S": "300",
            "SHARED_STATE_SNAPSHOT_PATH": str(snapshot),
        }
        limits = httpx.Limits(max_connections=200)
        async with (
            serve(env, tmp_path) as served,
            httpx.AsyncClient(base_url=served.url, timeout=30, limits=limits) as client,
        ):
            streams = [
                await client.send(client.build_request("GET", EVENTS), stream=True)
                for _ in range(100)
            ]
            readers = [EventReader(stream.aiter_lines()) for stream in streams]
            for reader in readers:
                assert (await reader.event()).event == "snapshot"
            async with asyncio.timeout(30):
                while not (await sim_stats(sims.anythingllm_url))["paths"]:  # noqa: ASYNC110 (another process)
                    await asyncio.sleep(0.05)
            stopping = asyncio.create_task(stop(served.process))
            for reader in readers:
                while (message := await reader.message()).comments != ["shutdown"]:
                    assert message.event == "changed"
                await reader.end()
            code, stderr, took_s = await stopping
            for stream in streams:
                await stream.aclose()

    assert code == 0, stderr
    assert took_s < SHUTDOWN_TIMEOUT_S + 2  # + the interpreter's own exit
    assert "Traceback" not in stderr
    assert snapshot.is_file()
