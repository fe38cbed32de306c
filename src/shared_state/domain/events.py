"""Change events (contract §8), discriminated by `type`; the same literal names the SSE event.

`describe_changes` is pure: it compares two states and says which sections changed and
how, which is what a `changed` event carries. `changed_json` and `snapshot_json` write
an event's JSON (the `data:` line of the event stream) with the lists spliced in as the
JSON they are held as, rather than parsed and serialised again.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from shared_state.domain.items import EMPTY, ItemList
from shared_state.domain.models import (
    DomainModel,
    Item,
    Section,
    SharedState,
    SourceName,
    SourceStatus,
    StateSettings,
    Timestamp,
    User,
)


class ItemChanges(DomainModel):
    """How a list section changed: whole items added or updated, ids removed. The items
    share the state's bytes: a sync that added 10,000 conversations parses none of them."""

    added: ItemList = EMPTY
    updated: ItemList = EMPTY
    removed: list[str | int] = Field(default_factory=list)


class ChangedEvent(DomainModel):
    """One per new version; `changes` holds only the sections that changed."""

    type: Literal["changed"] = "changed"
    version: int
    previous_version: int
    timestamp: Timestamp
    changes: dict[Section, Any]


class SnapshotEvent(DomainModel):
    """The whole state, for a subscriber that is starting (or starting over)."""

    type: Literal["snapshot"] = "snapshot"
    version: int
    timestamp: Timestamp
    state: SharedState


Event = Annotated[ChangedEvent | SnapshotEvent, Field(discriminator="type")]


def describe_changes(old: SharedState, new: SharedState) -> dict[Section, Any]:
    """The sections in which `new` differs from `old`, each with what a `changed` event says.

    `user`, `settings` and `sources` carry their new value; `workspaces` and
    `conversations` carry an :class:`ItemChanges`. For `sources`, only a change of a
    source's `status` counts: its timestamps move on every sync.
    """
    changes: dict[Section, Any] = {}
    if old.user != new.user:
        changes["user"] = new.user
    if old.settings != new.settings:
        changes["settings"] = new.settings
    if old.workspaces != new.workspaces:
        changes["workspaces"] = diff_items(old.workspaces, new.workspaces)
    if old.conversations != new.conversations:
        changes["conversations"] = diff_items(old.conversations, new.conversations)
    if _statuses(old) != _statuses(new):
        changes["sources"] = new.sources
    return changes


def diff_items(old: ItemList | list[Item], new: ItemList | list[Item]) -> ItemChanges:
    """Items added, updated (same id, other fields) and removed (ids), in `new`'s order;
    only the changed items are parsed."""
    old, new = ItemList.coerce(old), ItemList.coerce(new)
    delta = new.changes_since(old)
    return ItemChanges(
        added=new.subset(delta.added),
        updated=new.subset(delta.updated),
        removed=[old.original_id(key) for key in delta.removed],
    )


def _statuses(state: SharedState) -> dict[str, str]:
    return {name: source.status for name, source in state.sources.items()}


# --- serialisation (the event stream's `data:` lines) -----------------------------------


def changed_json(event: ChangedEvent, sections: Collection[Section] | None = None) -> bytes | None:
    """`event` as JSON; with `sections`, only their changes, and None when it changed
    none of them (such a version is not sent)."""
    chosen = [section for section in event.changes if sections is None or section in sections]
    if not chosen:
        return None
    head = event.model_dump_json(by_alias=True, exclude={"changes"}).encode()
    parts = [head[:-1], b',"changes":{']
    for number, section in enumerate(chosen):
        parts += [b"," * bool(number), b'"%s":' % section.encode()]
        parts.append(section_change_json(section, event.changes[section]))
    parts.append(b"}}")
    return b"".join(parts)


def section_change_json(section: Section, change: Any) -> bytes:
    """One section's entry in `changes`: the new value, or an `ItemChanges`."""
    if isinstance(change, ItemChanges):
        removed = _REMOVED.dump_json(change.removed)
        return b'{"added":%s,"updated":%s,"removed":%s}' % (
            change.added.json,
            change.updated.json,
            removed,
        )
    return _VALUE_ADAPTERS[section].dump_json(change, by_alias=True)


def snapshot_json(version: int, timestamp: datetime, state_json: bytes) -> bytes:
    """A `snapshot` event's JSON around `state_json`, the state (or the part of it that
    a stream follows) as it is already rendered."""
    return b'{"type":"snapshot","version":%d,"timestamp":%s,"state":%s}' % (
        version,
        _TIMESTAMP.dump_json(timestamp),
        state_json,
    )


def partial_state_json(state: SharedState, sections: dict[Section, bytes]) -> bytes:
    """The state's `version` and `syncTimestamp` with only the given sections, each
    given as its JSON."""
    parts = [b'{"version":%d,"syncTimestamp":' % state.version]
    parts.append(_OPTIONAL_TIMESTAMP.dump_json(state.sync_timestamp))
    for section, rendered in sections.items():
        parts += [b',"%s":' % section.encode(), rendered]
    parts.append(b"}")
    return b"".join(parts)


def sources_json(sources: dict[SourceName, SourceStatus]) -> bytes:
    """The `sources` section as JSON."""
    return _SOURCES.dump_json(sources, by_alias=True)


_SOURCES: TypeAdapter[dict[SourceName, SourceStatus]] = TypeAdapter(dict[SourceName, SourceStatus])
_VALUE_ADAPTERS: dict[Section, TypeAdapter[Any]] = {
    "user": TypeAdapter(User | None),
    "settings": TypeAdapter(StateSettings),
    "sources": _SOURCES,
}
_REMOVED: TypeAdapter[list[str | int]] = TypeAdapter(list[str | int])
_TIMESTAMP: TypeAdapter[Timestamp] = TypeAdapter(Timestamp)
_OPTIONAL_TIMESTAMP: TypeAdapter[Timestamp | None] = TypeAdapter(Timestamp | None)
