"""The typed nouns of the domain: the merged state and what each upstream contributes.

JSON names are camelCase (contract §4); Python names are snake_case. Every model is
frozen: the StateManager replaces state, it never mutates it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator
from pydantic.alias_generators import to_camel

from shared_state.domain.items import EMPTY, ItemList
from shared_state.domain.items import Item as Item  # re-exported: a noun of the state
from shared_state.domain.redact import redact, safe_user

SourceName = Literal["anythingllm", "librechat"]
SOURCE_NAMES: tuple[SourceName, ...] = ("anythingllm", "librechat")

SourceStatusName = Literal["pending", "ok", "stale", "disabled"]
Section = Literal["user", "settings", "workspaces", "conversations", "sources"]
SECTIONS: tuple[Section, ...] = ("user", "settings", "workspaces", "conversations", "sources")
WritableSection = Literal["llm", "ui"]


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a `Z`, as JavaScript's `toISOString()` writes."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


class DomainModel(BaseModel):
    """Frozen, camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="forbid"
    )


# --- What one upstream contributes ------------------------------------------------------


class LlmValues(DomainModel):
    """LLM settings as one upstream holds them, or as a write asks for them: any may be absent."""

    provider: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


class UiValues(DomainModel):
    """UI settings as one upstream holds them; either may be absent."""

    theme: str | None = None
    font_size: str | None = None


class EmbeddingValues(DomainModel):
    provider: str | None = None
    model: str | None = None


class VectorDbValues(DomainModel):
    provider: str | None = None
    settings: dict[str, Any] | None = None

    @field_validator("settings")
    @classmethod
    def _without_secrets(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return redact(value) if value is not None else None


class UpstreamSnapshot(DomainModel):
    """What one upstream answered on its last good read. `None` means "this upstream has
    no say on that": the merge then asks the next source.

    Secrets are removed here, whatever the adapter passed in, so that nothing an upstream
    sends can reach a response, a log or the snapshot file: the user by its validator, the
    lists by `ItemList`, which holds only items that passed `redact`.
    """

    user: dict[str, Any] | None = None
    llm: LlmValues = LlmValues()
    ui: UiValues = UiValues()
    embedding: EmbeddingValues = EmbeddingValues()
    vector_db: VectorDbValues = VectorDbValues()
    workspaces: ItemList | None = None
    conversations: ItemList | None = None

    @field_validator("user")
    @classmethod
    def _without_secrets(cls, value: Any) -> Any:
        # A user keeps only its known-safe fields; items keep the upstream's own fields
        # (contract §4), less anything named or shaped like a secret (`ItemList`).
        return safe_user(value) if value is not None else None


class LocalSettings(DomainModel):
    """Settings that no configured upstream stores, kept by the service itself (contract §6)."""

    llm: LlmValues = LlmValues()
    ui: UiValues = UiValues()


# --- The merged state (contract §4) -------------------------------------------------------


class User(DomainModel):
    id: int | str | None = None
    username: str | None = None
    email: str | None = None
    name: str | None = None
    role: str | None = None
    anything_llm: dict[str, Any] | None = Field(None, alias="anythingLLM")
    libre_chat: dict[str, Any] | None = Field(None, alias="libreChat")


class LlmSettings(DomainModel):
    provider: str | None = None
    model: str | None = None
    temperature: float = 0.7
    max_tokens: int = 4096


class EmbeddingSettings(DomainModel):
    provider: str = "openai"
    model: str = "text-embedding-ada-002"


class UiSettings(DomainModel):
    theme: str = "system"
    font_size: str = "medium"


class VectorDbSettings(DomainModel):
    provider: str = "lancedb"
    settings: dict[str, Any] = Field(default_factory=dict)


class StateSettings(DomainModel):
    llm: LlmSettings = LlmSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    ui: UiSettings = UiSettings()
    vector_db: VectorDbSettings = VectorDbSettings()


class MergedData(DomainModel):
    """The merge's result: the data sections of the state."""

    user: User | None = None
    settings: StateSettings = StateSettings()
    workspaces: ItemList = EMPTY
    conversations: ItemList = EMPTY


class SourceStatus(DomainModel):
    status: SourceStatusName
    last_success_at: Timestamp | None = None
    last_attempt_at: Timestamp | None = None
    last_error: str | None = None


class SharedState(DomainModel):
    """The whole state served at `GET /api/shared-state`: the merged data plus bookkeeping."""

    version: int = 0
    sync_timestamp: Timestamp | None = None
    user: User | None = None
    settings: StateSettings = StateSettings()
    workspaces: ItemList = EMPTY
    conversations: ItemList = EMPTY
    sources: dict[SourceName, SourceStatus] = Field(default_factory=dict)
