"""Shapes that exist only at the HTTP edge: write bodies and the sync/status answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from shared_state.domain.models import Section, SourceName, SourceStatus, Timestamp


class _Body(BaseModel):
    """A write body: camelCase names only, strict JSON types, no unknown fields, not empty."""

    model_config = ConfigDict(
        extra="forbid", strict=True, alias_generator=to_camel, allow_inf_nan=False
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


class LlmSettingsUpdate(_Body):
    """Any non-empty subset of the LLM settings."""

    provider: str | None = Field(None, min_length=1, max_length=100, examples=["openai"])
    model: str | None = Field(None, min_length=1, max_length=200, examples=["gpt-4o"])
    temperature: float | None = Field(None, ge=0, le=2, examples=[0.2])
    max_tokens: int | None = Field(None, ge=1, le=2_000_000, examples=[8192])


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


class StatusAnswer(_Answer):
    version: int
    sync_timestamp: Timestamp | None
    sources: dict[SourceName, SourceStatus]
    sync_interval_s: float = Field(alias="syncIntervalS")
    subscribers: int
    uptime_s: float = Field(alias="uptimeS")


class ErrorAnswer(_Answer):
    detail: str
    code: str


class WriteFailedAnswer(ErrorAnswer):
    results: dict[SourceName, Literal["ok", "failed", "rolled_back", "rollback_failed", "skipped"]]
