"""The event stream as the Python client reads it (contract §8): typed events, a cursor,
reconnection with back-off. Shared by the sync and async clients, without I/O.

An event is the service's own `SnapshotEvent` or `ChangedEvent`, the same types the
in-process bus publishes: a `changed` event's `changes` hold `User | None`,
`StateSettings`, `ItemChanges` and the sources' `SourceStatus`es, not raw JSON. With
`sections=`, a snapshot's `state` holds only those sections (the others keep their
defaults).

`EventStream` keeps the cursor (the last version seen), builds each connection's
request with `Last-Event-ID`, drops a `changed` event it has already seen (so a
reconnect never repeats one) and says how long to wait before the next attempt.
`SizeGuard` bounds an event's bytes before the SSE decoder (httpx-sse) buffers them.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Collection, Iterator
from typing import Any

import httpx
from httpx_sse import ServerSentEvent
from pydantic import TypeAdapter, ValidationError

from shared_state.client._core import Answer, Call, ClientCore
from shared_state.client.errors import bad_response, too_large
from shared_state.domain.events import ChangedEvent, Event, ItemChanges, SnapshotEvent
from shared_state.domain.models import Section, SourceName, SourceStatus, StateSettings, User

log = logging.getLogger(__name__)

ClientEvent = SnapshotEvent | ChangedEvent
"""What `events()` yields: `type` tells them apart; `version` is the SSE `id`."""

DEFAULT_RECONNECT_DELAY_S = 1.0
DEFAULT_MAX_RECONNECT_DELAY_S = 30.0
DEFAULT_IDLE_TIMEOUT_S = 45.0
"""A stream with no byte for this long is taken as dead: the service sends a comment at
least every 15 s."""

_EVENT: TypeAdapter[Event] = TypeAdapter(Event)
_CHANGES: dict[Section, TypeAdapter[Any]] = {
    "user": TypeAdapter(User | None),
    "settings": TypeAdapter(StateSettings),
    "workspaces": TypeAdapter(ItemChanges),
    "conversations": TypeAdapter(ItemChanges),
    "sources": TypeAdapter(dict[SourceName, SourceStatus]),
}
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
"""Answers after which the stream is tried again; any other error is raised."""


class Reconnect(Exception):
    """The stream must be opened again (after a pause): why, for the log line."""


class EventStream:
    """One `events()` iteration's cursor and back-off."""

    def __init__(
        self,
        core: ClientCore,
        sections: Collection[str] | None,
        last_event_id: int | None,
        *,
        reconnect_delay_s: float,
        max_reconnect_delay_s: float,
        idle_timeout_s: float,
        timeout_s: float,
    ) -> None:
        self._core = core
        if isinstance(sections, str):  # "settings,sources": already the query's form
            self._sections: str | None = sections
        else:
            self._sections = ",".join(sections) if sections is not None else None
        self.cursor = last_event_id
        self._reconnect_delay_s = reconnect_delay_s
        self._max_reconnect_delay_s = max_reconnect_delay_s
        self._timeout = httpx.Timeout(timeout_s, read=idle_timeout_s)
        self._failures = 0

    def call(self) -> Call:
        """This connection's request: the cursor as `Last-Event-ID`, the sections."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self.cursor is not None:
            headers["Last-Event-ID"] = str(self.cursor)
        params = {"sections": self._sections} if self._sections is not None else None
        return self._core.call("GET", "/events", headers=headers, params=params)

    @property
    def timeout(self) -> httpx.Timeout:
        """The connection's timeouts: `read` is the idle limit, not the call's timeout."""
        return self._timeout

    def opened(self, status: int, headers: httpx.Headers, body: bytes) -> None:
        """Check a connection's answer (`body` read only for an error status): an
        event stream resets the back-off; a transient error is `Reconnect`; any other
        error is raised."""
        what = "GET /api/shared-state/events"
        content_type = headers.get("content-type", "")
        if status == 200 and content_type.startswith("text/event-stream"):
            self._failures = 0
            return
        if status in _TRANSIENT_STATUSES:
            raise Reconnect(f"answered {status}")
        if status == 200:
            kind = content_type.partition(";")[0] or "no content type"
            raise bad_response(status, what, f"is {kind}, not an event stream")
        raise self._core.error(Answer(status, headers, body), what)

    def accept(self, sse: ServerSentEvent) -> ClientEvent | None:
        """The typed event of one SSE message, or None for what is not one (the `retry:`
        field) and for a `changed` version already seen."""
        if sse.event not in ("snapshot", "changed"):
            return None
        try:
            event = _EVENT.validate_json(sse.data)
        except ValidationError:
            raise bad_response(
                200, "GET /api/shared-state/events", "holds an event that is not one"
            ) from None
        if isinstance(event, ChangedEvent):
            if self.cursor is not None and event.version <= self.cursor:
                return None
            event = _typed_changes(event)
        self.cursor = event.version
        return event

    def dropped(self, reason: str) -> float:
        """The pause before the next attempt: `reconnect_delay_s` doubling per failure in
        a row up to `max_reconnect_delay_s`, with jitter (half to all of it)."""
        delay = min(self._max_reconnect_delay_s, self._reconnect_delay_s * 2.0**self._failures)
        self._failures += 1
        delay *= random.uniform(0.5, 1.0)  # noqa: S311  (jitter, not a secret)
        log.info(
            "event stream from %s %s; reconnecting in %.1f s (after version %s)",
            self._core.shown_url,
            reason,
            delay,
            self.cursor if self.cursor is not None else "none",
        )
        return delay


def _typed_changes(event: ChangedEvent) -> ChangedEvent:
    """`event` with each section's change as the type the bus publishes."""
    typed: dict[Section, Any] = {}
    for section, change in event.changes.items():
        try:
            typed[section] = _CHANGES[section].validate_python(change)
        except ValidationError:
            raise bad_response(
                200, "GET /api/shared-state/events", f"holds a {section} change that is not one"
            ) from None
    return event.model_copy(update={"changes": typed})


def reason_for(exc: Exception) -> str:
    """Why a connection ended, for the log line (never a URL with credentials)."""
    if isinstance(exc, Reconnect):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return "went quiet"
    if isinstance(exc, httpx.ConnectError):
        return "refused the connection"
    return "dropped"


class SizeGuard:
    """Fails a stream when more than `limit_bytes` arrive without an event's end (a
    blank line), before the SSE decoder buffers them all."""

    def __init__(self, limit_bytes: int) -> None:
        self._limit_bytes = limit_bytes
        self._pending = 0
        self._tail = b""

    def check(self, chunk: bytes) -> bytes:
        seen = (self._tail + chunk).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = seen.rfind(b"\n\n")
        self._pending = len(seen) - end - 2 if end >= 0 else self._pending + len(chunk)
        self._tail = chunk[-3:]
        if self._pending > self._limit_bytes:
            raise too_large(200, "GET /api/shared-state/events", self._limit_bytes)
        return chunk


class GuardedStream(httpx.SyncByteStream):
    """A response's decoded bytes through a `SizeGuard`."""

    def __init__(self, response: httpx.Response, limit_bytes: int) -> None:
        self._response = response
        self._guard = SizeGuard(limit_bytes)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._response.iter_bytes():
            yield self._guard.check(chunk)


class AsyncGuardedStream(httpx.AsyncByteStream):
    """A response's decoded bytes through a `SizeGuard` (async)."""

    def __init__(self, response: httpx.Response, limit_bytes: int) -> None:
        self._response = response
        self._guard = SizeGuard(limit_bytes)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_bytes():
            yield self._guard.check(chunk)


def guarded(
    response: httpx.Response, stream: httpx.SyncByteStream | httpx.AsyncByteStream
) -> httpx.Response:
    """A response that reads `response`'s (already decoded) bytes through `stream`, for
    httpx-sse's `EventSource`."""
    content_type = response.headers.get("content-type", "text/event-stream")
    return httpx.Response(200, headers={"content-type": content_type}, stream=stream)
