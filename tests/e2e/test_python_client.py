"""The Python client end to end: the real service under uvicorn on loopback against both
simulators, read and written through `SharedStateClient` (in a thread: the service runs
in this loop) and `AsyncSharedStateClient`, and `shared-state get`/`watch` as
subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared_state.client import (
    AsyncSharedStateClient,
    ClientEvent,
    ClientOptions,
    SharedStateClient,
    SharedStateClientError,
)
from shared_state.domain.events import ChangedEvent, ItemChanges, SnapshotEvent
from shared_state.domain.models import LlmSettings, SharedState, StateSettings, User
from shared_state.simulator import SimulatorServers
from tests.e2e.conftest import Service, run_service, sidecar_settings

SimClients = tuple[httpx.AsyncClient, httpx.AsyncClient]
GUARD_S = 20.0  # a guard against hangs, never a wait for something to happen
FAST_RECONNECT: ClientOptions = {"reconnect_delay_s": 0.01, "max_reconnect_delay_s": 0.05}


async def change_theme(service: Service) -> str:
    """Write a theme other than the current one (so the version moves); that theme."""
    current = (await service.get("/settings")).json()["ui"]["theme"]
    theme = next(t for t in ("light", "system", "dark") if t != current)
    answer = await service.post("/ui-settings", json={"theme": theme})
    assert answer.status_code == 200, answer.text
    return theme


async def test_the_sync_client_reads_typed_models(service: Service) -> None:
    def read() -> tuple[SharedState, StateSettings, User | None, dict[str, object], bool]:
        with SharedStateClient(service.url) as client:
            state = client.get_state()
            settings = client.get_settings()
            user = client.get_user()
            slug = str(state.workspaces[0]["slug"])
            workspace = client.get_workspace(slug)
            same = client.get_settings() is settings  # 304: the cached object
            return state, settings, user, workspace, same

    state, settings, user, workspace, same = await asyncio.to_thread(read)
    served = (await service.get("")).json()
    assert state.version == served["version"]
    assert settings.llm.model == served["settings"]["llm"]["model"]
    assert user is not None
    assert user.username == served["user"]["username"]
    assert workspace["id"] == served["workspaces"][0]["id"]
    assert same


async def test_the_async_client_reads_typed_models_with_etags(service: Service) -> None:
    async with AsyncSharedStateClient(service.url) as client:
        state = await client.get_state()
        again = await client.get_state()
        conversations = await client.get_conversations()
        status = await client.get_status()
        with pytest.raises(SharedStateClientError) as missing:
            await client.get_conversation("no-such-conversation")
    assert again is state
    assert [c["id"] for c in conversations] == [c["id"] for c in state.conversations]
    assert status.version == state.version
    assert {name: s.status for name, s in status.sources.items()} == {
        "anythingllm": "ok",
        "librechat": "ok",
    }
    assert (missing.value.status, missing.value.code) == (404, "not_found")


async def test_an_llm_write_lands_in_the_simulators(
    service: Service, sim_clients: SimClients
) -> None:
    anythingllm, librechat = sim_clients

    def write() -> LlmSettings:
        with SharedStateClient(service.url) as client:
            client.get_settings()
            return client.update_llm_settings(model="gpt-4o-mini", max_tokens=8192, if_match=True)

    written = await asyncio.to_thread(write)
    assert (written.model, written.max_tokens) == ("gpt-4o-mini", 8192)
    allm = (await anythingllm.get("/_sim/state")).json()["settings"]
    lc = (await librechat.get("/_sim/state")).json()["settings"]
    assert (allm["OpenAiModelPref"], allm["MaxTokens"]) == ("gpt-4o-mini", 8192)
    assert (lc["defaultModelId"], lc["defaultMaxTokens"]) == ("openai/gpt-4o-mini", 8192)
    assert (await service.get("/settings")).json()["llm"]["maxTokens"] == 8192


async def test_a_stale_if_match_is_412_and_writes_nothing(
    service: Service, sim_clients: SimClients
) -> None:
    anythingllm, _ = sim_clients
    async with AsyncSharedStateClient(service.url) as client:
        await client.get_settings()
        await change_theme(service)  # the settings change: the tag is old
        writes = len((await anythingllm.get("/_sim/writes")).json())
        with pytest.raises(SharedStateClientError) as caught:
            await client.update_llm_settings(model="gpt-4o-mini", if_match=True)
        settings = await client.get_settings()
    assert (caught.value.status, caught.value.code) == (412, "version_mismatch")
    assert "nothing was written" in str(caught.value)
    assert len((await anythingllm.get("/_sim/writes")).json()) == writes
    assert settings.llm.model != "gpt-4o-mini"


async def test_ui_writes_and_sync_through_the_async_client(service: Service) -> None:
    async with AsyncSharedStateClient(service.url) as client:
        ui = await client.update_ui_settings(theme="light", font_size="large")
        report = await client.sync()
    assert (ui.theme, ui.font_size) == ("light", "large")
    assert report.version == service.runtime.manager.state.version
    assert report.changed == []


async def test_events_see_a_change_made_in_the_simulator(
    service: Service, sim_clients: SimClients
) -> None:
    anythingllm, _ = sim_clients
    async with (
        AsyncSharedStateClient(service.url) as client,
        contextlib.aclosing(client.events()) as events,
    ):
        first = await asyncio.wait_for(anext(events), GUARD_S)
        assert isinstance(first, SnapshotEvent)
        assert first.state.version == service.runtime.manager.state.version
        created = await anythingllm.post("/_sim/workspaces", json={"name": "Field notes"})
        assert created.status_code == 201
        await service.runtime.synchronizer.sync()
        second = await asyncio.wait_for(anext(events), GUARD_S)
    assert isinstance(second, ChangedEvent)
    assert second.version == first.version + 1
    change = second.changes["workspaces"]
    assert isinstance(change, ItemChanges)
    assert [item["name"] for item in change.added] == ["Field notes"]


class Relay:
    """A TCP relay on loopback in front of the service, so a test can cut the stream the
    way a proxy or a network does: `cut()` closes every connection through it; while
    `hold()` is in force, new connections wait before they reach the service."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._open = asyncio.Event()
        self._open.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            self.cut()
            server.close()
            await server.wait_closed()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        await self._open.wait()
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._writers.add(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        sink.transport.abort()


async def test_events_resume_after_the_stream_is_cut(service: Service) -> None:
    """Cut mid-stream, two writes while it is away: the client reconnects with
    `Last-Event-ID` and gets exactly those two `changed` events, then live ones: no
    snapshot, no gap, no repeat."""
    port = httpx.URL(service.url).port
    assert port is not None
    relay = Relay(port)
    async with (
        relay.running() as relay_url,
        AsyncSharedStateClient(relay_url, **FAST_RECONNECT) as client,
        contextlib.aclosing(client.events(sections=["settings"])) as events,
    ):

        async def next_event() -> ClientEvent:
            return await asyncio.wait_for(anext(events), GUARD_S)

        first = await next_event()
        assert first.type == "snapshot"
        await change_theme(service)
        live = await next_event()
        assert (live.type, live.version) == ("changed", first.version + 1)

        relay.hold()
        relay.cut()
        await change_theme(service)
        await service.post("/llm-settings", json={"model": "gpt-4o-mini"})
        relay.release()

        missed = [await next_event(), await next_event()]
        await service.post("/ui-settings", json={"fontSize": "large"})
        after = await next_event()
    assert [(e.type, e.version) for e in [*missed, after]] == [
        ("changed", first.version + 2),
        ("changed", first.version + 3),
        ("changed", first.version + 4),
    ]
    assert isinstance(missed[1], ChangedEvent)
    assert missed[1].changes["settings"].llm.model == "gpt-4o-mini"
    assert relay.connections >= 2


# --- the command ----------------------------------------------------------------------


def _command_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}


async def _command(*args: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared_state",
        *args,
        env=_command_env(),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_get_settings_prints_the_section_as_compact_json(
    service: Service, tmp_path: Path
) -> None:
    process = await _command("get", "settings", "--url", service.url, cwd=tmp_path)
    stdout, stderr = await asyncio.wait_for(process.communicate(), GUARD_S * 3)
    assert process.returncode == 0, stderr.decode()
    output = stdout.decode()
    assert output.count("\n") == 1  # not a terminal: one compact line
    assert json.loads(output) == (await service.get("/settings")).json()


async def test_get_against_nothing_names_the_url_and_exits_1(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    process = await _command("get", "--url", url, cwd=tmp_path)
    stdout, stderr = await asyncio.wait_for(process.communicate(), GUARD_S * 3)
    assert process.returncode == 1
    assert stdout == b""
    message = stderr.decode()
    assert f"Could not reach the service at {url}" in message
    assert "Traceback" not in message


async def test_get_sends_the_token_from_a_dotenv_file(
    sims: SimulatorServers, tmp_path: Path
) -> None:
    """`SHARED_STATE_API_TOKEN` from `.env`; without it, the service's 401 detail, exit 1."""
    token = "e2e-client-token-canary"
    async with run_service(sidecar_settings(sims, SHARED_STATE_API_TOKEN=token)) as guarded:
        refused = await _command("get", "user", "--url", guarded.url, cwd=tmp_path)
        refused_out, refused_err = await asyncio.wait_for(refused.communicate(), GUARD_S * 3)
        (tmp_path / ".env").write_text(f"SHARED_STATE_API_TOKEN={token}\n")
        allowed = await _command("get", "user", "--url", guarded.url, cwd=tmp_path)
        allowed_out, allowed_err = await asyncio.wait_for(allowed.communicate(), GUARD_S * 3)
    assert refused.returncode == 1
    assert refused_out == b""
    assert refused_err.decode() == (
        "shared-state: Send the API token as 'Authorization: Bearer <token>'.\n"
    )
    assert allowed.returncode == 0, allowed_err.decode()
    assert "username" in json.loads(allowed_out)
    assert token not in (refused_err + allowed_out + allowed_err).decode()


async def test_watch_json_prints_events_reconnects_and_exits_0_on_ctrl_c(
    service: Service, tmp_path: Path
) -> None:
    """One JSON object per line; a cut stream is resumed (a note on stderr, the change
    made meanwhile still printed once); SIGINT exits 0 without a traceback."""
    port = httpx.URL(service.url).port
    assert port is not None
    relay = Relay(port)
    async with relay.running() as relay_url:
        process = await _command("watch", "--json", "--url", relay_url, cwd=tmp_path)
        assert process.stdout is not None
        try:

            async def next_line() -> Any:
                assert process.stdout is not None
                return json.loads(await asyncio.wait_for(process.stdout.readline(), GUARD_S * 3))

            first = await next_line()
            version = service.runtime.manager.state.version
            assert (first["type"], first["version"]) == ("snapshot", version)
            theme = await change_theme(service)
            second = await next_line()
            assert (second["type"], second["version"]) == ("changed", version + 1)
            assert second["changes"]["settings"]["ui"]["theme"] == theme
            relay.cut()
            await change_theme(service)
            third = await next_line()
            assert (third["type"], third["version"]) == ("changed", version + 2)
            process.send_signal(signal.SIGINT)
            _, stderr = await asyncio.wait_for(process.communicate(), GUARD_S)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0
    notes = stderr.decode()
    assert f"event stream from {relay_url} " in notes
    assert "; reconnecting in " in notes
    assert "Traceback" not in notes
    assert "KeyboardInterrupt" not in notes
