"""LibreChat, `bizzy` flavour: the paths of the BizzyPerson platform's design.

`GET /api/user/me`, `GET|POST /api/user/settings`, `GET /api/conversations`
(contract §7). The model travels as `defaultModelId: "provider/model"`, split at the
first `/` only, so a model id that contains `/` survives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, TypeAdapter, model_validator

from shared_state.adapters.http import JsonApi, gather_reads
from shared_state.adapters.memo import SnapshotMemo
from shared_state.adapters.wire import WireModel, WireUser, WriteAnswer
from shared_state.domain.items import ItemList
from shared_state.domain.models import (
    LlmValues,
    SourceName,
    UiValues,
    UpstreamSnapshot,
    WritableSection,
)
from shared_state.errors import UpstreamRejectedWrite


class _Settings(WireModel):
    default_model_id: str | None = Field(None, alias="defaultModelId")
    default_temperature: float | None = Field(None, alias="defaultTemperature")
    default_max_tokens: int | None = Field(None, alias="defaultMaxTokens")
    theme: str | None = None
    font_size: str | None = Field(None, alias="fontSize")

    def llm(self) -> LlmValues:
        provider, model = split_model_id(self.default_model_id)
        return LlmValues(
            provider=provider,
            model=model,
            temperature=self.default_temperature,
            max_tokens=self.default_max_tokens,
        )

    def ui(self) -> UiValues:
        return UiValues(theme=self.theme, font_size=self.font_size)


class _Conversation(WireModel):
    conversation_id: str | None = Field(None, alias="conversationId")
    id: str | int | None = None

    @model_validator(mode="after")
    def _has_identity(self) -> _Conversation:
        if self.conversation_id is None and self.id is None:
            raise ValueError("a conversation needs a conversationId or an id")
        return self

    def item(self) -> dict[str, Any]:
        """The upstream's fields, with an `id` from `conversationId` only where it sent
        none (contract §4)."""
        item = self.model_dump(by_alias=True, exclude_none=False)
        if self.conversation_id is None:
            del item["conversationId"]
        elif self.id is None:
            item["id"] = self.conversation_id
        return item


_USER = TypeAdapter(WireUser)
_SETTINGS = TypeAdapter(_Settings)
_CONVERSATIONS = TypeAdapter(list[_Conversation])
_WRITE_ANSWER = TypeAdapter(WriteAnswer)


def split_model_id(model_id: str | None) -> tuple[str | None, str | None]:
    """`"openrouter/meta/llama-3"` → `("openrouter", "meta/llama-3")`; no `/`: model only."""
    if model_id is None:
        return None, None
    provider, slash, model = model_id.partition("/")
    return (provider or None, model or None) if slash else (None, model_id)


def join_model_id(provider: str | None, model: str | None) -> str | None:
    if model is None:
        return None
    return f"{provider}/{model}" if provider else model


class LibreChatBizzy:
    """LibreChat through the BizzyPerson design's paths."""

    name: SourceName = "librechat"
    stored_fields: Mapping[WritableSection, frozenset[str]] = {
        "llm": frozenset({"provider", "model", "temperature", "max_tokens"}),
        "ui": frozenset({"theme", "font_size"}),
    }

    def __init__(self, api: JsonApi) -> None:
        self._api = api
        self._snapshots = SnapshotMemo()

    async def fetch(self) -> UpstreamSnapshot:
        user, settings, conversations = await gather_reads(
            self._api.get("/api/user/me", _USER),
            self._api.get("/api/user/settings", _SETTINGS),
            self._api.get("/api/conversations", _CONVERSATIONS),
        )
        return self._snapshots.get(
            (user, settings, conversations),
            lambda: UpstreamSnapshot(
                user=user.model_dump(by_alias=True),
                llm=settings.llm(),
                ui=settings.ui(),
                conversations=ItemList.from_items(c.item() for c in conversations),
            ),
        )

    def unwritable_reason(self, section: WritableSection, values: Mapping[str, Any]) -> str | None:
        """Why `values` cannot be stored here, or None: `defaultModelId` splits at the first
        `/`, so a provider with a `/` in it would come back as another provider."""
        provider = values.get("provider")
        if section == "llm" and isinstance(provider, str) and "/" in provider:
            return f"LibreChat's defaultModelId cannot hold provider {provider!r} (it has a '/')"
        return None

    async def write_settings(
        self, section: WritableSection, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        current = await self._api.get("/api/user/settings", _SETTINGS)
        if section == "llm":
            old = current.llm()
            previous = {field: getattr(old, field) for field in values}
            body = _llm_body(old, values)
        else:
            old_ui = current.ui()
            previous = {field: getattr(old_ui, field) for field in values}
            wire = {"theme": "theme", "font_size": "fontSize"}
            body = {wire[f]: v for f, v in values.items() if v is not None}
        answer = await self._api.post("/api/user/settings", body, _WRITE_ANSWER)
        if answer.success is False:
            raise UpstreamRejectedWrite(
                self.name, "POST /api/user/settings answered success: false"
            )
        return previous


def _llm_body(current: LlmValues, values: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if "provider" in values or "model" in values:
        model_id = join_model_id(
            values.get("provider", current.provider), values.get("model", current.model)
        )
        if model_id is None:
            # The design stores provider and model in one field: a provider alone has no home.
            raise UpstreamRejectedWrite("librechat", "a provider cannot be written without a model")
        body["defaultModelId"] = model_id
    if values.get("temperature") is not None:
        body["defaultTemperature"] = values["temperature"]
    if values.get("max_tokens") is not None:
        body["defaultMaxTokens"] = values["max_tokens"]
    return body
