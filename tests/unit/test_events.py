"""Change events (contract §8): which sections changed, item diffs, and the wire format."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from shared_state.domain.events import (
    ChangedEvent,
    Event,
    ItemChanges,
    SnapshotEvent,
    describe_changes,
    diff_items,
)
from shared_state.domain.models import (
    Item,
    LlmSettings,
    SharedState,
    SourceStatus,
    StateSettings,
    User,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)

BASE = SharedState(
    version=3,
    sync_timestamp=NOW,
    user=User(id=1, username="ada"),
    workspaces=[{"id": 1, "name": "Research"}],
    conversations=[{"id": "c-1", "title": "Plan"}],
    sources={
        "anythingllm": SourceStatus(status="ok", last_success_at=NOW, last_attempt_at=NOW),
        "librechat": SourceStatus(status="ok", last_success_at=NOW, last_attempt_at=NOW),
    },
)
OK_LATER = SourceStatus(status="ok", last_success_at=LATER, last_attempt_at=LATER)
STALE = SourceStatus(status="stale", last_success_at=NOW, last_attempt_at=LATER, last_error="x")


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        pytest.param({}, set(), id="identical"),
        pytest.param({"version": 4, "sync_timestamp": LATER}, set(), id="bookkeeping-only"),
        pytest.param(
            {"sources": {"anythingllm": OK_LATER, "librechat": OK_LATER}},
            set(),
            id="source-timestamps-only",
        ),
        pytest.param(
            {"sources": {"anythingllm": BASE.sources["anythingllm"], "librechat": STALE}},
            {"sources"},
            id="source-status",
        ),
        pytest.param({"user": User(id=1, username="ada2")}, {"user"}, id="user"),
        pytest.param({"user": None}, {"user"}, id="user-gone"),
        pytest.param(
            {"settings": StateSettings(llm=LlmSettings(model="gpt-4o"))},
            {"settings"},
            id="settings",
        ),
        pytest.param({"workspaces": []}, {"workspaces"}, id="workspaces"),
        pytest.param({"conversations": []}, {"conversations"}, id="conversations"),
        pytest.param(
            {"workspaces": [], "conversations": [], "user": None},
            {"workspaces", "conversations", "user"},
            id="several",
        ),
    ],
)
def test_describe_changes_lists_only_changed_sections(
    update: dict[str, Any], expected: set[str]
) -> None:
    """Only sections whose data (or a source's status) differ are described."""
    new = BASE.model_copy(update=update)

    assert set(describe_changes(BASE, new)) == expected


def test_changed_user_and_settings_carry_their_new_value() -> None:
    """`user` and `settings` changes carry the new section as it is."""
    user = User(id=2, username="grace")
    settings = StateSettings(llm=LlmSettings(model="gpt-4o", temperature=0.0))
    new = BASE.model_copy(update={"user": user, "settings": settings})

    changes = describe_changes(BASE, new)

    assert changes == {"user": user, "settings": settings}


def test_changed_sources_carry_every_source_status() -> None:
    """A `sources` change carries the new status of every source, not only the changed one."""
    sources = {"anythingllm": OK_LATER, "librechat": STALE}
    new = BASE.model_copy(update={"sources": sources})

    assert describe_changes(BASE, new) == {"sources": sources}


def test_changed_lists_carry_item_changes() -> None:
    """`workspaces` and `conversations` changes carry what was added, updated and removed."""
    new = BASE.model_copy(
        update={
            "workspaces": [{"id": 1, "name": "Research v2"}],
            "conversations": [{"id": "c-2", "title": "New"}],
        }
    )

    changes = describe_changes(BASE, new)

    assert changes == {
        "workspaces": ItemChanges(updated=[{"id": 1, "name": "Research v2"}]),
        "conversations": ItemChanges(added=[{"id": "c-2", "title": "New"}], removed=["c-1"]),
    }


OLD_ITEMS: list[Item] = [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}, {"id": 3, "n": "c"}]


@pytest.mark.parametrize(
    ("old", "new", "added", "updated", "removed"),
    [
        pytest.param([], [], [], [], [], id="empty"),
        pytest.param(OLD_ITEMS, OLD_ITEMS, [], [], [], id="unchanged"),
        pytest.param(OLD_ITEMS, OLD_ITEMS[::-1], [], [], [], id="reordered"),
        pytest.param([], OLD_ITEMS, OLD_ITEMS, [], [], id="all-added"),
        pytest.param(OLD_ITEMS, [], [], [], [1, 2, 3], id="all-removed"),
        pytest.param(
            OLD_ITEMS,
            [{"id": 1, "n": "a"}, {"id": 2, "n": "B"}, {"id": 3, "n": "c"}],
            [],
            [{"id": 2, "n": "B"}],
            [],
            id="one-updated",
        ),
        pytest.param(
            OLD_ITEMS,
            [{"id": 1, "n": "a", "extra": True}, {"id": 2, "n": "b"}, {"id": 3, "n": "c"}],
            [],
            [{"id": 1, "n": "a", "extra": True}],
            [],
            id="field-added-is-update",
        ),
        pytest.param(
            OLD_ITEMS,
            [{"id": 4, "n": "d"}, {"id": 3, "n": "C"}, {"id": 5, "n": "e"}, {"id": 1, "n": "a"}],
            [{"id": 4, "n": "d"}, {"id": 5, "n": "e"}],
            [{"id": 3, "n": "C"}],
            [2],
            id="mixed-in-new-order",
        ),
        pytest.param(
            [{"id": "c-1"}, {"id": "c-2"}],
            [{"id": "c-2"}, {"id": "c-3"}],
            [{"id": "c-3"}],
            [],
            ["c-1"],
            id="string-ids",
        ),
    ],
)
def test_diff_items_matches_items_by_id(
    old: list[Item],
    new: list[Item],
    added: list[Item],
    updated: list[Item],
    removed: list[str | int],
) -> None:
    """Items are matched by `id`: new ids are added, changed ones updated, missing ids removed."""
    assert diff_items(old, new) == ItemChanges(added=added, updated=updated, removed=removed)


def test_changed_event_json_is_camel_case() -> None:
    """A `changed` event serialises with `previousVersion` and camelCase inside its sections."""
    new = BASE.model_copy(
        update={
            "settings": StateSettings(llm=LlmSettings(max_tokens=8000)),
            "workspaces": [],
            "sources": {"anythingllm": OK_LATER, "librechat": STALE},
        }
    )
    event = ChangedEvent(
        version=4, previous_version=3, timestamp=LATER, changes=describe_changes(BASE, new)
    )

    payload = json.loads(event.model_dump_json(by_alias=True))

    assert set(payload) == {"type", "version", "previousVersion", "timestamp", "changes"}
    assert payload["type"] == "changed"
    assert payload["version"] == 4
    assert payload["previousVersion"] == 3
    assert payload["timestamp"] == "2026-11-21T12:00:30.000Z"
    assert set(payload["changes"]) == {"settings", "workspaces", "sources"}
    assert payload["changes"]["settings"]["llm"]["maxTokens"] == 8000
    assert payload["changes"]["settings"]["vectorDb"] == {"provider": "lancedb", "settings": {}}
    assert payload["changes"]["workspaces"] == {"added": [], "updated": [], "removed": [1]}
    assert payload["changes"]["sources"]["librechat"] == {
        "status": "stale",
        "lastSuccessAt": "2026-11-21T12:00:00.000Z",
        "lastAttemptAt": "2026-11-21T12:00:30.000Z",
        "lastError": "x",
    }


def test_snapshot_event_json_carries_the_whole_state() -> None:
    """A `snapshot` event serialises the whole state with its camelCase keys."""
    event = SnapshotEvent(version=3, timestamp=NOW, state=BASE)

    payload = json.loads(event.model_dump_json(by_alias=True))

    assert payload["type"] == "snapshot"
    assert payload["version"] == 3
    assert payload["state"] == json.loads(BASE.model_dump_json(by_alias=True))
    assert payload["state"]["syncTimestamp"] == "2026-11-21T12:00:00.000Z"


@pytest.mark.parametrize(
    ("payload", "expected_type"),
    [
        pytest.param(
            {
                "type": "changed",
                "version": 2,
                "previousVersion": 1,
                "timestamp": NOW,
                "changes": {},
            },
            ChangedEvent,
            id="changed",
        ),
        pytest.param(
            {"type": "snapshot", "version": 2, "timestamp": NOW, "state": {}},
            SnapshotEvent,
            id="snapshot",
        ),
    ],
)
def test_event_type_literal_selects_the_event_class(
    payload: dict[str, Any], expected_type: type[ChangedEvent | SnapshotEvent]
) -> None:
    """The `type` field discriminates the events, as the SSE event name does."""
    event = TypeAdapter(Event).validate_python(payload)

    assert type(event) is expected_type
    assert event.version == 2
