"""A `changed` event read back from the JSON it was published as (the change log's
entries in Redis hold exactly the `data:` line that `changed_json` wrote).

`ChangedEvent.changes` is typed `Any` per section, so pydantic alone would give plain
dicts back; each section is parsed here as the type the state holds it as (`User`,
`StateSettings`, the sources, `ItemChanges` with its items as `ItemList`), so that the
event a follower replays renders to the same bytes as the holder's.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from shared_state.domain.events import ChangedEvent, ItemChanges
from shared_state.domain.models import Section, SourceName, SourceStatus, StateSettings, User

_SECTION_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "user": TypeAdapter(User | None),
    "settings": TypeAdapter(StateSettings),
    "sources": TypeAdapter(dict[SourceName, SourceStatus]),
    "workspaces": TypeAdapter(ItemChanges),
    "conversations": TypeAdapter(ItemChanges),
}


def parse_changed(data: bytes) -> ChangedEvent:
    """The event `changed_json(event)` wrote; `ValueError` (pydantic's
    `ValidationError` among them) when `data` is not one."""
    raw = json.loads(data)
    if not isinstance(raw, dict) or not isinstance(raw.get("changes"), dict):
        raise ValueError("not a changed event")
    changes: dict[Section, Any] = {}
    for section, change in raw["changes"].items():
        adapter = _SECTION_ADAPTERS.get(section)
        if adapter is None:
            raise ValueError(f"unknown section {section!r}")
        changes[section] = adapter.validate_python(change, by_alias=True)
    return ChangedEvent.model_validate({**raw, "changes": changes}, by_alias=True)
