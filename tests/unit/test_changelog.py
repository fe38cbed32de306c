"""The change log: which `changed` events a resuming stream is sent, or None for a snapshot."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared_state.domain.events import ChangedEvent, changed_json, diff_items, snapshot_json
from shared_state.domain.models import StateSettings
from shared_state.state.changelog import ChangeLog, InMemoryChangeLog

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def changed(version: int) -> ChangedEvent:
    return ChangedEvent(version=version, previous_version=version - 1, timestamp=NOW, changes={})


def filled(log: ChangeLog, last: int) -> ChangeLog:
    for version in range(log.version + 1, last + 1):
        log.append(changed(version))
    return log


def versions(events: list[ChangedEvent] | None) -> list[int] | None:
    return None if events is None else [event.version for event in events]


def test_since_gives_exactly_the_versions_after_the_cursor() -> None:
    """Every version after N, in order, while all are held."""
    log = filled(InMemoryChangeLog(10), 7)
    assert versions(log.since(4)) == [5, 6, 7]
    assert versions(log.since(0)) == [1, 2, 3, 4, 5, 6, 7]
    assert log.version == 7


def test_the_current_version_has_nothing_to_replay() -> None:
    log = filled(InMemoryChangeLog(10), 3)
    assert log.since(3) == []
    assert InMemoryChangeLog(10).since(0) == []


def test_a_cursor_ahead_of_the_current_version_is_none() -> None:
    log = filled(InMemoryChangeLog(10), 3)
    assert log.since(4) is None
    assert log.since(1_000_000) is None


def test_only_the_last_max_versions_are_held() -> None:
    """With 1,000 versions kept, a cursor 1,000 behind still replays; 1,001 behind does not."""
    log = filled(InMemoryChangeLog(1000), 1500)
    assert versions(log.since(500)) == list(range(501, 1501))
    assert log.since(499) is None
    assert log.since(-1) is None


def test_reset_forgets_what_came_before() -> None:
    """After a restore at version 41, only 41 itself is current; older cursors get a snapshot."""
    log = filled(InMemoryChangeLog(10), 5)
    log.reset(41)
    assert log.version == 41
    assert log.since(41) == []
    assert log.since(5) is None
    log.append(changed(42))
    assert versions(log.since(41)) == [42]
    assert log.since(40) is None


def test_an_event_that_skips_versions_starts_the_log_over() -> None:
    """A gap is never replayed as if it were whole."""
    log = filled(InMemoryChangeLog(10), 3)
    log.append(ChangedEvent(version=9, previous_version=8, timestamp=NOW, changes={}))
    assert log.version == 9
    assert log.since(3) is None
    assert versions(log.since(8)) == [9]


def test_zero_versions_kept_replays_nothing_but_knows_the_version() -> None:
    log = filled(InMemoryChangeLog(0), 3)
    assert log.version == 3
    assert log.since(3) == []
    assert log.since(2) is None


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        InMemoryChangeLog(-1)


# --- the events' JSON ------------------------------------------------------------------


def list_event() -> ChangedEvent:
    old = [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]
    new = [{"id": "b", "title": "B2"}, {"id": "c", "title": "C"}]
    return ChangedEvent(
        version=8,
        previous_version=7,
        timestamp=NOW,
        changes={
            "settings": StateSettings(),
            "conversations": diff_items(old, new),
        },
    )


def test_changed_json_is_the_events_own_json() -> None:
    """The spliced JSON says what pydantic's serialisation of the event says."""
    event = list_event()
    data = changed_json(event)
    assert data is not None
    assert json.loads(data) == json.loads(event.model_dump_json(by_alias=True))
    assert json.loads(data)["changes"]["conversations"] == {
        "added": [{"id": "c", "title": "C"}],
        "updated": [{"id": "b", "title": "B2"}],
        "removed": ["a"],
    }


def test_changed_json_keeps_only_the_chosen_sections() -> None:
    event = list_event()
    only = changed_json(event, {"conversations", "user"})
    assert only is not None
    assert list(json.loads(only)["changes"]) == ["conversations"]
    assert json.loads(only)["previousVersion"] == 7
    assert changed_json(event, {"user", "sources"}) is None


def test_snapshot_json_wraps_the_rendered_state() -> None:
    data = snapshot_json(3, NOW, b'{"version":3}')
    assert json.loads(data) == {
        "type": "snapshot",
        "version": 3,
        "timestamp": "2026-11-21T12:00:00.000Z",
        "state": {"version": 3},
    }
