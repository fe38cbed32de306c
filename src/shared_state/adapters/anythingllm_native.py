"""AnythingLLM, `native` flavour: the real developer API (`/api/v1/*`, AnythingLLM 1.16).

Reads `GET /api/v1/system` and `GET /api/v1/workspaces` with the API key, and the user
from `GET /api/system/refresh-user` when a login is configured; writes the LLM provider
and model with `POST /api/v1/system/update-env`, which takes strings only, stops at the
first invalid key and keeps the ones before it, so every write is read back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from pydantic import Field, TypeAdapter

from shared_state.adapters.http import JsonApi, gather_reads
from shared_state.adapters.memo import SnapshotMemo
from shared_state.adapters.wire import WireModel, WireUser
from shared_state.domain.items import ItemList
from shared_state.domain.models import (
    EmbeddingValues,
    LlmValues,
    SourceName,
    UpstreamSnapshot,
    VectorDbValues,
    WritableSection,
)
from shared_state.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamRejectedWrite,
    UpstreamResponseInvalid,
    UpstreamStatusError,
)

MODEL_PREF_KEYS: Mapping[str, str] = {
    "openai": "OpenAiModelPref",
    "azure": "AzureOpenAiModelPref",
    "anthropic": "AnthropicModelPref",
    "gemini": "GeminiLLMModelPref",
    "ollama": "OllamaLLMModelPref",
    "lmstudio": "LMStudioModelPref",
    "localai": "LocalAiModelPref",
    "generic-openai": "GenericOpenAiModelPref",
    "litellm": "LiteLLMModelPref",
    "openrouter": "OpenRouterModelPref",
    "groq": "GroqModelPref",
    "mistral": "MistralModelPref",
    "togetherai": "TogetherAiModelPref",
    "fireworksai": "FireworksAiLLMModelPref",
    "perplexity": "PerplexityModelPref",
    "cohere": "CohereModelPref",
    "deepseek": "DeepSeekModelPref",
    "xai": "XAIModelPref",
    "bedrock": "AwsBedrockLLMModel",
    "koboldcpp": "KoboldCPPModelPref",
    "novita": "NovitaLLMModelPref",
    "apipie": "ApipieLLMModelPref",
    "nvidia-nim": "NvidiaNimLLMModelPref",
    "ppio": "PPIOModelPref",
    "moonshotai": "MoonshotAiModelPref",
    "cometapi": "CometApiLLMModelPref",
    "foundry": "FoundryModelPref",
    "zai": "ZAiModelPref",
    "giteeai": "GiteeAIModelPref",
    "docker-model-runner": "DockerModelRunnerModelPref",
    "privatemode": "PrivateModeModelPref",
    "sambanova": "SambaNovaLLMModelPref",
    "lemonade": "LemonadeLLMModelPref",
    "omlx": "OMLXLLMModelPref",
    "minimax": "MinimaxModelPref",
    "cerebras": "CerebrasModelPref",
}
"""Which `update-env` key holds the model of each `LLMProvider` (read = write)."""

KEY_REFUSED_RETRY_S = 300.0
"""After the API key was refused (403), how long before the sidecar asks again."""


class _Settings(WireModel):
    llm_provider: str | None = Field(None, alias="LLMProvider")
    llm_model: str | None = Field(None, alias="LLMModel")
    embedding_engine: str | None = Field(None, alias="EmbeddingEngine")
    embedding_model: str | None = Field(None, alias="EmbeddingModelPref")
    vector_db: str | None = Field(None, alias="VectorDB")

    def model_pref(self, provider: str | None) -> Any:
        key = MODEL_PREF_KEYS.get(provider or "")
        return (self.model_extra or {}).get(key) if key else None

    def llm(self) -> LlmValues:
        # AnythingLLM has no global temperature or max tokens: those stay absent here, so
        # the merge asks LibreChat next.
        model = self.llm_model or self.model_pref(self.llm_provider)
        return LlmValues(
            provider=self.llm_provider, model=model if isinstance(model, str) else None
        )


class _SystemAnswer(WireModel):
    settings: _Settings


class _Workspace(WireModel):
    id: int | str
    slug: str | None = None
    name: str | None = None


class _WorkspacesAnswer(WireModel):
    workspaces: list[_Workspace] | None


class _UserAnswer(WireModel):
    success: bool | None = None
    user: WireUser | None = None


class _UpdateAnswer(WireModel):
    error: str | bool | None = None


_SYSTEM = TypeAdapter(_SystemAnswer)
_WORKSPACES = TypeAdapter(_WorkspacesAnswer)
_USER = TypeAdapter(_UserAnswer)
_AUTH = TypeAdapter(dict[str, Any])
_UPDATE = TypeAdapter(_UpdateAnswer)

_SYSTEM_PATH = "/api/v1/system"
_UPDATE_PATH = "/api/v1/system/update-env"
_USER_PATH = "/api/system/refresh-user"


class AnythingLLMNative:
    """AnythingLLM through its developer API (`/api/v1`), plus the user when logged in."""

    name: SourceName = "anythingllm"
    stored_fields: Mapping[WritableSection, frozenset[str]] = {
        "llm": frozenset({"provider", "model"})
    }

    def __init__(
        self,
        api: JsonApi,
        *,
        user_api: JsonApi | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._user_api = user_api  # JWT credentials, when ANYTHINGLLM_USERNAME is set
        self._clock = clock
        self._key_checked = False
        self._key_refused_until: float | None = None
        self._snapshots = SnapshotMemo()

    async def fetch(self) -> UpstreamSnapshot:
        await self._check_key()
        reads: list[Coroutine[Any, Any, Any]] = [
            self._api.get(_SYSTEM_PATH, _SYSTEM),
            self._api.get("/api/v1/workspaces", _WORKSPACES),
        ]
        if self._user_api is not None:
            reads.append(self._read_user(self._user_api))
        try:
            system, workspaces, *user = await gather_reads(*reads)
        except UpstreamStatusError as exc:
            if exc.status == 403:
                raise self._refused() from exc
            raise
        if workspaces.workspaces is None:
            raise UpstreamResponseInvalid(
                self.name, "GET /api/v1/workspaces answered workspaces: null (a database error)"
            )
        settings: _Settings = system.settings
        found_user = user[0] if user else None

        def build() -> UpstreamSnapshot:
            return UpstreamSnapshot(
                user=found_user.model_dump(by_alias=True) if found_user else None,
                llm=settings.llm(),
                embedding=EmbeddingValues(
                    provider=settings.embedding_engine, model=settings.embedding_model
                ),
                vector_db=VectorDbValues(provider=settings.vector_db),
                workspaces=ItemList.from_items(
                    w.model_dump(by_alias=True) for w in workspaces.workspaces
                ),
            )

        return self._snapshots.get((system, workspaces, found_user), build)

    async def _check_key(self) -> None:
        """`GET /api/v1/auth` once, and again only a while after the key was refused."""
        now = self._clock()
        if self._key_refused_until is not None and now < self._key_refused_until:
            raise UpstreamAuthError(
                self.name,
                "the API key was refused (403): check ANYTHINGLLM_API_KEY "
                f"(next check in {self._key_refused_until - now:.0f} s)",
            )
        if self._key_checked:
            return
        try:
            await self._api.get("/api/v1/auth", _AUTH)
        except UpstreamStatusError as exc:
            if exc.status == 403:
                raise self._refused() from exc
            raise
        self._key_checked = True
        self._key_refused_until = None

    def _refused(self) -> UpstreamAuthError:
        self._key_checked = False
        self._key_refused_until = self._clock() + KEY_REFUSED_RETRY_S
        return UpstreamAuthError(
            self.name, "the API key was refused (403): check ANYTHINGLLM_API_KEY"
        )

    @staticmethod
    async def _read_user(api: JsonApi) -> WireUser | None:
        answer = await api.get(_USER_PATH, _USER)
        if answer.success is False:
            # An expired session answers 200 with success: false; log in once more.
            await api.reject_credentials()
            answer = await api.get(_USER_PATH, _USER)
            if answer.success is False:
                raise UpstreamAuthError("anythingllm", f"GET {_USER_PATH} refused the session")
        # Single-user mode answers user: null: AnythingLLM's side of `user` stays null.
        return answer.user

    async def write_settings(
        self, section: WritableSection, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        before = (await self._api.get(_SYSTEM_PATH, _SYSTEM)).settings
        previous = {field: getattr(before.llm(), field) for field in values}
        body = self._update_body(values, before)
        try:
            await self._apply(body, values, values.get("provider", before.llm_provider))
        except UpstreamError:
            # update-env keeps the keys before the first invalid one: put them back.
            restore = {k: v for k, v in previous.items() if v is not None}
            if restore:
                # Best effort: when this fails too, the next sync shows what AnythingLLM holds.
                with contextlib.suppress(UpstreamError):
                    restore_body = self._update_body(restore, before)
                    await self._apply(restore_body, restore, before.llm_provider)
            raise
        return previous

    def unwritable_reason(self, section: WritableSection, values: Mapping[str, Any]) -> str | None:
        """Why `values` cannot be stored here (a provider without a model key), or None:
        propagation asks before writing, rather than guess."""
        provider = values.get("provider")
        if section == "llm" and provider is not None and provider not in MODEL_PREF_KEYS:
            return f"AnythingLLM has no LLM provider {provider!r}"
        return None

    @staticmethod
    def _update_body(values: Mapping[str, Any], current: _Settings) -> dict[str, str]:
        """The update-env body: strings only; the model key before `LLMProvider`, so a
        refused provider leaves at most an inactive provider's model changed."""
        provider = values.get("provider", current.llm_provider)
        body: dict[str, str] = {}
        if values.get("model") is not None:
            key = MODEL_PREF_KEYS.get(provider or "")
            if key is None:
                raise UpstreamRejectedWrite(
                    "anythingllm", f"no model setting is known for LLM provider {provider!r}"
                )
            body[key] = str(values["model"])
        if values.get("provider") is not None:
            body["LLMProvider"] = str(values["provider"])
        return body

    async def _apply(self, body: dict[str, str], values: Mapping[str, Any], provider: Any) -> None:
        answer = await self._api.post(_UPDATE_PATH, body, _UPDATE)
        if answer.error is not False:
            # Never log or show `newValues`: it echoes what was written, secrets included.
            reason = str(answer.error).splitlines()[0][:200] if answer.error else "no error field"
            raise UpstreamRejectedWrite(self.name, f"update-env refused the write: {reason}")
        after = (await self._api.get(_SYSTEM_PATH, _SYSTEM)).settings
        if "provider" in values and after.llm_provider != values["provider"]:
            raise UpstreamRejectedWrite(self.name, "update-env did not apply LLMProvider")
        if "model" in values and after.model_pref(provider) != values["model"]:
            raise UpstreamRejectedWrite(self.name, "update-env did not apply the model")
