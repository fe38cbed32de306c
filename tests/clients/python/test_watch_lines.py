"""`shared-state watch`'s lines: one readable line per event, or its JSON."""

from __future__ import annotations

import json
from typing import Any

from httpx_sse import ServerSentEvent
from pydantic import TypeAdapter

from shared_state.cli_client import EventDescriber
from shared_state.client import ClientEvent
from shared_state.client._core import ClientCore
from shared_state.client.events import EventStream
from tests.clients.python.wire import BASE, SETTINGS, SOURCES, changed, snapshot


def _event(frame: bytes) -> ClientEvent:
    """A frame as the client hands it out (typed changes)."""
    lines = dict(line.split(": ", 1) for line in frame.decode().strip().split("\n"))
    stream = EventStream(
        ClientCore(BASE, None),
        None,
        None,
        reconnect_delay_s=1,
        max_reconnect_delay_s=1,
        idle_timeout_s=1,
        timeout_s=1,
    )
    event = stream.accept(ServerSentEvent(event=lines["event"], data=lines["data"], id=lines["id"]))
    assert event is not None
    return event


def _settings(**llm: Any) -> dict[str, Any]:
    return {**SETTINGS, "llm": {**SETTINGS["llm"], **llm}}


def test_a_snapshot_line_counts_the_state() -> None:
    line = EventDescriber(None).line(_event(snapshot(41)))
    assert line == (
        "v41 snapshot user=ada · llm openai/gpt-4o · ui system/medium · workspaces 1 · "
        "conversations 1 · sources anythingllm=ok librechat=ok"
    )


def test_a_snapshot_line_shows_only_the_sections_followed() -> None:
    line = EventDescriber(["settings"]).line(_event(snapshot(41)))
    assert line == "v41 snapshot llm openai/gpt-4o · ui system/medium"


def test_a_change_line_names_what_changed() -> None:
    describer = EventDescriber(None)
    describer.line(_event(snapshot(41)))
    changes = {
        "settings": _settings(model="gpt-4o-mini", maxTokens=8192),
        "conversations": {"added": [{"id": "c-9"}], "updated": [], "removed": ["c-1", "c-2"]},
    }
    line = describer.line(_event(changed(42, changes)))
    assert line == (
        "v42 changed settings.llm model=gpt-4o-mini maxTokens=8192 · conversations +1 ~0 -2"
    )


def test_a_source_change_shows_the_source_that_changed() -> None:
    describer = EventDescriber(None)
    describer.line(_event(snapshot(41)))
    sources = {**SOURCES, "librechat": {**SOURCES["librechat"], "status": "stale"}}
    line = describer.line(_event(changed(42, {"sources": sources, "user": None})))
    assert line == "v42 changed sources librechat=stale · user=none"


def test_values_are_made_safe_for_a_terminal() -> None:
    """An upstream's control characters never reach the terminal; long values are cut."""
    describer = EventDescriber(None)
    describer.line(_event(snapshot(41)))
    line = describer.line(
        _event(changed(42, {"settings": _settings(model="evil\x1b[2Jname " + "x" * 80)}))
    )
    assert "\x1b" not in line
    assert line.startswith('v42 changed settings.llm model="evil?[2Jname xxx')
    assert line.endswith('…"')


def test_json_lines_are_the_event_and_a_snapshot_only_its_sections() -> None:
    describer = EventDescriber(["settings"])
    document = json.loads(describer.json(_event(snapshot(41))))
    assert set(document["state"]) == {"version", "syncTimestamp", "settings"}
    assert document["state"]["settings"] == SETTINGS
    frame = changed(42, {"settings": SETTINGS})
    data = TypeAdapter(dict[str, Any]).validate_json(
        frame.decode().split("data: ")[1].split("\n")[0]
    )
    assert json.loads(describer.json(_event(frame))) == data
