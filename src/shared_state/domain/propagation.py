"""Propagation's pure part (contract §10): which fields are kept equal, what the service
remembers of them, and the decision taken for one field at one sync.

No I/O, no clock: the engine (`service/propagation.py`) reads the upstreams, calls
`decide` and `settle` per field, and carries the decision out through the adapters.

A field's value is what the state calls it (§4 names): a scalar for `temperature`,
`maxTokens`, `theme` and `fontSize`, and `{"provider", "model"}` for the pair, which is
one field because neither half means anything alone on the other side. `None` is "this
upstream holds nothing there", which is a value like any other for the decision (two
upstreams that both hold nothing agree), but is never written.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Literal, get_args

from pydantic import Field

from shared_state.domain.models import (
    DomainModel,
    SourceName,
    Timestamp,
    UpstreamSnapshot,
    WritableSection,
)

Group = Literal["llm", "ui"]
GROUPS: tuple[Group, ...] = get_args(Group)
ConflictPolicy = Literal["anythingllm", "librechat", "manual"]

Value = Any
"""A field's value as JSON: a scalar, `{"provider", "model"}` for the pair, or None."""


class _NoBase(Enum):
    NO_BASE = "no base"


NO_BASE: Final = _NoBase.NO_BASE
"""The upstreams have never agreed on this field (as far as the service knows)."""

Base = Value | Literal[_NoBase.NO_BASE]


@dataclass(frozen=True)
class PropagatedField:
    """One field kept equal: its name in `/status`, its group, and the snake_case fields
    of `section` (as adapters write them) that make it up."""

    name: str
    group: Group
    section: WritableSection
    parts: tuple[str, ...]

    def value_of(self, snapshot: UpstreamSnapshot) -> Value:
        """This field's value in what one upstream answered."""
        values = getattr(snapshot, self.section)
        if len(self.parts) == 1:
            return getattr(values, self.parts[0])
        pair = {part: getattr(values, part) for part in self.parts}
        return None if all(v is None for v in pair.values()) else pair

    def as_write(self, value: Value) -> dict[str, Any]:
        """The `write_settings` values (snake_case) that store `value`."""
        if len(self.parts) == 1:
            return {self.parts[0]: value}
        return {part: value[part] for part in self.parts}

    def is_complete(self, value: Value) -> bool:
        """Whether `value` can be written at all: present, and the pair with both halves."""
        if value is None:
            return False
        return len(self.parts) == 1 or all(value.get(part) is not None for part in self.parts)


PAIR = PropagatedField("provider+model", "llm", "llm", ("provider", "model"))
FIELDS: tuple[PropagatedField, ...] = (
    PAIR,
    PropagatedField("temperature", "llm", "llm", ("temperature",)),
    PropagatedField("maxTokens", "llm", "llm", ("max_tokens",)),
    PropagatedField("theme", "ui", "ui", ("theme",)),
    PropagatedField("fontSize", "ui", "ui", ("font_size",)),
)
"""Every field a group may propagate; a field propagates only where two configured
upstreams store all of its parts."""


def propagated_fields(
    groups: Collection[Group], stored: Mapping[SourceName, Mapping[WritableSection, frozenset[str]]]
) -> tuple[PropagatedField, ...]:
    """The fields of `groups` that both upstreams store (`stored`: each one's fields)."""
    if len(stored) < 2:
        return ()
    return tuple(
        field
        for field in FIELDS
        if field.group in groups
        and all(
            set(field.parts) <= fields.get(field.section, frozenset()) for fields in stored.values()
        )
    )


# --- the decision --------------------------------------------------------------------------


@dataclass(frozen=True)
class Nothing:
    """Nothing to write; `base` is the field's base from now on (moved when both agree)."""

    base: Base


@dataclass(frozen=True)
class Write:
    """Write `value` (the value of `source`) to `target`; the base moves once it lands."""

    value: Value
    source: SourceName
    target: SourceName


@dataclass(frozen=True)
class Conflict:
    """Both changed differently since they last agreed (or they never agreed)."""

    values: Mapping[SourceName, Value]
    base: Base


Decision = Nothing | Write | Conflict


def decide(base: Base, anythingllm: Value, librechat: Value) -> Decision:
    """What one sync does with a field both upstreams were just read for.

    ===============================  ===========================================
    the two values                   decision
    ===============================  ===========================================
    equal                            nothing; the base moves to them
    differ, no base                  conflict
    one equals the base              write the other (the changed one) to it
    differ, neither is the base      conflict
    ===============================  ===========================================
    """
    if anythingllm == librechat:
        return Nothing(base=anythingllm)
    if base is not NO_BASE:
        if anythingllm == base:
            return Write(value=librechat, source="librechat", target="anythingllm")
        if librechat == base:
            return Write(value=anythingllm, source="anythingllm", target="librechat")
    return Conflict(values={"anythingllm": anythingllm, "librechat": librechat}, base=base)


def settle(conflict: Conflict, policy: ConflictPolicy) -> Write | Conflict:
    """The policy's answer to a conflict: the winner written to the other, or (`manual`)
    the conflict left open until a write through the API settles it."""
    if policy == "manual":
        return conflict
    loser: SourceName = "librechat" if policy == "anythingllm" else "anythingllm"
    return Write(value=conflict.values[policy], source=policy, target=loser)


# --- what the service remembers (the snapshot file keeps it) ------------------------------


class OpenConflict(DomainModel):
    """A conflict listed in `/status` until settled."""

    field: str
    values: dict[SourceName, Value]
    base: Value = None
    since: Timestamp


class LastPropagation(DomainModel):
    at: Timestamp
    field: str
    from_: SourceName = Field(alias="from")
    to: SourceName
    value: Value


class PropagationMemory(DomainModel):
    """The base per field (a field absent here has no base), the open conflicts and the
    last propagation: kept in the snapshot file, so that a restart neither mistakes an old
    difference for a new change nor forgets one made while it was down."""

    bases: dict[str, Value] = Field(default_factory=dict)
    conflicts: list[OpenConflict] = Field(default_factory=list)
    last_propagation: LastPropagation | None = None

    def base_of(self, field: str) -> Base:
        return self.bases.get(field, NO_BASE)
