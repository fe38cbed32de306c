"""The upstream HTTP clients' transport: httpx's connection pool, plus a transparent
second try for a read that met a pooled connection the upstream had just closed.

Node (AnythingLLM, LibreChat) and uvicorn close a keep-alive connection after 5 s idle.
A request sent on it at that moment meets a closed socket, and httpx's pool cannot tell
this race from a real failure: without this, the read is retried by the adapters'
back-off, which logs a warning and costs a second in a perfectly healthy steady state.
"""

from __future__ import annotations

from typing import Any

import httpx

UPSTREAM_KEEPALIVE_EXPIRY_S = 2.0
"""Idle pooled connections are dropped after this long: well below the 5 s after which
Node and uvicorn close theirs, with room for a request in flight, so with such upstreams a
pooled connection is never one the server is closing."""

UPSTREAM_LIMITS = httpx.Limits(
    max_connections=20, max_keepalive_connections=10, keepalive_expiry=UPSTREAM_KEEPALIVE_EXPIRY_S
)

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
# Failures that mean "the connection was gone", raised before any response came back.
_STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
# httpcore's trace events for opening a new connection (public: its "trace" extension).
_OPENED = ("connection.connect_tcp.", "connection.connect_unix_socket.")


class ReusedConnectionRetry(httpx.AsyncBaseTransport):
    """Wraps a transport: a GET/HEAD/OPTIONS that fails on a *reused* connection before
    any response came back is sent again at once, on another connection.

    That failure means the upstream closed an idle keep-alive connection as the request
    reached it: the request was never processed. A failure on a freshly opened connection
    is a real one and is raised. Writes (POST) are never sent twice: `keepalive_expiry`
    below the upstreams' keep-alive is what keeps them off closing connections.
    Each failed try removes one stale connection from the pool, so this ends after at
    most as many tries as the pool keeps idle connections.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport, *, max_tries: int) -> None:
        self._transport = transport
        self._max_tries = max_tries

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method not in _IDEMPOTENT:
            return await self._transport.handle_async_request(request)
        original = request.extensions
        for _ in range(self._max_tries - 1):
            opened = _OpenedConnection(original.get("trace"))
            request.extensions = {**original, "trace": opened.trace}
            try:
                return await self._transport.handle_async_request(request)
            except _STALE_CONNECTION:
                if opened.seen:
                    raise
            finally:
                request.extensions = original
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


class _OpenedConnection:
    """A trace callback that notes whether the request opened a new connection, passing
    every event on to the caller's own trace callback, if any."""

    def __init__(self, previous: Any) -> None:
        self.previous = previous
        self.seen = False

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        if event.startswith(_OPENED):
            self.seen = True
        if self.previous is not None:
            await self.previous(event, info)


def upstream_transport() -> httpx.AsyncBaseTransport:
    """The transport of every upstream client: a pool with a short keep-alive expiry and
    a second try for reads that met a connection the upstream had just closed."""
    return ReusedConnectionRetry(
        httpx.AsyncHTTPTransport(limits=UPSTREAM_LIMITS),
        max_tries=(UPSTREAM_LIMITS.max_keepalive_connections or 0) + 1,
    )
