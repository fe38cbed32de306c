"""What `SharedStateClient` and `AsyncSharedStateClient` have in common besides the
operations: their options, their repr, and building httpx requests from calls."""

from __future__ import annotations

from collections.abc import Collection
from typing import Generic, TypedDict, TypeVar, Unpack

import httpx

from shared_state.client._core import (
    DEFAULT_MAX_ANSWER_BYTES,
    DEFAULT_RETRIES,
    Call,
    ClientCore,
)
from shared_state.client.events import (
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_MAX_RECONNECT_DELAY_S,
    DEFAULT_RECONNECT_DELAY_S,
    EventStream,
)

H = TypeVar("H", httpx.Client, httpx.AsyncClient)


class ClientOptions(TypedDict, total=False):
    """The options both clients take besides `base_url`, `token` and the transport."""

    retries: int
    """Retries of a call after a connection failure (default 2; a write's retry sends
    the same `Idempotency-Key`)."""
    max_answer_bytes: int
    """The largest answer or event read (default 64 MiB); a larger one is an error."""
    reconnect_delay_s: float
    """The event stream's first pause before reconnecting (default 1 s); it doubles."""
    max_reconnect_delay_s: float
    """The longest pause between reconnection attempts (default 30 s)."""
    events_idle_timeout_s: float
    """A stream silent for this long is reconnected (default 45 s; the service sends a
    comment at least every 15 s)."""


class ClientBase(Generic[H]):
    """The options and the httpx client of a shared-state client.

    `http_client`, when given, is used as it is and not closed by `close()` (its own
    headers, proxies and certificates apply); otherwise the client makes one with
    `timeout` and `transport` (an `httpx.MockTransport` in tests) and closes it.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        http_client: H,
        *,
        owns_http_client: bool,
        timeout: float,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._core = ClientCore(
            base_url,
            token,
            retries=options.get("retries", DEFAULT_RETRIES),
            max_answer_bytes=options.get("max_answer_bytes", DEFAULT_MAX_ANSWER_BYTES),
        )
        self._http: H = http_client
        self._owns_http_client = owns_http_client
        self._timeout_s = timeout
        self._reconnect_delay_s = options.get("reconnect_delay_s", DEFAULT_RECONNECT_DELAY_S)
        self._max_reconnect_delay_s = options.get(
            "max_reconnect_delay_s", DEFAULT_MAX_RECONNECT_DELAY_S
        )
        self._events_idle_timeout_s = options.get("events_idle_timeout_s", DEFAULT_IDLE_TIMEOUT_S)

    @property
    def base_url(self) -> str:
        """The service's root URL, without credentials."""
        return self._core.shown_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._core!r})"

    def _request(self, call: Call, timeout: httpx.Timeout | None = None) -> httpx.Request:
        request: httpx.Request = self._http.build_request(
            call.method,
            call.url,
            headers=dict(call.headers),
            params=dict(call.params),
            json=call.body,
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
        return request

    def _event_stream(
        self, sections: Collection[str] | None, last_event_id: int | None
    ) -> EventStream:
        return EventStream(
            self._core,
            sections,
            last_event_id,
            reconnect_delay_s=self._reconnect_delay_s,
            max_reconnect_delay_s=self._max_reconnect_delay_s,
            idle_timeout_s=self._events_idle_timeout_s,
            timeout_s=self._timeout_s,
        )
