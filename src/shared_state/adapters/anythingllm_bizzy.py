"""AnythingLLM, `bizzy` flavour: the paths of the BizzyPerson platform's design.

`GET /api/me`, `GET /api/system/settings`, `GET /api/workspaces`, and writes to
`POST /api/system/update` (contract §7). Real AnythingLLM has none of these but the
last; the `native` flavour speaks its real API.
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
    EmbeddingValues,
    LlmValues,
    SourceName,
    UpstreamSnapshot,
    VectorDbValues,
    WritableSection,
)
from shared_state.errors import UpstreamRejectedWrite


class _Settings(WireModel):
    llm_provider: str | None = Field(None, alias="LLMProvider")
    model: str | None = Field(None, alias="OpenAiModelPref")
    temperature: float | None = Field(None, alias="Temperature")
    max_tokens: int | None = Field(None, alias="MaxTokens")
    embedding_engine: str | None = Field(None, alias="EmbeddingEngine")
    embedding_model: str | None = Field(None, alias="EmbeddingModel")
    vector_db: str | None = Field(None, alias="VectorDB")
    vector_db_settings: dict[str, Any] | None = Field(None, alias="VectorDBSettings")

    def llm(self) -> LlmValues:
        return LlmValues(
            provider=self.llm_provider,
            model=self.model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )


class _Workspace(WireModel):
    id: int | str | None = None
    slug: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _has_identity(self) -> _Workspace:
        if self.id is None and self.slug is None:
            raise ValueError("a workspace needs an id or a slug")
        return self

    def item(self) -> dict[str, Any]:
        item = self.model_dump(by_alias=True)
        if item["id"] is None:
            item["id"] = self.slug
        return item


_USER = TypeAdapter(WireUser)
_SETTINGS = TypeAdapter(_Settings)
_WORKSPACES = TypeAdapter(list[_Workspace])
_WRITE_ANSWER = TypeAdapter(WriteAnswer)

_LLM_WIRE_NAMES = {
    "provider": "LLMProvider",
    "model": "OpenAiModelPref",  # the design always writes the model here
    "temperature": "Temperature",
    "max_tokens": "MaxTokens",
}


class AnythingLLMBizzy:
    """AnythingLLM through the BizzyPerson design's paths."""

    name: SourceName = "anythingllm"
    stored_fields: Mapping[WritableSection, frozenset[str]] = {"llm": frozenset(_LLM_WIRE_NAMES)}

    def __init__(self, api: JsonApi) -> None:
        self._api = api
        self._snapshots = SnapshotMemo()

    async def fetch(self) -> UpstreamSnapshot:
        user, settings, workspaces = await gather_reads(
            self._api.get("/api/me", _USER),
            self._api.get("/api/system/settings", _SETTINGS),
            self._api.get("/api/workspaces", _WORKSPACES),
        )
        return self._snapshots.get(
            (user, settings, workspaces),
            lambda: UpstreamSnapshot(
                user=user.model_dump(by_alias=True),
                llm=settings.llm(),
                embedding=EmbeddingValues(
                    provider=settings.embedding_engine, model=settings.embedding_model
                ),
                vector_db=VectorDbValues(
                    provider=settings.vector_db, settings=settings.vector_db_settings
                ),
                workspaces=ItemList.from_items(workspace.item() for workspace in workspaces),
            ),
        )

    async def write_settings(
        self, section: WritableSection, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        current = (await self._api.get("/api/system/settings", _SETTINGS)).llm()
        previous = {field: getattr(current, field) for field in values}
        body = {
            _LLM_WIRE_NAMES[field]: value for field, value in values.items() if value is not None
        }
        answer = await self._api.post("/api/system/update", body, _WRITE_ANSWER)
        if answer.success is False:
            raise UpstreamRejectedWrite(
                self.name, "POST /api/system/update answered success: false"
            )
        return previous
