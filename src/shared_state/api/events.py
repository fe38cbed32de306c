"""`GET /api/shared-state/events`: the live change feed as Server-Sent Events (contract §8).

Built on FastAPI's own SSE support (`fastapi.sse`). A stream sends a `retry:` field,
then a `snapshot` (or, resuming from `Last-Event-ID`, exactly the `changed` events it
missed, from the StateManager's change log), then one `changed` event per new version,
with a comment every `SHARED_STATE_EVENTS_HEARTBEAT_S` while nothing happens.

A stream subscribes to the bus *before* it reads the change log, and skips every
version it has already sent: an event published in between is in both, never in
neither. A client too slow for its bounded queue is dropped by the bus; its stream then
subscribes again and sends a fresh `snapshot` once the client has read what was already
on its way. When the bus closes (shutdown) the stream sends `: shutdown` and ends.

`router` is included by `create_app`; an application that mounts
`shared_state.api.router` mounts this one beside it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import EventSourceResponse, format_sse_event

from shared_state.api.deps import TOKEN_REQUIRED, RuntimeDep
from shared_state.api.responses import EDGE_REFUSALS, UNAUTHORIZED, json_content
from shared_state.api.routes import API_PREFIX
from shared_state.api.schemas import ErrorAnswer, ValidationErrorAnswer
from shared_state.domain.events import (
    ChangedEvent,
    changed_json,
    partial_state_json,
    snapshot_json,
    sources_json,
)
from shared_state.domain.models import SECTIONS, Section
from shared_state.errors import SubscriptionDropped, Unauthorized, UnknownSection
from shared_state.state.manager import StateManager

EVENTS_PATH: Final = f"{API_PREFIX}/events"
"""The one path that also takes the token as `?access_token=` (the edge checks it)."""

RETRY_MS: Final = 3000
"""The reconnection delay the stream asks EventSource clients for."""

_CURSOR = re.compile(r"[0-9]{1,18}")
"""A version a client may resume from; anything else starts the stream over."""

_bearer = HTTPBearer(auto_error=False, description="SHARED_STATE_API_TOKEN, when it is set")

router = APIRouter(
    prefix=API_PREFIX,
    tags=["shared-state"],
    responses=json_content({**UNAUTHORIZED, **EDGE_REFUSALS}),
)

_INVALID_QUERY = {
    "description": "An unknown section (`unknown_section`), or a query FastAPI refuses "
    "(its own list under `detail`)",
    "content": {
        "application/json": {
            "schema": {
                "anyOf": [
                    {"$ref": f"#/components/schemas/{ValidationErrorAnswer.__name__}"},
                    {"$ref": f"#/components/schemas/{ErrorAnswer.__name__}"},
                ]
            }
        }
    },
}


async def require_stream_token(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    access_token: Annotated[
        str | None,
        Query(description="The API token, for clients that cannot set headers (EventSource)."),
    ] = None,
) -> None:
    """The API token from `Authorization: Bearer` or `?access_token=`, compared in
    constant time. The edge checks it first; this keeps a router mounted without the
    edge just as closed."""
    expected = runtime.settings.api_token
    if expected is None:
        return
    given = credentials.credentials if credentials else access_token or ""
    if not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise Unauthorized(TOKEN_REQUIRED)


async def chosen_sections(
    sections: Annotated[
        str | None,
        Query(
            description="Comma-separated sections to follow: "
            + ", ".join(SECTIONS)
            + ". Default: all.",
            max_length=200,
        ),
    ] = None,
) -> frozenset[Section] | None:
    """`?sections=a,b` as a set; an unknown name is a 422 `unknown_section`."""
    if sections is None:
        return None
    chosen: set[Section] = set()
    for name in (part.strip() for part in sections.split(",")):
        section = next((known for known in SECTIONS if known == name), None)
        if section is None:
            raise UnknownSection(
                f"Unknown section {name[:40]!r} in 'sections'; known: {', '.join(SECTIONS)}."
            )
        chosen.add(section)
    return frozenset(chosen)


@router.get(
    "/events",
    # The answer is FastAPI's `EventSourceResponse` over events encoded once for every
    # stream (not `response_class=`, which would encode each event once per stream).
    response_class=Response,
    summary="Live changes (Server-Sent Events): a snapshot, then one event per version",
    dependencies=[Depends(require_stream_token)],
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`retry:`, a `snapshot` (or the missed `changed` events), then "
            "one `changed` event per version; comments while idle",
        },
        422: _INVALID_QUERY,
    },
)
async def stream_events(
    runtime: RuntimeDep,
    sections: Annotated[frozenset[Section] | None, Depends(chosen_sections)],
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id_query: Annotated[
        str | None, Query(alias="lastEventId", description="The Last-Event-ID to resume from.")
    ] = None,
) -> EventSourceResponse:
    # The events are encoded once (`format_sse_event`) and the same bytes go to every
    # stream: with a thousand streams open, what one change costs is the writes.
    cursor = parse_cursor(last_event_id if last_event_id is not None else last_event_id_query)
    events = stream(
        runtime.manager,
        cursor=cursor,
        sections=sections,
        heartbeat_s=runtime.settings.events_heartbeat_s,
    )
    return EventSourceResponse(events, headers=_STREAM_HEADERS)


_STREAM_HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""No cache, and no buffering in an nginx in front (FastAPI's own SSE headers)."""


def parse_cursor(value: str | None) -> int | None:
    """The version in `Last-Event-ID`, or None when absent or not a whole number."""
    if value is None or not _CURSOR.fullmatch(value.strip()):
        return None
    return int(value)


async def stream(
    manager: StateManager,
    *,
    cursor: int | None,
    sections: Collection[Section] | None,
    heartbeat_s: float,
) -> AsyncIterator[bytes]:
    """The events of one stream, encoded, as described in the module docstring."""
    yield _RETRY
    subscription = manager.subscribe()
    try:
        replay = manager.changes_since(cursor) if cursor is not None else None
        if replay is None:
            sent = manager.state.version
            yield snapshot_message(manager, sections)
        else:
            assert cursor is not None
            sent = cursor
            for missed in replay:
                sent = missed.version
                message = changed_message(missed, sections)
                if message is not None:
                    yield message
        while True:
            try:
                async with asyncio.timeout(heartbeat_s):
                    event = await anext(subscription)
            except TimeoutError:
                yield _HEARTBEAT
                continue
            except StopAsyncIteration:
                yield _SHUTDOWN
                return
            except SubscriptionDropped:
                # The bus let go of this slow client rather than hold its events: start
                # it over from the state as it is now.
                subscription = manager.subscribe()
                sent = manager.state.version
                yield snapshot_message(manager, sections)
                continue
            if not isinstance(event, ChangedEvent):
                # A replica that missed versions (contract §11) starts its streams over.
                if event.version > sent:
                    sent = manager.state.version
                    yield snapshot_message(manager, sections)
                continue
            if event.version <= sent:
                continue  # already sent, from the change log or a snapshot
            sent = event.version
            message = changed_message(event, sections)
            if message is not None:
                yield message
    finally:
        subscription.close()


def snapshot_message(manager: StateManager, sections: Collection[Section] | None) -> bytes:
    """A `snapshot` of the state as it is now (only `sections`, when given)."""
    state = manager.state
    if sections is None:
        state_json = manager.render("state")
    else:
        chosen = {
            section: _section_json(manager, section) for section in SECTIONS if section in sections
        }
        state_json = partial_state_json(state, chosen)
    data = snapshot_json(state.version, datetime.now(UTC), state_json)
    return _message("snapshot", state.version, data)


def _section_json(manager: StateManager, section: Section) -> bytes:
    if section == "sources":
        return sources_json(manager.state.sources)
    return manager.render(section)


def changed_message(event: ChangedEvent, sections: Collection[Section] | None) -> bytes | None:
    """The `changed` event (only the changes of `sections`), or None when it changed
    none of them. Built once per event and choice of sections, whatever the number of
    streams that send it."""
    key = (event.version, frozenset(sections) if sections is not None else None)
    cached = _recent_messages.get(key)
    if cached is not None and cached[0] is event:
        return cached[1]
    data = changed_json(event, sections)
    message = None if data is None else _message("changed", event.version, data)
    _recent_messages[key] = (event, message)
    while len(_recent_messages) > _RECENT_MESSAGES:
        del _recent_messages[next(iter(_recent_messages))]
    return message


_RECENT_MESSAGES: Final = 64
_recent_messages: dict[
    tuple[int, frozenset[Section] | None], tuple[ChangedEvent, bytes | None]
] = {}
"""The last messages built, by version and sections (the event itself is kept to tell
one manager's version 5 from another's, in a process with several)."""


def _message(kind: str, version: int, data: bytes) -> bytes:
    # JSON has no raw line breaks, so `data` is one `data:` line.
    return format_sse_event(data_str=data.decode(), event=kind, id=str(version))


_RETRY: Final = format_sse_event(retry=RETRY_MS)
_HEARTBEAT: Final = format_sse_event(comment="heartbeat")
_SHUTDOWN: Final = format_sse_event(comment="shutdown")
