"""`events()`: the §8 stream as typed events, resumed after a drop with `Last-Event-ID`,
with no event lost or repeated (MockTransport streams)."""

from __future__ import annotations

import json
from contextlib import aclosing
from itertools import islice
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
from shared_state.client._core import ClientCore
from shared_state.client.events import EventStream
from shared_state.domain.events import ChangedEvent, ItemChanges, SnapshotEvent
from shared_state.domain.models import SourceStatus, StateSettings, User
from tests.clients.python.wire import (
    API,
    BASE,
    SETTINGS,
    SOURCES,
    TOKEN,
    Recorder,
    Stream,
    changed,
    event_stream,
    json_answer,
    snapshot,
)

FAST: ClientOptions = {"reconnect_delay_s": 0.001, "max_reconnect_delay_s": 0.002}


def _versions(events: list[ClientEvent]) -> list[tuple[str, int]]:
    return [(event.type, event.version) for event in events]


def _read(service: Recorder, count: int, **kwargs: Any) -> list[ClientEvent]:
    with SharedStateClient(BASE, TOKEN, transport=service.transport, **FAST) as client:
        return list(islice(client.events(**kwargs), count))


def test_a_stream_gives_a_snapshot_then_typed_changes() -> None:
    """The snapshot holds the state; a change holds the types the in-process bus uses."""
    changes = {
        "settings": {**SETTINGS, "ui": {"theme": "dark", "fontSize": "medium"}},
        "conversations": {
            "added": [{"id": "c-2", "title": "New"}],
            "updated": [],
            "removed": ["c-1"],
        },
        "user": {"id": 1, "username": "ada"},
        "sources": {**SOURCES, "librechat": {**SOURCES["librechat"], "status": "stale"}},
    }
    service = Recorder(event_stream(snapshot(7), b": heartbeat\n\n", changed(8, changes)))
    first, second = _read(service, 2)
    assert isinstance(first, SnapshotEvent)
    assert (first.version, first.state.version) == (7, 7)
    assert first.state.settings.llm.model == "gpt-4o"
    assert isinstance(second, ChangedEvent)
    assert (second.version, second.previous_version) == (8, 7)
    settings = second.changes["settings"]
    assert isinstance(settings, StateSettings)
    assert settings.ui.theme == "dark"
    conversations = second.changes["conversations"]
    assert isinstance(conversations, ItemChanges)
    assert ([c["id"] for c in conversations.added], conversations.removed) == (["c-2"], ["c-1"])
    assert isinstance(second.changes["user"], User)
    assert isinstance(second.changes["sources"]["librechat"], SourceStatus)
    assert second.changes["sources"]["librechat"].status == "stale"
    request = service.requests[0]
    assert str(request.url) == f"{API}/events"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "last-event-id" not in request.headers


def test_typed_events_dump_to_the_json_the_service_sent() -> None:
    """`model_dump_json(by_alias=True)` gives back the `data:` line (what `watch --json`
    prints)."""
    changes = {"conversations": {"added": [{"id": "c-2"}], "updated": [], "removed": []}}
    frame = changed(8, changes)
    service = Recorder(event_stream(frame))
    (event,) = _read(service, 1)
    data = frame.decode().split("data: ")[1].split("\n")[0]
    assert json.loads(event.model_dump_json(by_alias=True)) == json.loads(data)


def test_sections_and_a_cursor_go_in_the_request() -> None:
    service = Recorder(event_stream(changed(43)))
    (event,) = _read(service, 1, sections=["settings", "sources"], last_event_id=42)
    assert event.version == 43
    request = service.requests[0]
    assert request.url.params["sections"] == "settings,sources"
    assert request.headers["last-event-id"] == "42"


def test_sections_may_be_one_comma_separated_string() -> None:
    service = Recorder(event_stream(changed(43)))
    _read(service, 1, sections="settings,sources")
    assert service.requests[0].url.params["sections"] == "settings,sources"


def test_after_a_drop_it_resumes_from_the_last_event_without_loss_or_repeat() -> None:
    """The connection breaks after v8; the next one asks from 8. A repeat of v8 that the
    service sends is dropped, so every version arrives exactly once."""
    service = Recorder(
        event_stream(snapshot(7), changed(8), httpx.ReadError("connection reset")),
        event_stream(changed(8), changed(9), changed(10)),
    )
    events = _read(service, 4)
    assert _versions(events) == [("snapshot", 7), ("changed", 8), ("changed", 9), ("changed", 10)]
    assert "last-event-id" not in service.requests[0].headers
    assert service.requests[1].headers["last-event-id"] == "8"


def test_a_stream_that_ends_is_opened_again_from_its_cursor() -> None:
    """The service's shutdown ends a stream with a comment; the client comes back."""
    service = Recorder(
        event_stream(snapshot(7), b": shutdown\n\n"),
        httpx.ConnectError("refused"),
        json_answer({"detail": "Starting.", "code": "unavailable"}, 503),
        event_stream(changed(8)),
    )
    events = _read(service, 2)
    assert _versions(events) == [("snapshot", 7), ("changed", 8)]
    assert [r.headers.get("last-event-id") for r in service.requests] == [None, "7", "7", "7"]


def test_a_snapshot_after_a_reconnect_starts_over() -> None:
    """A service that restarted (its version starting over) sends a snapshot: it is given,
    and the cursor follows it."""
    service = Recorder(
        event_stream(snapshot(40), httpx.RemoteProtocolError("peer closed")),
        event_stream(snapshot(3), changed(4)),
        httpx.ReadError("again"),
        event_stream(changed(5)),
    )
    events = _read(service, 4)
    assert _versions(events) == [("snapshot", 40), ("snapshot", 3), ("changed", 4), ("changed", 5)]
    assert service.requests[3].headers["last-event-id"] == "4"


def test_an_error_answer_that_will_not_pass_is_raised() -> None:
    """401 (a wrong token) or 422 (an unknown section) would fail again: raised."""
    body = {"detail": "Unknown section 'nope' in 'sections'.", "code": "unknown_section"}
    service = Recorder(json_answer(body, 422))
    with pytest.raises(SharedStateClientError) as caught:
        _read(service, 1, sections=["nope"])
    assert (caught.value.status, caught.value.code) == (422, "unknown_section")
    assert len(service.requests) == 1


def test_an_answer_that_is_not_an_event_stream_is_raised() -> None:
    page = httpx.Response(200, text="<html>login</html>", headers={"content-type": "text/html"})
    with pytest.raises(SharedStateClientError) as caught:
        _read(Recorder(page), 1)
    assert caught.value.code == "bad_response"


def test_an_event_that_is_not_one_is_raised() -> None:
    service = Recorder(event_stream(b'event: changed\ndata: {"type": "changed"}\nid: 3\n\n'))
    with pytest.raises(SharedStateClientError) as caught:
        _read(service, 1)
    assert caught.value.code == "bad_response"


def test_an_endless_line_is_cut_off_at_the_limit() -> None:
    """Bytes without an event's end are bounded before the SSE decoder buffers them."""
    flood = [b"data: " + b"x" * 600] + [b"x" * 600] * 10
    service = Recorder(event_stream(snapshot(7), *flood))
    with SharedStateClient(BASE, transport=service.transport, max_answer_bytes=5000) as client:
        events = client.events()
        assert next(events).version == 7
        with pytest.raises(SharedStateClientError) as caught:
            next(events)
    assert caught.value.code == "answer_too_large"


def test_events_split_across_chunks_are_put_together() -> None:
    frame = changed(8)
    parts = [frame[i : i + 7] for i in range(0, len(frame), 7)]
    service = Recorder(event_stream(snapshot(7)[:-1], b"\r\n", *parts))
    assert _versions(_read(service, 2)) == [("snapshot", 7), ("changed", 8)]


def test_breaking_out_closes_the_connection() -> None:
    body = Stream(b"retry: 3000\n\n", snapshot(7), changed(8))
    headers = {"content-type": "text/event-stream"}
    service = Recorder(httpx.Response(200, headers=headers, stream=body))
    with SharedStateClient(BASE, transport=service.transport) as client:
        events = client.events()
        assert next(events).version == 7
        assert not body.closed
        events.close()
        assert body.closed


def test_the_back_off_doubles_with_jitter_up_to_the_limit() -> None:
    stream = EventStream(
        ClientCore(BASE, None),
        None,
        None,
        reconnect_delay_s=1.0,
        max_reconnect_delay_s=5.0,
        idle_timeout_s=45.0,
        timeout_s=10.0,
    )
    delays = [stream.dropped("dropped") for _ in range(6)]
    for delay, ceiling in zip(delays, [1, 2, 4, 5, 5, 5], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    stream.opened(200, httpx.Headers({"content-type": "text/event-stream"}), b"")
    assert stream.dropped("dropped") <= 1.0


async def test_the_async_client_resumes_alike() -> None:
    service = Recorder(
        event_stream(snapshot(7), changed(8), httpx.ReadError("connection reset")),
        event_stream(changed(8), changed(9)),
    )
    async with AsyncSharedStateClient(BASE, transport=service.transport, **FAST) as client:
        got: list[ClientEvent] = []
        async with aclosing(client.events(sections=["settings"])) as events:
            async for event in events:
                got.append(event)
                if len(got) == 3:
                    break
    assert _versions(got) == [("snapshot", 7), ("changed", 8), ("changed", 9)]
    assert service.requests[1].headers["last-event-id"] == "8"
    assert service.requests[1].url.params["sections"] == "settings"


async def test_closing_the_async_iterator_closes_the_connection_at_once() -> None:
    body = Stream(b"retry: 3000\n\n", snapshot(7), changed(8))
    headers = {"content-type": "text/event-stream"}
    service = Recorder(httpx.Response(200, headers=headers, stream=body))
    async with AsyncSharedStateClient(BASE, transport=service.transport) as client:
        events = client.events()
        assert (await anext(events)).version == 7
        assert not body.closed
        await events.aclose()
        assert body.closed


async def test_the_async_client_raises_a_lasting_error() -> None:
    service = Recorder(
        json_answer({"detail": "Missing or invalid API token.", "code": "unauthorized"}, 401)
    )
    async with AsyncSharedStateClient(BASE, transport=service.transport) as client:
        with pytest.raises(SharedStateClientError) as caught:
            async for _ in client.events():
                pass
    assert caught.value.code == "unauthorized"
