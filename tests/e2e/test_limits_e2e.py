"""The edge on a real uvicorn server on loopback, spoken to over raw sockets: the token
before the body, the body limit while reading, and no redirect built from `Host`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared_state.simulator import SimulatorServers
from tests.e2e.conftest import Service, run_service, sidecar_settings

TOKEN = "s3cret-token"
LIMIT = 1024
HUNDRED_MB = 100 * 1024 * 1024
ANSWER_WITHIN_S = 5.0  # generous: a 401 that waited for 100 MB would take far longer


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):  # the server may reset what it refused
            await writer.wait_closed()


def head(method: str, path: str, *lines: str, host: str = "127.0.0.1") -> bytes:
    return "\r\n".join([f"{method} {path} HTTP/1.1", f"Host: {host}", *lines, "", ""]).encode()


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """One HTTP/1.1 response with a Content-Length body."""
    async with asyncio.timeout(ANSWER_WITHIN_S):
        raw = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in filter(None, header_lines):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(int(status_line.split()[1]), headers, body)


async def is_closed_by_server(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(ANSWER_WITHIN_S):
        try:
            return await reader.read(1) == b""
        except ConnectionResetError:
            return True


@asynccontextmanager
async def limited_service(sims: SimulatorServers, **env: object) -> AsyncIterator[Service]:
    settings = sidecar_settings(
        sims, SHARED_STATE_API_TOKEN=TOKEN, SHARED_STATE_MAX_BODY_BYTES=LIMIT, **env
    )
    async with run_service(settings) as service:
        await service.runtime.synchronizer.sync()
        yield service


async def test_unauthenticated_100_mb_post_gets_401_before_its_body_is_sent(
    sims: SimulatorServers,
) -> None:
    """Only the headers of a 100 MB POST are sent; the 401 arrives anyway, so the
    service answered without reading (or waiting for) the body."""
    async with limited_service(sims) as service, connect(service.url) as (reader, writer):
        version = service.runtime.manager.state.version
        writer.write(
            head(
                "POST",
                "/api/shared-state/llm-settings",
                "Content-Type: application/json",
                f"Content-Length: {HUNDRED_MB}",
            )
        )
        await writer.drain()
        answer = await read_answer(reader)

        assert answer.status == 401
        assert json.loads(answer.body)["code"] == "unauthorized"
        assert answer.headers["www-authenticate"] == "Bearer"
        assert service.runtime.manager.state.version == version


async def test_declared_oversized_body_gets_413_before_it_is_sent(sims: SimulatorServers) -> None:
    """With the token, a Content-Length over the limit is refused from the headers alone,
    and the connection is closed rather than drained."""
    async with limited_service(sims) as service, connect(service.url) as (reader, writer):
        writer.write(
            head(
                "POST",
                "/api/shared-state/llm-settings",
                f"Authorization: Bearer {TOKEN}",
                "Content-Type: application/json",
                f"Content-Length: {HUNDRED_MB}",
            )
        )
        await writer.drain()
        answer = await read_answer(reader)

        assert answer.status == 413
        assert json.loads(answer.body)["code"] == "body_too_large"
        assert await is_closed_by_server(reader)


async def test_chunked_body_growing_past_the_limit_is_cut_off(sims: SimulatorServers) -> None:
    """A chunked body (no length declared) is refused once it passes the limit, before
    its end ever arrives, and nothing is written upstream."""
    async with limited_service(sims) as service, connect(service.url) as (reader, writer):
        settings_before = service.runtime.manager.render("settings")
        writer.write(
            head(
                "POST",
                "/api/shared-state/llm-settings",
                f"Authorization: Bearer {TOKEN}",
                "Content-Type: application/json",
                "Transfer-Encoding: chunked",
            )
        )
        chunk = b'{"model": "' + b"m" * 500
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        for _ in range(3):  # about 2 KiB in all, never the final 0-length chunk
            writer.write(b"200\r\n" + b"m" * 0x200 + b"\r\n")
        await writer.drain()
        answer = await read_answer(reader)

        assert answer.status == 413
        assert json.loads(answer.body)["code"] == "body_too_large"
        assert await is_closed_by_server(reader)
        assert service.runtime.manager.render("settings") == settings_before


async def test_normal_write_still_works(sims: SimulatorServers) -> None:
    """A small body with the token is written as before."""
    async with limited_service(sims) as service:
        response = await service.post(
            "/llm-settings",
            json={"model": "gpt-4o-mini"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        state = await service.get("", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200
    assert response.json()["model"] == "gpt-4o-mini"
    assert state.json()["settings"]["llm"]["model"] == "gpt-4o-mini"


async def test_trailing_slash_with_hostile_host_is_no_redirect(sims: SimulatorServers) -> None:
    """`GET /api/shared-state/` with `Host: evil.example` builds no `Location`, with and
    without the token."""
    async with run_service(sidecar_settings(sims)) as service, connect(service.url) as (r, w):
        w.write(head("GET", "/api/shared-state/", host="evil.example"))
        await w.drain()
        answer = await read_answer(r)
    async with limited_service(sims) as service, connect(service.url) as (reader, writer):
        writer.write(head("GET", "/api/shared-state/", host="evil.example"))
        await writer.drain()
        unauthenticated = await read_answer(reader)

    assert answer.status == 404
    assert json.loads(answer.body)["code"] == "not_found"
    assert "location" not in answer.headers
    assert unauthenticated.status == 401
    assert "location" not in unauthenticated.headers


async def test_unlisted_host_gets_invalid_host(sims: SimulatorServers) -> None:
    """With SHARED_STATE_ALLOWED_HOSTS, another Host gets 400 on a real server too."""
    settings = sidecar_settings(sims, SHARED_STATE_ALLOWED_HOSTS="sidecar.internal,127.0.0.1")
    async with run_service(settings) as service, connect(service.url) as (reader, writer):
        writer.write(head("GET", "/api/shared-state", host="evil.example"))
        writer.write(head("GET", "/api/shared-state/settings", host="127.0.0.1:1234"))
        await writer.drain()
        refused = await read_answer(reader)
        served = await read_answer(reader)

    assert refused.status == 400
    assert json.loads(refused.body)["code"] == "invalid_host"
    assert served.status == 200
