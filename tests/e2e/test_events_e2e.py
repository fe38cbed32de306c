"""The event stream end to end: real uvicorn on loopback, read with httpx streaming."""

from __future__ import annotations

import asyncio
import json
import socket
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared_state.domain.models import SourceName
from shared_state.simulator import SimulatorServers
from tests.e2e.conftest import Service, run_service, sidecar_settings
from tests.e2e.test_process_e2e import native_env, serve, stop

SimClients = tuple[httpx.AsyncClient, httpx.AsyncClient]
EVENTS = "/api/shared-state/events"
GUARD_S = 10.0  # a guard against hangs, never a wait for something to happen


@dataclass
class Message:
    """One block of the stream, up to its blank line."""

    event: str | None = None
    id: str | None = None
    data: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class EventReader:
    """Parses `text/event-stream` lines into messages."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self._lines = lines

    async def message(self) -> Message:
        """The next block (an event, a comment or a `retry:` field)."""
        return await asyncio.wait_for(self._read(), GUARD_S)

    async def event(self) -> Message:
        """The next block with an `event:` field, skipping comments."""
        while True:
            message = await self.message()
            if message.event is not None:
                return message

    async def _read(self) -> Message:
        message = Message()
        data_lines = 0
        async for line in self._lines:
            if line == "":
                if message == Message():
                    continue
                return message
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                message.comments.append(value)
            elif name == "event":
                message.event = value
            elif name == "id":
                message.id = value
            elif name == "data":
                data_lines += 1
                assert data_lines == 1, "one data: line per event"
                message.data = value
            elif name == "retry":
                message.retry = int(value)
        raise EOFError("the stream ended")

    async def end(self) -> None:
        """Wait for the stream to end, failing when it has more events."""

        async def rest() -> None:
            async for line in self._lines:
                assert line == "", line

        await asyncio.wait_for(rest(), GUARD_S)


@asynccontextmanager
async def open_stream(
    service: Service, query: str = "", **headers: str
) -> AsyncIterator[tuple[httpx.Response, EventReader]]:
    async with service.client.stream("GET", EVENTS + query, headers=headers) as response:
        reader = EventReader(response.aiter_lines())
        if response.status_code == 200:
            retry = await reader.message()
            assert retry.retry is not None
            assert retry.retry > 0
        yield response, reader


async def write_theme(service: Service, theme: str) -> int:
    """A UI settings write through the API; the new version."""
    answer = await service.post("/ui-settings", json={"theme": theme})
    assert answer.status_code == 200, answer.text
    assert answer.json()["theme"] == theme
    return service.runtime.manager.state.version


async def record_themes(service: Service, count: int, *, size: int = 10) -> int:
    """`count` new versions, recorded straight into the StateManager as writes that both
    upstreams took (faster than `count` HTTP writes); the last version."""
    manager = service.runtime.manager
    for number in range(count):
        theme = {"theme": f"theme-{number}".ljust(size, "x")}
        written: dict[SourceName, dict[str, str]] = {"anythingllm": theme, "librechat": theme}
        commit = await manager.record_write("ui", written, {}, datetime.now(UTC))
        assert commit.event is not None
    return commit.state.version


async def test_a_stream_starts_with_a_snapshot_then_sends_each_change(service: Service) -> None:
    """`text/event-stream`, `retry:`, a `snapshot` of the state, then one `changed` per
    version with `id:` = version."""
    state = (await service.get("")).json()
    async with open_stream(service) as (response, reader):
        assert response.headers["content-type"].startswith("text/event-stream")
        snapshot = await reader.event()
        assert (snapshot.event, snapshot.id) == ("snapshot", str(state["version"]))
        body = snapshot.json()
        assert (body["type"], body["version"]) == ("snapshot", state["version"])
        assert body["state"] == state
        assert body["timestamp"].endswith("Z")

        version = await write_theme(service, "light")
        changed = await reader.event()
        assert (changed.event, changed.id) == ("changed", str(version))
        event = changed.json()
        assert event["type"] == "changed"
        assert (event["version"], event["previousVersion"]) == (version, state["version"])
        assert list(event["changes"]) == ["settings"]
        assert event["changes"]["settings"]["ui"]["theme"] == "light"


async def test_list_changes_carry_added_updated_and_removed(
    service: Service, sim_clients: SimClients
) -> None:
    """A conversation renamed upstream arrives as `updated` with the whole item."""
    _, librechat = sim_clients
    async with open_stream(service) as (_, reader):
        await reader.event()
        await librechat.patch("/_sim/conversations/c-0001", json={"title": "Renamed"})
        await service.runtime.synchronizer.sync()
        event = (await reader.event()).json()
    change = event["changes"]["conversations"]
    assert [item["title"] for item in change["updated"]] == ["Renamed"]
    assert (change["added"], change["removed"]) == ([], [])


async def test_resuming_sends_exactly_the_missed_versions_then_live_ones(
    service: Service,
) -> None:
    """`Last-Event-ID: N` gets N+1 … current, no snapshot; then the next change."""
    start = service.runtime.manager.state.version
    last = await record_themes(service, 5)
    async with open_stream(service, **{"Last-Event-ID": str(start + 2)}) as (_, reader):
        missed = [await reader.event() for _ in range(3)]
        assert [m.event for m in missed] == ["changed"] * 3
        assert [int(m.id or "") for m in missed] == [start + 3, start + 4, last]
        live = await write_theme(service, "light")
        assert (await reader.event()).id == str(live)


async def test_the_query_cursor_resumes_too(service: Service) -> None:
    """`?lastEventId=N` for clients that cannot set headers."""
    start = service.runtime.manager.state.version
    last = await record_themes(service, 2)
    async with open_stream(service, f"?lastEventId={start + 1}") as (_, reader):
        assert (await reader.event()).id == str(last)


async def test_a_current_cursor_sends_nothing_until_the_next_change(service: Service) -> None:
    current = service.runtime.manager.state.version
    async with open_stream(service, **{"Last-Event-ID": str(current)}) as (_, reader):
        version = await write_theme(service, "light")
        first = await reader.event()
        assert (first.event, first.id) == ("changed", str(version))
        assert version == current + 1


@pytest.mark.parametrize("cursor", ["ahead", "-1", "1.5", "abc", "99999999999999999999999"])
async def test_a_cursor_ahead_or_not_a_whole_number_starts_with_a_snapshot(
    service: Service, cursor: str
) -> None:
    current = service.runtime.manager.state.version
    value = str(current + 1) if cursor == "ahead" else cursor
    async with open_stream(service, **{"Last-Event-ID": value}) as (_, reader):
        first = await reader.event()
        assert (first.event, first.id) == ("snapshot", str(current))


async def test_a_cursor_older_than_the_replay_log_starts_with_a_snapshot(
    sims: SimulatorServers,
) -> None:
    """With 3 versions kept, a cursor 4 behind gets a snapshot; 3 behind is replayed."""
    settings = sidecar_settings(sims, SHARED_STATE_REPLAY_VERSIONS=3)
    async with run_service(settings) as service:
        await service.runtime.synchronizer.sync()
        start = service.runtime.manager.state.version
        last = await record_themes(service, 4)
        async with open_stream(service, **{"Last-Event-ID": str(start)}) as (_, reader):
            first = await reader.event()
            assert (first.event, first.id) == ("snapshot", str(last))
            assert first.json()["state"]["settings"]["ui"]["theme"].startswith("theme-3")
        async with open_stream(service, **{"Last-Event-ID": str(start + 1)}) as (_, reader):
            replayed = [await reader.event() for _ in range(3)]
            assert [m.id for m in replayed] == [str(v) for v in range(start + 2, last + 1)]


async def test_sections_limit_the_snapshot_and_the_changes(
    service: Service, sim_clients: SimClients
) -> None:
    """`?sections=settings,user`: a conversation change is not sent; a settings change is,
    with only its section."""
    _, librechat = sim_clients
    state = (await service.get("")).json()
    async with open_stream(service, "?sections=settings,user") as (_, reader):
        snapshot = (await reader.event()).json()
        assert set(snapshot["state"]) == {"version", "syncTimestamp", "settings", "user"}
        assert snapshot["state"]["settings"] == state["settings"]
        assert snapshot["state"]["user"] == state["user"]
        assert snapshot["state"]["syncTimestamp"] == state["syncTimestamp"]

        await librechat.patch("/_sim/conversations/c-0001", json={"title": "Not for us"})
        await service.runtime.synchronizer.sync()
        skipped = service.runtime.manager.state.version
        version = await write_theme(service, "light")
        assert version == skipped + 1
        changed = await reader.event()
        assert changed.id == str(version)
        assert list(changed.json()["changes"]) == ["settings"]


async def test_sources_alone_can_be_followed(service: Service) -> None:
    state = (await service.get("")).json()
    async with open_stream(service, "?sections=sources") as (_, reader):
        snapshot = (await reader.event()).json()
    assert snapshot["state"] == {
        "version": state["version"],
        "syncTimestamp": state["syncTimestamp"],
        "sources": state["sources"],
    }


@pytest.mark.parametrize("sections", ["settings,nope", "", "Settings"])
async def test_an_unknown_section_is_422(service: Service, sections: str) -> None:
    answer = await service.client.get(EVENTS, params={"sections": sections})
    assert answer.status_code == 422
    assert answer.json()["code"] == "unknown_section"
    assert isinstance(answer.json()["detail"], str)


async def test_an_idle_stream_sends_heartbeat_comments(sims: SimulatorServers) -> None:
    settings = sidecar_settings(sims, SHARED_STATE_EVENTS_HEARTBEAT_S=0.05)
    async with run_service(settings) as service:
        await service.runtime.synchronizer.sync()
        async with open_stream(service) as (_, reader):
            await reader.event()
            heartbeat = await reader.message()
            assert (heartbeat.comments, heartbeat.event) == (["heartbeat"], None)


async def test_shutdown_sends_a_final_comment_and_ends_every_stream(service: Service) -> None:
    async with open_stream(service) as (_, first), open_stream(service) as (_, second):
        await first.event()
        await second.event()
        service.runtime.manager.close()
        for reader in (first, second):
            assert (await reader.message()).comments == ["shutdown"]
            await reader.end()


async def test_sigterm_ends_every_stream_with_a_shutdown_comment(tmp_path: Path) -> None:
    """`shared-state serve` with three open streams: SIGTERM sends each `: shutdown`,
    ends it, and the process exits 0."""
    async with (
        SimulatorServers() as sims,
        serve(native_env(sims), tmp_path) as served,
        httpx.AsyncClient(base_url=served.url, timeout=GUARD_S) as client,
    ):
        streams = [
            await client.send(client.build_request("GET", EVENTS), stream=True) for _ in range(3)
        ]
        readers = [EventReader(stream.aiter_lines()) for stream in streams]
        for reader in readers:
            assert (await reader.event()).event == "snapshot"
        stopping = asyncio.create_task(stop(served.process))
        for reader in readers:
            while (message := await reader.message()).comments != ["shutdown"]:
                assert message.event == "changed"  # the first sync may still land
            await reader.end()
        code, stderr, _ = await stopping
        for stream in streams:
            await stream.aclose()
    assert code == 0, stderr
    assert "Traceback" not in stderr


async def test_status_counts_open_streams(service: Service) -> None:
    async with open_stream(service) as (_, first), open_stream(service) as (_, second):
        await first.event()
        await second.event()
        assert (await service.get("/status")).json()["subscribers"] == 2
    # A client that goes away is unsubscribed once the server notices the disconnect;
    # nothing signals that moment, so this asks /status until it says so.
    async with asyncio.timeout(GUARD_S):
        while (await service.get("/status")).json()["subscribers"]:  # noqa: ASYNC110 (no event)
            await asyncio.sleep(0.02)


# --- the token ----------------------------------------------------------------------------

TOKEN = "s3cret-token"


@pytest.fixture
async def guarded(sims: SimulatorServers) -> AsyncIterator[Service]:
    async with run_service(sidecar_settings(sims, SHARED_STATE_API_TOKEN=TOKEN)) as service:
        await service.runtime.synchronizer.sync()
        yield service


async def test_the_stream_takes_the_token_as_a_header_or_as_access_token(
    guarded: Service,
) -> None:
    async with open_stream(guarded, f"?access_token={TOKEN}") as (response, reader):
        assert response.status_code == 200
        assert (await reader.event()).event == "snapshot"
    async with open_stream(guarded, Authorization=f"Bearer {TOKEN}") as (response, reader):
        assert (await reader.event()).event == "snapshot"
    for query in ("", "?access_token=wrong", "?access_token=", f"?access_token={TOKEN}x"):
        answer = await guarded.client.get(EVENTS + query)
        assert answer.status_code == 401, query
        assert answer.json()["code"] == "unauthorized"
        assert answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ["", "/settings", "/status", "/conversations/c-0001"])
async def test_other_routes_refuse_access_token(guarded: Service, path: str) -> None:
    answer = await guarded.get(path, params={"access_token": TOKEN})
    assert answer.status_code == 401
    answer = await guarded.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200


async def test_a_write_refuses_access_token(guarded: Service) -> None:
    answer = await guarded.post(
        "/ui-settings", params={"access_token": TOKEN}, json={"theme": "light"}
    )
    assert answer.status_code == 401
    assert guarded.runtime.manager.state.settings.ui.theme != "light"


# --- a client that does not read ------------------------------------------------------


async def test_a_client_that_never_reads_is_bounded_and_starts_over_with_a_snapshot(
    sims: SimulatorServers,
) -> None:
    """2,000 changes while a client reads nothing: the writes and a sync finish, the
    server holds a bounded amount for it, and once it reads it gets the events already
    on their way, contiguous, then a fresh `snapshot` of the latest version."""
    settings = sidecar_settings(sims, SHARED_STATE_REPLAY_VERSIONS=10)
    async with run_service(settings) as service:
        await service.runtime.synchronizer.sync()
        host, port = service.url.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that reads slowly
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        try:
            writer.write(f"GET {EVENTS} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            await asyncio.wait_for(reader.readuntil(b"event: snapshot"), GUARD_S)
            assert (await service.get("/status")).json()["subscribers"] == 1

            tracemalloc.start()
            try:
                before, _ = tracemalloc.get_traced_memory()
                last = await record_themes(service, 2000, size=4096)
                await asyncio.wait_for(service.runtime.synchronizer.sync(), GUARD_S)
                after, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            # Unbounded, the 2,000 events (4 kB each) alone would be 8 MB.
            assert after - before < 4 * 1024 * 1024
            # The bus let go of the stalled stream: nothing is queued for it any more.
            assert (await service.get("/status")).json()["subscribers"] == 0

            ids: list[int] = []
            kinds: list[str] = []
            while not kinds or kinds[-1] != "snapshot":
                block = await asyncio.wait_for(reader.readuntil(b"\n\n"), GUARD_S)
                lines = dict(
                    line.split(": ", 1) for line in block.decode().splitlines() if ": " in line
                )
                if "event" in lines:
                    kinds.append(lines["event"])
                    ids.append(int(lines["id"]))
            assert set(kinds[:-1]) == {"changed"}
            assert ids[:-1] == list(range(ids[0], ids[0] + len(ids) - 1))
            assert len(ids) - 1 < 2000
            assert ids[-1] == service.runtime.manager.state.version >= last
            assert (await service.get("/status")).json()["subscribers"] == 1
        finally:
            writer.close()
            await writer.wait_closed()
