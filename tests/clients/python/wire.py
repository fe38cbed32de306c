"""Answers of a fake service for the client's unit tests (httpx.MockTransport), in the
service's own wire format."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

BASE = "http://service.test:8080"
API = f"{BASE}/api/shared-state"
TOKEN = "s3cr3t-t0ken-canary"

SETTINGS: dict[str, Any] = {
    "llm": {"provider": "openai", "model": "gpt-4o", "temperature": 0.7, "maxTokens": 4096},
    "embedding": {"provider": "openai", "model": "text-embedding-3-small"},
    "ui": {"theme": "system", "fontSize": "medium"},
    "vectorDb": {"provider": "lancedb", "settings": {}},
}
SOURCES: dict[str, Any] = {
    name: {
        "status": "ok",
        "lastSuccessAt": "2026-11-21T12:00:00.000Z",
        "lastAttemptAt": "2026-11-21T12:00:00.000Z",
        "lastError": None,
    }
    for name in ("anythingllm", "librechat")
}


def state(version: int = 7, **changes: Any) -> dict[str, Any]:
    """A whole state (contract §4)."""
    return {
        "version": version,
        "syncTimestamp": "2026-11-21T12:00:00.000Z",
        "user": {"id": 1, "username": "ada", "email": "ada@example.com", "name": "Ada"},
        "settings": SETTINGS,
        "workspaces": [{"id": 1, "name": "Research", "slug": "research"}],
        "conversations": [{"id": "c-1", "title": "Quarterly plan"}],
        "sources": SOURCES,
        **changes,
    }


def json_answer(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    """A JSON answer (`null` too); a 304 has no body."""
    if status == 304:
        return httpx.Response(304, headers=headers)
    content = json.dumps(body).encode()
    return httpx.Response(
        status, content=content, headers={"content-type": "application/json", **headers}
    )


Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers from `answers` in turn (a callable or an
    exception to raise) and records every request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.answers, f"unexpected request {request.method} {request.url}"
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


# --- event streams --------------------------------------------------------------------


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One event as the service frames it."""
    return f"event: {event}\ndata: {json.dumps(data)}\nid: {data['version']}\n\n".encode()


def snapshot(version: int, **changes: Any) -> bytes:
    body = {"type": "snapshot", "version": version, "timestamp": "2026-11-21T12:00:01.000Z"}
    return sse("snapshot", {**body, "state": state(version, **changes)})


def changed(version: int, changes: dict[str, Any] | None = None) -> bytes:
    body = {
        "type": "changed",
        "version": version,
        "previousVersion": version - 1,
        "timestamp": "2026-11-21T12:00:02.000Z",
        "changes": changes if changes is not None else {"settings": SETTINGS},
    }
    return sse("changed", body)


class Stream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body sent in `parts`; an exception among them is raised at that point
    (a connection that drops mid-stream)."""

    def __init__(self, *parts: bytes | Exception) -> None:
        self.parts = parts
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            if isinstance(part, Exception):
                raise part
            yield part

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            if isinstance(part, Exception):
                raise part
            yield part

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def event_stream(*parts: bytes | Exception) -> httpx.Response:
    """A `text/event-stream` answer that starts with `retry:` as the service's does."""
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream; charset=utf-8"},
        stream=Stream(b"retry: 3000\n\n", *parts),
    )
