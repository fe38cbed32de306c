"""Change events (contract §8), discriminated by `type`; the same literal names the SSE event.

`describe_changes` is pure: it compares two states and says which sections changed and
how, which is what a `changed` event carries.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from shared_state.domain.items import EMPTY, ItemList
from shared_state.domain.models import (
    DomainModel,
    Item,
    Section,
    SharedState,
    Timestamp,
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
