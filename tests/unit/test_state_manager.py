"""The StateManager: versions, change events, source statuses, rendering and lookups."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared_state.domain.events import ChangedEvent, ItemChanges, SnapshotEvent
from shared_state.domain.models import (
    LlmValues,
    SourceName,
    UiValues,
    UpstreamSnapshot,
)
from shared_state.errors import NotFound, UpstreamError, UpstreamUnavailable
from shared_state.state.bus import Event, Subscription
from shared_state.state.manager import ListSection, RenderTarget, StateManager
from tests.fakes import make_snapshot

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)
LATEST = NOW + timedelta(seconds=60)
TIMEOUT_S = 1.0  # a guard against hangs, never a wait for something to happen

Results = Mapping[SourceName, UpstreamSnapshot | UpstreamError]

WORKSPACES = [
    {"id": 1, "name": "Research", "slug": "research"},
    {"id": 2, "name": "Notes", "slug": "notes"},
]


def anythingllm(**overrides: Any) -> UpstreamSnapshot:
    """An AnythingLLM snapshot with two workspaces."""
    return make_snapshot(**{"workspaces": WORKSPACES, **overrides})


def librechat(**overrides: Any) -> UpstreamSnapshot:
    """A LibreChat-like snapshot: a user, LLM and UI settings and conversations."""
    fields: dict[str, Any] = {
        "user": {"id": "665f", "username": "ada", "email": "ada@example.com", "name": "Ada"},
        "llm": LlmValues(provider="anthropic", model="claude-3-5", temperature=0.2),
        "ui": UiValues(theme="dark", font_size="large"),
        "conversations": [{"id": "c-1", "title": "Quarterly plan"}],
    }
    fields.update(overrides)
    return UpstreamSnapshot(**fields)


def failure(source: SourceName, reason: str = "timeout") -> UpstreamError:
    return UpstreamUnavailable(source, reason)


BOTH_OK: Results = {"anythingllm": anythingllm(), "librechat": librechat()}


@pytest.fixture
def manager() -> StateManager:
    """A manager with both upstreams configured and nothing recorded yet."""
    return StateManager(configured=["anythingllm", "librechat"])


@pytest.fixture
async def synced(manager: StateManager) -> StateManager:
    """A manager after one sync in which both upstreams answered, at NOW."""
    await manager.record_sync(BOTH_OK, NOW)
    return manager


async def drain(subscription: Subscription, manager: StateManager) -> list[Event]:
    """Close the manager and return every event the subscription had."""
    manager.close()

    async def collect() -> list[Event]:
        return [event async for event in subscription]

    return await asyncio.wait_for(collect(), TIMEOUT_S)


def statuses(manager: StateManager) -> dict[str, str]:
    return {name: source.status for name, source in manager.state.sources.items()}


# --- statuses and readiness ----------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        pytest.param(
            ["anythingllm", "librechat"],
            {"anythingllm": "pending", "librechat": "pending"},
            id="both",
        ),
        pytest.param(
            ["anythingllm"], {"anythingllm": "pending", "librechat": "disabled"}, id="anythingllm"
        ),
        pytest.param(
            ["librechat"], {"anythingllm": "disabled", "librechat": "pending"}, id="librechat"
        ),
        pytest.param([], {"anythingllm": "disabled", "librechat": "disabled"}, id="none"),
    ],
)
def test_sources_are_pending_when_configured_and_disabled_otherwise(
    configured: list[SourceName], expected: dict[str, str]
) -> None:
    """Before any attempt a configured source is `pending` and an unconfigured one `disabled`."""
    manager = StateManager(configured=configured)

    assert statuses(manager) == expected


def test_new_manager_serves_the_default_state_at_version_zero(manager: StateManager) -> None:
    """Before any sync the state is the documented default at version 0, not ready."""
    payload = json.loads(manager.render())

    assert payload["version"] == 0
    assert payload["syncTimestamp"] is None
    assert payload["user"] is None
    assert payload["workspaces"] == []
    assert payload["conversations"] == []
    assert payload["settings"]["ui"] == {"theme": "system", "fontSize": "medium"}
    assert manager.is_ready is False


@pytest.mark.parametrize(
    "results",
    [
        pytest.param(BOTH_OK, id="success"),
        pytest.param(
            {"anythingllm": failure("anythingllm"), "librechat": failure("librechat")},
            id="failure",
        ),
    ],
)
async def test_manager_is_ready_after_the_first_sync_attempt(
    manager: StateManager, results: Results
) -> None:
    """The first recorded sync makes the manager ready, whether or not upstreams answered."""
    assert manager.is_ready is False

    await manager.record_sync(results, NOW)

    assert manager.is_ready is True


async def test_successful_sync_marks_sources_ok(manager: StateManager) -> None:
    """An upstream that answered is `ok`, with both timestamps at the sync and no error."""
    await manager.record_sync(BOTH_OK, NOW)

    source = manager.state.sources["anythingllm"]
    assert statuses(manager) == {"anythingllm": "ok", "librechat": "ok"}
    assert (source.last_success_at, source.last_attempt_at, source.last_error) == (NOW, NOW, None)


async def test_failed_upstream_keeps_last_good_data_and_goes_stale(synced: StateManager) -> None:
    """A failure keeps the source's last good data and marks it `stale` with `lastError`."""
    before = synced.state

    await synced.record_sync({"librechat": failure("librechat", "timeout")}, LATER)

    after = synced.state
    source = after.sources["librechat"]
    assert source.status == "stale"
    assert source.last_error == "timeout"
    assert source.last_success_at == NOW
    assert source.last_attempt_at == LATER
    assert after.conversations == [{"id": "c-1", "title": "Quarterly plan"}]
    assert after.settings == before.settings
    assert after.user == before.user
    assert after.sources["anythingllm"] == before.sources["anythingllm"]


async def test_first_attempt_failing_marks_a_pending_source_stale(manager: StateManager) -> None:
    """A source whose first attempt failed is `stale` with no last success."""
    await manager.record_sync({"anythingllm": failure("anythingllm", "refused")}, NOW)

    source = manager.state.sources["anythingllm"]
    assert (source.status, source.last_success_at, source.last_error) == ("stale", None, "refused")
    assert manager.state.sources["librechat"].status == "pending"


async def test_success_after_failure_makes_the_source_ok_again(synced: StateManager) -> None:
    """A stale source that answers again is `ok` and its `lastError` is cleared."""
    await synced.record_sync({"librechat": failure("librechat")}, LATER)

    await synced.record_sync({"librechat": librechat(conversations=[])}, LATEST)

    source = synced.state.sources["librechat"]
    assert (source.status, source.last_error, source.last_success_at) == ("ok", None, LATEST)
    assert synced.state.conversations == []


async def test_sync_timestamp_stays_when_no_upstream_answered(synced: StateManager) -> None:
    """`syncTimestamp` keeps the last sync in which some upstream answered."""
    await synced.record_sync(
        {"anythingllm": failure("anythingllm"), "librechat": failure("librechat")}, LATER
    )

    assert synced.state.sync_timestamp == NOW
    assert synced.state.sources["anythingllm"].last_attempt_at == LATER


async def test_sync_timestamp_stays_null_until_some_upstream_answers(
    manager: StateManager,
) -> None:
    """A first sync in which every upstream failed leaves `syncTimestamp` null."""
    await manager.record_sync({"anythingllm": failure("anythingllm")}, NOW)

    assert manager.state.sync_timestamp is None


async def test_sync_timestamp_moves_when_one_upstream_answered(synced: StateManager) -> None:
    """One upstream answering is enough for `syncTimestamp` to move."""
    await synced.record_sync(
        {"anythingllm": anythingllm(), "librechat": failure("librechat")}, LATER
    )

    assert synced.state.sync_timestamp == LATER


# --- versions and change events --------------------------------------------------------


async def test_first_sync_moves_version_from_zero_to_one(manager: StateManager) -> None:
    """Version starts at 0 and a sync that brings data moves it to exactly 1."""
    assert manager.state.version == 0

    commit = await manager.record_sync(BOTH_OK, NOW)

    assert manager.state.version == 1
    assert commit.state is manager.state
    assert set(commit.changed) == {"user", "settings", "workspaces", "conversations", "sources"}


@pytest.mark.parametrize(
    ("results", "expected_changed"),
    [
        pytest.param(BOTH_OK, [], id="same-data"),
        pytest.param({}, [], id="nothing-asked"),
        pytest.param({"anythingllm": anythingllm()}, [], id="one-asked-same-data"),
        pytest.param(
            {"anythingllm": anythingllm(llm=LlmValues(model="gpt-5"))},
            ["settings"],
            id="settings",
        ),
        pytest.param(
            {"anythingllm": anythingllm(user={"id": 1, "username": "ada2"})}, ["user"], id="user"
        ),
        pytest.param(
            {"anythingllm": anythingllm(workspaces=WORKSPACES[:1])},
            ["workspaces"],
            id="workspaces",
        ),
        pytest.param(
            {"librechat": librechat(conversations=[])}, ["conversations"], id="conversations"
        ),
        pytest.param({"librechat": failure("librechat")}, ["sources"], id="status"),
        pytest.param(
            {
                "anythingllm": anythingllm(llm=LlmValues(model="gpt-5"), workspaces=[]),
                "librechat": failure("librechat"),
            },
            ["settings", "workspaces", "sources"],
            id="several-sections",
        ),
    ],
)
async def test_version_moves_by_one_only_when_data_or_a_status_changes(
    synced: StateManager, results: Results, expected_changed: list[str]
) -> None:
    """A sync bumps the version by exactly one when something changed, and not otherwise."""
    commit = await synced.record_sync(results, LATER)

    assert set(commit.changed) == set(expected_changed)
    assert synced.state.version == (2 if expected_changed else 1)


async def test_sync_with_same_data_moves_only_the_timestamps(synced: StateManager) -> None:
    """Same data keeps the version but moves `syncTimestamp` and `lastAttemptAt`."""
    commit = await synced.record_sync(BOTH_OK, LATER)

    assert commit.event is None
    assert synced.state.version == 1
    assert synced.state.sync_timestamp == LATER
    assert synced.state.sources["anythingllm"].last_attempt_at == LATER
    assert synced.state.sources["librechat"].last_success_at == LATER


async def test_repeated_failure_does_not_move_the_version(synced: StateManager) -> None:
    """A source already stale that fails again changes no status, so no new version."""
    await synced.record_sync({"librechat": failure("librechat", "timeout")}, LATER)

    commit = await synced.record_sync({"librechat": failure("librechat", "refused")}, LATEST)

    assert commit.event is None
    assert synced.state.version == 2
    assert synced.state.sources["librechat"].last_error == "refused"


async def test_one_changed_event_per_version(manager: StateManager) -> None:
    """Each new version publishes exactly one `changed` event naming only the changed sections."""
    subscription = manager.subscribe()

    await manager.record_sync(BOTH_OK, NOW)
    await manager.record_sync(BOTH_OK, LATER)  # nothing new: no event
    await manager.record_sync({"librechat": failure("librechat")}, LATER)
    await manager.record_sync({"anythingllm": anythingllm(workspaces=WORKSPACES[1:])}, LATEST)
    events = await drain(subscription, manager)

    assert all(isinstance(event, ChangedEvent) for event in events)
    changed = [event for event in events if isinstance(event, ChangedEvent)]
    assert [(e.version, e.previous_version) for e in changed] == [(1, 0), (2, 1), (3, 2)]
    assert [set(e.changes) for e in changed] == [
        {"user", "settings", "workspaces", "conversations", "sources"},
        {"sources"},
        {"workspaces"},
    ]
    assert [e.timestamp for e in changed] == [NOW, LATER, LATEST]
    assert changed[2].changes["workspaces"] == ItemChanges(removed=[1])
    assert changed[1].changes["sources"]["librechat"].status == "stale"


async def test_commit_event_is_the_published_event(manager: StateManager) -> None:
    """The commit returned by a sync carries the same event that subscribers receive."""
    subscription = manager.subscribe()

    commit = await manager.record_sync(BOTH_OK, NOW)

    assert await drain(subscription, manager) == [commit.event]


async def test_subscribe_with_snapshot_yields_the_current_state_first(
    synced: StateManager,
) -> None:
    """`subscribe(with_snapshot=True)` yields a `snapshot` of the current state, then changes."""
    subscription = synced.subscribe(with_snapshot=True)
    await synced.record_sync({"librechat": failure("librechat")}, LATER)

    events = await drain(subscription, synced)

    assert [event.type for event in events] == ["snapshot", "changed"]
    first = events[0]
    assert isinstance(first, SnapshotEvent)
    assert first.version == 1
    assert first.state.version == 1
    assert first.state.workspaces == WORKSPACES
    assert events[1].version == 2


async def test_subscriber_count_follows_subscriptions(manager: StateManager) -> None:
    """The manager counts open subscriptions and forgets closed ones."""
    first = manager.subscribe()
    second = manager.subscribe()
    assert manager.subscriber_count == 2

    first.close()

    assert manager.subscriber_count == 1
    second.close()
    assert manager.subscriber_count == 0


# --- rendering and lookups -----------------------------------------------------------


async def test_render_returns_the_same_bytes_object_until_the_state_changes(
    synced: StateManager,
) -> None:
    """An unchanged state renders to the very same bytes; a change renders new bytes."""
    first = synced.render()
    assert synced.render() is first

    await synced.record_sync({"librechat": failure("librechat")}, LATER)

    second = synced.render()
    assert second is not first
    assert json.loads(second)["version"] == 2
    assert synced.render() is second


async def test_render_is_the_camel_case_json_of_the_state(synced: StateManager) -> None:
    """`render()` is the state's JSON with contract names and JavaScript timestamps."""
    payload = json.loads(synced.render())

    assert payload == json.loads(synced.state.model_dump_json(by_alias=True))
    assert payload["syncTimestamp"] == "2026-11-21T12:00:00.000Z"
    assert payload["settings"]["llm"] == {
        "provider": "openai",
        "model": "gpt-4o",
        "temperature": 0.7,
        "maxTokens": 4096,
    }
    assert payload["sources"]["librechat"]["lastSuccessAt"] == "2026-11-21T12:00:00.000Z"


@pytest.mark.parametrize("section", ["user", "settings", "workspaces", "conversations"])
async def test_render_of_a_section_is_that_section_of_the_state(
    synced: StateManager, section: RenderTarget
) -> None:
    """`render(section)` is the JSON of that section of the whole state."""
    whole = json.loads(synced.render())

    assert json.loads(synced.render(section)) == whole[section]


async def test_render_of_an_unknown_user_is_null(manager: StateManager) -> None:
    """Before anyone knows the user, `render("user")` is JSON null."""
    assert manager.render("user") == b"null"


async def test_render_of_sections_is_cached_per_state(synced: StateManager) -> None:
    """Section renders are also computed once per state."""
    assert synced.render("workspaces") is synced.render("workspaces")


@pytest.mark.parametrize(
    ("section", "key", "expected_name"),
    [
        pytest.param("workspaces", "1", "Research", id="workspace-by-id"),
        pytest.param("workspaces", "research", "Research", id="workspace-by-slug"),
        pytest.param("workspaces", "2", "Notes", id="second-by-id"),
        pytest.param("workspaces", "notes", "Notes", id="second-by-slug"),
        pytest.param("conversations", "c-1", "Quarterly plan", id="conversation-by-id"),
    ],
)
async def test_find_returns_the_item_by_id_or_slug(
    synced: StateManager, section: ListSection, key: str, expected_name: str
) -> None:
    """`find` returns a workspace by id or slug and a conversation by id."""
    item = synced.find(section, key)

    assert item.get("name", item.get("title")) == expected_name


@pytest.mark.parametrize(
    ("section", "key"),
    [
        pytest.param("workspaces", "nope", id="unknown-workspace"),
        pytest.param("workspaces", "c-1", id="conversation-id-in-workspaces"),
        pytest.param("conversations", "research", id="slug-in-conversations"),
        pytest.param("conversations", "c-2", id="unknown-conversation"),
    ],
)
async def test_find_raises_not_found_for_an_unknown_key(
    synced: StateManager, section: ListSection, key: str
) -> None:
    """An id that is not in the section raises `NotFound`."""
    with pytest.raises(NotFound) as caught:
        synced.find(section, key)

    assert caught.value.code == "not_found"


async def test_find_forgets_items_removed_by_a_sync(synced: StateManager) -> None:
    """After a sync removes a workspace, `find` no longer returns it."""
    assert synced.find("workspaces", "notes")["id"] == 2

    await synced.record_sync({"anythingllm": anythingllm(workspaces=WORKSPACES[:1])}, LATER)

    with pytest.raises(NotFound):
        synced.find("workspaces", "notes")
    assert synced.find("workspaces", "research")["id"] == 1


# --- writes ----------------------------------------------------------------------------


async def test_write_patches_the_named_sources_at_once(synced: StateManager) -> None:
    """A recorded write changes the named upstreams' data and the state, with a new version."""
    subscription = synced.subscribe()

    commit = await synced.record_write(
        "llm",
        {"anythingllm": {"model": "gpt-5", "temperature": 0.0}, "librechat": {"model": "gpt-5"}},
        {},
        LATER,
    )

    assert synced.state.settings.llm.model == "gpt-5"
    assert synced.state.settings.llm.temperature == 0.0
    assert synced.state.version == 2
    assert commit.changed == ["settings"]
    anythingllm_data = synced.upstream_data("anythingllm")
    librechat_data = synced.upstream_data("librechat")
    assert anythingllm_data is not None
    assert librechat_data is not None
    assert anythingllm_data.llm.model == "gpt-5"
    assert anythingllm_data.llm.provider == "openai"
    assert librechat_data.llm.model == "gpt-5"
    assert librechat_data.llm.temperature == 0.2
    events = await drain(subscription, synced)
    assert [(e.version, set(getattr(e, "changes", {}))) for e in events] == [(2, {"settings"})]


async def test_write_leaves_sources_it_does_not_name_alone(synced: StateManager) -> None:
    """Only the upstreams named in the write are patched."""
    await synced.record_write("ui", {"librechat": {"theme": "light"}}, {}, LATER)

    anythingllm_data = synced.upstream_data("anythingllm")
    assert anythingllm_data is not None
    assert anythingllm_data.ui == UiValues()
    assert synced.state.settings.ui.theme == "light"
    assert synced.state.settings.ui.font_size == "large"


async def test_write_keeps_fields_no_upstream_stores_in_local_settings() -> None:
    """Fields kept locally land in `local_settings` and in the state, and survive syncs."""
    manager = StateManager(configured=["anythingllm"])
    await manager.record_sync({"anythingllm": anythingllm()}, NOW)

    await manager.record_write("ui", {}, {"theme": "dark", "font_size": "small"}, LATER)
    await manager.record_sync({"anythingllm": anythingllm()}, LATEST)

    assert manager.local_settings.ui == UiValues(theme="dark", font_size="small")
    assert manager.state.settings.ui.theme == "dark"
    assert manager.state.settings.ui.font_size == "small"
    assert manager.state.version == 2


async def test_write_to_a_source_that_never_answered_is_served(manager: StateManager) -> None:
    """A write accepted by an upstream with no data yet still shows in the state."""
    await manager.record_write("llm", {"librechat": {"max_tokens": 2048}}, {}, NOW)

    assert manager.state.settings.llm.max_tokens == 2048
    assert manager.state.version == 1


async def test_write_of_the_values_already_held_changes_nothing(synced: StateManager) -> None:
    """Writing values the state already has publishes no event and keeps the version."""
    commit = await synced.record_write("llm", {"anythingllm": {"model": "gpt-4o"}}, {}, LATER)

    assert commit.event is None
    assert synced.state.version == 1


async def test_write_keeps_sync_timestamp(synced: StateManager) -> None:
    """A write is not a sync: `syncTimestamp` stays."""
    await synced.record_write("llm", {"anythingllm": {"model": "gpt-5"}}, {}, LATER)

    assert synced.state.sync_timestamp == NOW
