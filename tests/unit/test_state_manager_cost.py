"""What a StateManager sync costs and what it renders: the same snapshot objects move
only the bookkeeping (no new version, the lists kept), `render()` and `render_stored()`
give the JSON pydantic would, and a restore with no data survived is not ready."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared_state.domain.items import ItemList
from shared_state.domain.models import LlmValues, UiValues, UpstreamSnapshot
from shared_state.errors import UpstreamUnavailable
from shared_state.state.manager import StateManager, render_stored
from shared_state.state.snapshot import SnapshotStore, SourceRecord, StoredState
from tests.fakes import make_snapshot

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)
LATEST = NOW + timedelta(seconds=60)


def librechat(**overrides: Any) -> UpstreamSnapshot:
    """A LibreChat-like snapshot with a few conversations, one of them with odd text."""
    fields: dict[str, Any] = {
        "user": {"id": "665f", "username": "ada", "email": "ada@example.com"},
        "llm": LlmValues(provider="anthropic", model="claude-3-5", temperature=0.2),
        "ui": UiValues(theme="dark"),
        "conversations": ItemList.from_items(
            [
                {"id": "c-2", "title": 'Café ☕ "quoted" \\ back', "n": 2},
                {"id": "c-1", "title": "Quarterly plan", "tags": ["a", None, 1.5]},
                {"id": 3, "title": "integer id", "nested": {"deep": [{}]}},
            ]
        ),
    }
    fields.update(overrides)
    return UpstreamSnapshot(**fields)


@pytest.fixture
async def synced() -> StateManager:
    """A manager after one sync in which both upstreams answered, at NOW."""
    manager = StateManager(configured=["anythingllm", "librechat"])
    await manager.record_sync({"anythingllm": make_snapshot(), "librechat": librechat()}, NOW)
    return manager


# --- syncs that bring nothing new -------------------------------------------------------


async def test_a_sync_with_the_same_snapshots_keeps_the_version_and_the_lists() -> None:
    """The very same snapshot objects again: no new version, no event, the state's
    lists are the same objects; only the timestamps move."""
    manager = StateManager(configured=["anythingllm", "librechat"])
    a, lc = make_snapshot(), librechat()
    await manager.record_sync({"anythingllm": a, "librechat": lc}, NOW)
    before = manager.state

    commit = await manager.record_sync({"anythingllm": a, "librechat": lc}, LATER)

    assert commit.event is None
    assert commit.changed == []
    assert manager.state.version == before.version
    assert manager.state.conversations is before.conversations
    assert manager.state.workspaces is before.workspaces
    assert manager.state.user is before.user
    assert manager.state.sync_timestamp == LATER
    assert manager.state.sources["librechat"].last_success_at == LATER


async def test_an_equal_but_new_snapshot_is_merged_yet_bumps_nothing() -> None:
    """A new snapshot object with the same data is merged, and finds no change."""
    manager = StateManager(configured=["librechat"])
    await manager.record_sync({"librechat": librechat()}, NOW)
    version = manager.state.version

    commit = await manager.record_sync({"librechat": librechat()}, LATER)

    assert commit.event is None
    assert manager.state.version == version
    assert manager.state.conversations == librechat().conversations


async def test_a_new_snapshot_with_a_change_bumps_the_version() -> None:
    """Only a source that brought something new makes a new version, naming the section."""
    manager = StateManager(configured=["anythingllm", "librechat"])
    a = make_snapshot()
    await manager.record_sync({"anythingllm": a, "librechat": librechat()}, NOW)
    version = manager.state.version
    changed = librechat(conversations=[{"id": "c-9", "title": "New"}])

    commit = await manager.record_sync({"anythingllm": a, "librechat": changed}, LATER)

    assert manager.state.version == version + 1
    assert commit.changed == ["conversations"]
    assert manager.state.conversations == [{"id": "c-9", "title": "New"}]


async def test_a_failure_after_the_same_snapshots_moves_the_version_for_the_status() -> None:
    """With no new data, a source going stale is still a change (its status)."""
    manager = StateManager(configured=["anythingllm", "librechat"])
    a, lc = make_snapshot(), librechat()
    await manager.record_sync({"anythingllm": a, "librechat": lc}, NOW)
    before = manager.state

    commit = await manager.record_sync(
        {"anythingllm": a, "librechat": UpstreamUnavailable("librechat", "down")}, LATER
    )

    assert commit.changed == ["sources"]
    assert manager.state.version == before.version + 1
    assert manager.state.conversations is before.conversations
    assert manager.state.sources["librechat"].status == "stale"


# --- rendering --------------------------------------------------------------------------


async def test_the_rendered_state_is_the_json_pydantic_gives(synced: StateManager) -> None:
    """`render()` holds the same JSON as dumping the state model with its aliases."""
    expected = json.loads(synced.state.model_dump_json(by_alias=True))

    assert json.loads(synced.render()) == expected
    assert json.loads(synced.render("conversations")) == expected["conversations"]
    assert json.loads(synced.render("workspaces")) == expected["workspaces"]
    assert json.loads(synced.render("user")) == expected["user"]
    assert json.loads(synced.render("settings")) == expected["settings"]


async def test_the_rendered_state_follows_each_new_version(synced: StateManager) -> None:
    """After a change (and after a bookkeeping-only sync), the rendering is the new state."""
    await synced.record_sync(
        {"librechat": librechat(conversations=[{"id": "c-9", "title": "New"}])}, LATER
    )
    after_change = synced.render()
    await synced.record_sync({"librechat": UpstreamUnavailable("librechat", "down")}, LATEST)

    rendered = json.loads(synced.render())

    assert json.loads(after_change)["conversations"] == [{"id": "c-9", "title": "New"}]
    assert rendered == json.loads(synced.state.model_dump_json(by_alias=True))
    assert rendered["sources"]["librechat"]["status"] == "stale"


async def test_a_fresh_manager_renders_its_empty_state() -> None:
    """Before any sync the rendering is still the model's JSON (nulls, empty lists)."""
    manager = StateManager(configured=["anythingllm"])

    rendered = json.loads(manager.render())

    assert rendered == json.loads(manager.state.model_dump_json(by_alias=True))
    assert rendered["syncTimestamp"] is None
    assert rendered["conversations"] == []


async def test_render_item_gives_one_items_bytes(synced: StateManager) -> None:
    """`render_item` is the item's JSON from the list, found by id or a workspace's slug."""
    assert json.loads(synced.render_item("conversations", "3")) == {
        "id": 3,
        "title": "integer id",
        "nested": {"deep": [{}]},
    }
    assert json.loads(synced.render_item("workspaces", "research")) == {
        "id": 1,
        "name": "Research",
        "slug": "research",
    }


def stored_state() -> StoredState:
    return StoredState(
        version=4,
        sync_timestamp=NOW,
        sources={
            "anythingllm": SourceRecord(
                status={"status": "ok", "last_success_at": NOW}, data=make_snapshot()
            ),
            "librechat": SourceRecord(status={"status": "ok"}, data=librechat()),
        },
    )


def test_render_stored_loads_back_as_the_same_stored_state() -> None:
    """The spliced snapshot JSON validates back into an equal `StoredState`."""
    stored = stored_state()

    loaded = StoredState.model_validate_json(render_stored(stored))

    assert loaded == stored
    assert json.loads(render_stored(stored)) == json.loads(stored.model_dump_json(by_alias=True))


def test_render_stored_handles_sources_without_data_or_lists() -> None:
    """A source with no data, and data with no lists, render as `null` and load back."""
    stored = StoredState(
        version=1,
        sources={
            "anythingllm": SourceRecord(status={"status": "pending"}),
            "librechat": SourceRecord(status={"status": "ok"}, data=UpstreamSnapshot()),
        },
    )

    raw = render_stored(stored)

    assert StoredState.model_validate_json(raw) == stored
    document = json.loads(raw)
    assert document["sources"]["anythingllm"]["data"] is None
    assert document["sources"]["librechat"]["data"]["conversations"] is None


def test_render_stored_of_no_sources_loads_back() -> None:
    """A version-only state (no sources) is valid JSON that loads back."""
    stored = StoredState(version=9, sources={})

    assert StoredState.model_validate_json(render_stored(stored)) == stored


async def test_the_saved_snapshot_file_is_render_stored(tmp_path: Path) -> None:
    """What a sync saves loads back into a manager that renders the same lists."""
    path = tmp_path / "state.json"
    manager = StateManager(configured=["anythingllm", "librechat"], store=SnapshotStore(path))
    await manager.record_sync({"anythingllm": make_snapshot(), "librechat": librechat()}, NOW)

    restored = StateManager(configured=["anythingllm", "librechat"], store=SnapshotStore(path))
    assert restored.restore() is True

    assert restored.render("conversations") == manager.render("conversations")
    assert restored.render("workspaces") == manager.render("workspaces")


# --- restore ----------------------------------------------------------------------------


async def test_a_restore_with_only_the_version_is_not_ready(tmp_path: Path) -> None:
    """A snapshot file lost but its version kept: the version continues, nothing is
    restored, and the manager is not ready until its first sync."""
    path = tmp_path / "state.json"
    path.with_name("state.json.version").write_text("41\n")
    manager = StateManager(configured=["anythingllm", "librechat"], store=SnapshotStore(path))

    restored = manager.restore()

    assert restored is False
    assert manager.is_ready is False
    assert manager.state.version == 42
    await manager.record_sync({"librechat": librechat()}, NOW)
    assert manager.is_ready is True
    assert manager.state.version == 43


async def test_a_restore_with_data_is_ready(tmp_path: Path) -> None:
    """A snapshot file with data makes the manager ready before any sync."""
    path = tmp_path / "state.json"
    await SnapshotStore(path).save(4, render_stored(stored_state()))
    manager = StateManager(configured=["anythingllm", "librechat"], store=SnapshotStore(path))

    assert manager.restore() is True
    assert manager.is_ready is True
    assert manager.state.conversations == librechat().conversations


async def test_a_restore_whose_data_is_all_from_disabled_sources_is_not_ready(
    tmp_path: Path,
) -> None:
    """Data only from a source no longer configured serves nothing: not ready."""
    path = tmp_path / "state.json"
    stored = stored_state()
    stored.sources.pop("anythingllm")
    await SnapshotStore(path).save(5, render_stored(stored))
    manager = StateManager(configured=["anythingllm"], store=SnapshotStore(path))

    manager.restore()

    assert manager.state.conversations == []
    assert manager.is_ready is False
