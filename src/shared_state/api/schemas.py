"""Shapes that exist only at the HTTP edge: write bodies and the sync/status answers."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from shared_state.domain.models import Section, SourceName, SourceStatus, Timestamp

CONTROL_CHARACTERS = (
    r"\u0000-\u001F\u007F-\u009F"  # C0 (newline, NUL, tab…), DEL, C1
    r"\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069"  # bidi marks, embeddings, isolates
    r"\u2028\u2029"  # line and paragraph separators
)
"""Characters a provider or model name must not hold, as a regex class body.

AnythingLLM's `update-env` writes the values into its `.env` file, so a newline is an
injection (`"gpt-4o\\nAuthToken=x"`); bidi controls make a name read differently from
what it is. Written with `\\uXXXX` escapes, which Python's `re` and JSON Schema's
ECMA-262 patterns read alike."""

NAME_PATTERN = f"^[^{CONTROL_CHARACTERS}]*$"
"""The rule as the OpenAPI schema publishes it."""

_FORBIDDEN = re.compile(f"[{CONTROL_CHARACTERS}" r"\ud800-\udfff]")
"""The rule as the server applies it, plus lone surrogates (which JSON may escape but no
upstream can store)."""


def _accepted_shape(schema: dict[str, Any]) -> None:
    """Publish what the server accepts: the plain type of each field (an explicit `null`
    is refused, so `anyOf [T, null]` and `default: null` would be untrue) and at least
    one field."""
    for prop in schema.get("properties", {}).values():
        branches = prop.pop("anyOf", None)
        if branches:
            prop.update(next(b for b in branches if b.get("type") != "null"))
        prop.pop("default", None)
    schema["minProperties"] = 1


class _Body(BaseModel):
    """A write body: camelCase names only, strict JSON types, no unknown fields, not empty.

    Fields are `T | None = None` in Python so that "not given" is representable; the
    OpenAPI schema shows plain `T`, as an explicit null is a 422.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        alias_generator=to_camel,
        allow_inf_nan=False,
        json_schema_extra=_accepted_shape,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Defaults are None (absent); an explicit null is not a value we can write.
        if value is None:
            raise ValueError("must not be null")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> _Body:
        if not self.model_fields_set:
            names = ", ".join(
                field.alias or name for name, field in type(self).model_fields.items()
            )
            raise ValueError(f"give at least one of: {names}")
        return self

    def values(self) -> dict[str, Any]:
        """The fields that were given, snake_case."""
        return self.model_dump(exclude_unset=True)


def _without_control_characters(value: str) -> str:
    """Refuse, never strip: a name is written upstream exactly as given, or not at all."""
    found = _FORBIDDEN.search(value)
    if found is not None:
        raise ValueError(
            f"must not contain control or bidi characters (found U+{ord(found.group()):04X})"
        )
    return value


_NAME_RULE: JsonDict = {"pattern": NAME_PATTERN}


class LlmSettingsUpdate(_Body):
    """Any non-empty subset of the LLM settings."""

    provider: str | None = Field(
        None, min_length=1, max_length=100, examples=["openai"], json_schema_extra=_NAME_RULE
    )
    model: str | None = Field(
        None, min_length=1, max_length=200, examples=["gpt-4o"], json_schema_extra=_NAME_RULE
    )
    temperature: float | None = Field(None, ge=0, le=2, examples=[0.2])
    max_tokens: int | None = Field(None, ge=1, le=2_000_000, examples=[8192])

    @field_validator("provider", "model")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        return _without_control_characters(value)

    @field_validator("max_tokens", mode="before")
    @classmethod
    def _integral_number(cls, value: Any) -> Any:
        # JSON Schema's `integer` includes 4096.0, so the schema promises it is accepted.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    @field_validator("temperature")
    @classmethod
    def _positive_zero(cls, value: float) -> float:
        # -0.0 passes `ge=0`; store (and send upstream) the zero everyone means.
        return 0.0 if value == 0 else value


class UiSettingsUpdate(_Body):
    """Any non-empty subset of the UI settings."""

    theme: Literal["light", "dark", "system"] | None = None
    font_size: Literal["small", "medium", "large"] | None = None


class _Answer(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class SyncAnswer(_Answer):
    version: int
    changed: list[Section]
    sources: dict[SourceName, SourceStatus]
    duration_ms: float


class SourceSchedule(SourceStatus):
    """A source's status in `/status`, with its back-off: failures in a row and when the
    schedule asks it next (null before its first attempt, and when it is disabled)."""

    consecutive_failures: int = 0
    next_attempt_at: Timestamp | None = None


class LastPropagationAnswer(_Answer):
    at: Timestamp
    field: str
    from_: SourceName = Field(alias="from")
    to: SourceName
    value: Any


class ConflictAnswer(_Answer):
    field: str
    values: dict[SourceName, Any]
    base: Any
    since: Timestamp


class UnwritableAnswer(_Answer):
    field: str
    from_: SourceName = Field(alias="from")
    value: Any


class PropagationStatus(_Answer):
    """What propagation keeps in step and what it found (contract §10); `fields` lists
    what the groups propagate between the upstreams configured."""

    groups: list[Literal["llm", "ui"]]
    policy: Literal["anythingllm", "librechat", "manual"]
    fields: list[str]
    last_propagation: LastPropagationAnswer | None
    conflicts: list[ConflictAnswer]
    unwritable: list[UnwritableAnswer]


class StoreStatus(_Answer):
    """Where the state is kept (contract §11): `memory` in one process, `redis` for
    replicas, with this replica's part in it."""

    kind: Literal["memory", "redis"]
    status: Literal["ok", "unavailable"]
    last_error: str | None
    replica: str | None
    """This replica's id (host, pid, random); null in memory."""
    lease_holder: str | None
    """The replica that syncs, as last seen; null in memory."""
    holding: bool
    """Whether this replica syncs (always, in memory)."""
    takeovers: int
    """Times this replica took the lease."""


class StatusAnswer(_Answer):
    version: int
    sync_timestamp: Timestamp | None
    sources: dict[SourceName, SourceSchedule]
    sync_interval_s: float = Field(alias="syncIntervalS")
    subscribers: int
    uptime_s: float = Field(alias="uptimeS")
    propagation: PropagationStatus
    store: StoreStatus


class ErrorAnswer(_Answer):
    detail: str
    code: str


class WriteFailedAnswer(ErrorAnswer):
    results: dict[SourceName, Literal["ok", "failed", "rolled_back", "rollback_failed", "skipped"]]


class ValidationErrorAnswer(BaseModel):
    """FastAPI's own 422 body: what is wrong with the request, as a list."""

    detail: list[dict[str, Any]]


InvalidWriteAnswer = ValidationErrorAnswer | ErrorAnswer
"""A write's 422: an invalid body (FastAPI's list), or an `Idempotency-Key` that is
invalid or reused (`{"detail", "code"}`)."""
