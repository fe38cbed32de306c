"""The upstream clients' transport against a raw HTTP/1.1 server on loopback that closes
connections when told to: reads that met a connection the upstream closed are sent again,
writes and failures on fresh connections are not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from shared_state.adapters.transport import UPSTREAM_KEEPALIVE_EXPIRY_S, upstream_transport

# (connection number, request number on that connection), both from 1 -> answer it?
Policy = Callable[[int, int], bool]


@dataclass
class RawServer:
    """Counts connections and requests; answers 200 or closes the connection unanswered."""

    policy: Policy
    connections: int = 0
    requests: list[tuple[int, str]] = field(default_factory=list)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection, served = self.connections, 0
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                served += 1
                lines = head.decode("latin-1").split("\r\n")
                self.requests.append((connection, lines[0].split(" ")[0]))
                length = next(
                    (
                        int(v)
                        for k, _, v in (line.partition(":") for line in lines[1:])
                        if k.lower() == "content-length"
                    ),
                    0,
                )
                await reader.readexactly(length)
                if not self.policy(connection, served):
                    break  # the keep-alive race: closed without an answer
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass  # the client closed the connection
        finally:
            writer.close()


StartServer = Callable[[Policy], Awaitable[RawServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Starts `RawServer`s on free loopback ports; closes them after the test."""
    servers: list[asyncio.Server] = []

    async def start(policy: Policy) -> RawServer:
        raw = RawServer(policy)
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        servers.append(server)
        raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return raw

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _client(raw: RawServer, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=raw.url, transport=upstream_transport(), **kwargs)


def _second_request_on_first_connection_dropped(connection: int, served: int) -> bool:
    return not (connection == 1 and served == 2)


async def test_read_that_met_a_closed_pooled_connection_is_sent_again(
    start_server: StartServer,
) -> None:
    """The second GET reuses the first connection, which the server closes: it is answered
    all the same, over a new connection, without an error."""
    raw = await start_server(_second_request_on_first_connection_dropped)
    async with _client(raw) as client:
        assert (await client.get("/a")).text == "ok"
        assert (await client.get("/b")).text == "ok"
    assert raw.connections == 2
    assert raw.requests == [(1, "GET"), (1, "GET"), (2, "GET")]


async def test_write_that_met_a_closed_pooled_connection_is_not_sent_again(
    start_server: StartServer,
) -> None:
    """A POST is never sent twice: the failure reaches the caller (the adapters report it)."""
    raw = await start_server(_second_request_on_first_connection_dropped)
    async with _client(raw) as client:
        assert (await client.get("/a")).text == "ok"
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/write", json={"model": "gpt-4o"})
    assert raw.requests == [(1, "GET"), (1, "POST")]


async def test_failure_on_a_fresh_connection_is_raised_at_once(start_server: StartServer) -> None:
    """An upstream that drops a request on a new connection is failing: one try only."""
    raw = await start_server(lambda connection, served: False)
    async with _client(raw) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/a")
    assert raw.requests == [(1, "GET")]


async def test_callers_trace_callback_still_sees_every_event(start_server: StartServer) -> None:
    """The transport's own trace hook passes events on to one the caller set."""
    raw = await start_server(lambda connection, served: True)
    events: list[str] = []

    async def trace(event: str, info: dict[str, Any]) -> None:
        events.append(event)

    async with _client(raw) as client:
        response = await client.get("/a", extensions={"trace": trace})
    assert response.text == "ok"
    assert "connection.connect_tcp.started" in events
    assert "http11.receive_response_headers.complete" in events


def test_pooled_connections_expire_before_node_closes_them() -> None:
    """Node's and uvicorn's keep-alive is 5 s; the pool lets go well before that."""
    assert UPSTREAM_KEEPALIVE_EXPIRY_S <= 5 / 2
