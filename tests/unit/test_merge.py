"""The merge rules of contract §4: which upstream wins each field, and the defaults."""

from __future__ import annotations

from typing import Any

import pytest

from shared_state.domain.merge import merge
from shared_state.domain.models import (
    EmbeddingValues,
    LlmValues,
    LocalSettings,
    SharedState,
    SourceStatus,
    UiValues,
    UpstreamSnapshot,
    VectorDbValues,
)

A_USER: dict[str, Any] = {"id": 1, "username": "ada", "role": "admin"}
LC_USER: dict[str, Any] = {
    "id": "665f",
    "username": "ada-lc",
    "email": "ada@example.com",
    "name": "Ada",
    "role": "USER",
}
A_WORKSPACES: list[dict[str, Any]] = [{"id": 1, "name": "Research", "slug": "research"}]
LC_CONVERSATIONS: list[dict[str, Any]] = [{"id": "c-1", "title": "Quarterly plan"}]

# AnythingLLM's view: its ui and conversations must never reach the merged state.
A = UpstreamSnapshot(
    user=A_USER,
    llm=LlmValues(provider="openai", model="gpt-4o", temperature=0.2, max_tokens=8000),
    ui=UiValues(theme="light", font_size="small"),
    embedding=EmbeddingValues(provider="ollama", model="nomic-embed-text"),
    vector_db=VectorDbValues(provider="pgvector", settings={"table": "docs"}),
    workspaces=A_WORKSPACES,
    conversations=[{"id": "a-conv"}],
)
# LibreChat's view: its embedding, vector db and workspaces must never reach the state.
LC = UpstreamSnapshot(
    user=LC_USER,
    llm=LlmValues(provider="anthropic", model="claude-3-5", temperature=0.9, max_tokens=1000),
    ui=UiValues(theme="dark", font_size="large"),
    embedding=EmbeddingValues(provider="cohere", model="embed-english"),
    vector_db=VectorDbValues(provider="chroma", settings={"host": "chroma"}),
    workspaces=[{"id": "lc-ws"}],
    conversations=LC_CONVERSATIONS,
)
LOCAL = LocalSettings(
    llm=LlmValues(provider="local-provider", model="local-model", temperature=1.5, max_tokens=123),
    ui=UiValues(theme="light", font_size="small"),
)
EMPTY = UpstreamSnapshot()


def _llm(**values: Any) -> UpstreamSnapshot:
    return UpstreamSnapshot(llm=LlmValues(**values))


def _at(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data[key]
    return data


MERGE_TABLE = [
    # llm: AnythingLLM, then LibreChat, then local, then the default.
    pytest.param(A, LC, LOCAL, "settings.llm.provider", "openai", id="provider-anythingllm"),
    pytest.param(None, LC, LOCAL, "settings.llm.provider", "anthropic", id="provider-librechat"),
    pytest.param(None, None, LOCAL, "settings.llm.provider", "local-provider", id="provider-local"),
    pytest.param(None, None, None, "settings.llm.provider", None, id="provider-default"),
    pytest.param(A, LC, LOCAL, "settings.llm.model", "gpt-4o", id="model-anythingllm"),
    pytest.param(EMPTY, LC, LOCAL, "settings.llm.model", "claude-3-5", id="model-librechat"),
    pytest.param(EMPTY, EMPTY, LOCAL, "settings.llm.model", "local-model", id="model-local"),
    pytest.param(EMPTY, EMPTY, None, "settings.llm.model", None, id="model-default"),
    pytest.param(A, LC, LOCAL, "settings.llm.temperature", 0.2, id="temperature-anythingllm"),
    pytest.param(None, LC, LOCAL, "settings.llm.temperature", 0.9, id="temperature-librechat"),
    pytest.param(None, None, LOCAL, "settings.llm.temperature", 1.5, id="temperature-local"),
    pytest.param(None, None, None, "settings.llm.temperature", 0.7, id="temperature-default"),
    pytest.param(A, LC, LOCAL, "settings.llm.maxTokens", 8000, id="max-tokens-anythingllm"),
    pytest.param(None, LC, LOCAL, "settings.llm.maxTokens", 1000, id="max-tokens-librechat"),
    pytest.param(None, None, LOCAL, "settings.llm.maxTokens", 123, id="max-tokens-local"),
    pytest.param(None, None, None, "settings.llm.maxTokens", 4096, id="max-tokens-default"),
    # 0 and "" are values, not absent: the next source is not asked.
    pytest.param(
        _llm(temperature=0.0), LC, LOCAL, "settings.llm.temperature", 0.0, id="temperature-zero"
    ),
    pytest.param(
        None, _llm(temperature=0.0), LOCAL, "settings.llm.temperature", 0.0, id="lc-temp-zero"
    ),
    pytest.param(_llm(model=""), LC, LOCAL, "settings.llm.model", "", id="model-empty-string"),
    pytest.param(_llm(provider=""), LC, None, "settings.llm.provider", "", id="provider-empty"),
    pytest.param(_llm(max_tokens=0), LC, LOCAL, "settings.llm.maxTokens", 0, id="max-tokens-zero"),
    # Each field falls back on its own.
    pytest.param(
        _llm(provider="openai"), LC, None, "settings.llm.model", "claude-3-5", id="field-by-field"
    ),
    # user: AnythingLLM, then LibreChat, field by field; null when neither knows the user.
    pytest.param(A, LC, None, "user.id", 1, id="user-id-anythingllm"),
    pytest.param(A, LC, None, "user.username", "ada", id="user-username-anythingllm"),
    pytest.param(A, LC, None, "user.role", "admin", id="user-role-anythingllm"),
    pytest.param(A, LC, None, "user.email", "ada@example.com", id="user-email-librechat"),
    pytest.param(A, LC, None, "user.name", "Ada", id="user-name-librechat"),
    pytest.param(None, LC, None, "user.id", "665f", id="user-id-librechat"),
    pytest.param(A, None, None, "user.email", None, id="user-email-unknown"),
    pytest.param(A, LC, None, "user.anythingLLM", A_USER, id="user-anythingllm-member"),
    pytest.param(A, LC, None, "user.libreChat", LC_USER, id="user-librechat-member"),
    pytest.param(A, None, None, "user.libreChat", None, id="user-librechat-member-null"),
    pytest.param(None, LC, None, "user.anythingLLM", None, id="user-anythingllm-member-null"),
    pytest.param(EMPTY, EMPTY, None, "user", None, id="user-null-when-unknown"),
    pytest.param(None, None, None, "user", None, id="user-null-when-both-missing"),
    # embedding and vectorDb: AnythingLLM only.
    pytest.param(A, LC, None, "settings.embedding.provider", "ollama", id="embedding-provider"),
    pytest.param(A, LC, None, "settings.embedding.model", "nomic-embed-text", id="embed-model"),
    pytest.param(None, LC, None, "settings.embedding.provider", "openai", id="embed-prov-default"),
    pytest.param(
        None, LC, None, "settings.embedding.model", "text-embedding-ada-002", id="embed-default"
    ),
    pytest.param(A, LC, None, "settings.vectorDb.provider", "pgvector", id="vector-db-provider"),
    pytest.param(A, LC, None, "settings.vectorDb.settings", {"table": "docs"}, id="vdb-settings"),
    pytest.param(None, LC, None, "settings.vectorDb.provider", "lancedb", id="vdb-prov-default"),
    pytest.param(None, LC, None, "settings.vectorDb.settings", {}, id="vdb-settings-default"),
    # ui: LibreChat, then local, then the default; AnythingLLM's ui is ignored.
    pytest.param(A, LC, LOCAL, "settings.ui.theme", "dark", id="theme-librechat"),
    pytest.param(A, LC, LOCAL, "settings.ui.fontSize", "large", id="font-size-librechat"),
    pytest.param(A, None, LOCAL, "settings.ui.theme", "light", id="theme-local"),
    pytest.param(A, EMPTY, LOCAL, "settings.ui.fontSize", "small", id="font-size-local"),
    pytest.param(A, None, None, "settings.ui.theme", "system", id="theme-default"),
    pytest.param(A, None, None, "settings.ui.fontSize", "medium", id="font-size-default"),
    # workspaces from AnythingLLM, conversations from LibreChat.
    pytest.param(A, LC, None, "workspaces", A_WORKSPACES, id="workspaces-anythingllm"),
    pytest.param(None, LC, None, "workspaces", [], id="workspaces-default"),
    pytest.param(A, LC, None, "conversations", LC_CONVERSATIONS, id="conversations-librechat"),
    pytest.param(A, None, None, "conversations", [], id="conversations-default"),
    pytest.param(A, EMPTY, None, "conversations", [], id="conversations-lc-without-list"),
]


@pytest.mark.parametrize(("anythingllm", "librechat", "local", "path", "expected"), MERGE_TABLE)
def test_merge_takes_each_field_from_the_first_source_that_has_it(
    anythingllm: UpstreamSnapshot | None,
    librechat: UpstreamSnapshot | None,
    local: LocalSettings | None,
    path: str,
    expected: Any,
) -> None:
    """Each merged field comes from the first source in the contract's order that has a value."""
    merged = merge(anythingllm, librechat, local).model_dump(by_alias=True)

    assert _at(merged, path) == expected


def test_merge_of_two_missing_upstreams_is_the_documented_default_state() -> None:
    """With neither upstream nor local settings, every section holds its documented default."""
    merged = merge(None, None).model_dump(by_alias=True)

    assert merged == {
        "user": None,
        "settings": {
            "llm": {"provider": None, "model": None, "temperature": 0.7, "maxTokens": 4096},
            "embedding": {"provider": "openai", "model": "text-embedding-ada-002"},
            "ui": {"theme": "system", "fontSize": "medium"},
            "vectorDb": {"provider": "lancedb", "settings": {}},
        },
        "workspaces": [],
        "conversations": [],
    }


def test_merge_of_both_upstreams_gives_the_whole_user_object() -> None:
    """The merged user combines both upstreams and keeps each side's own object."""
    user = merge(A, LC).model_dump(by_alias=True)["user"]

    assert user == {
        "id": 1,
        "username": "ada",
        "email": "ada@example.com",
        "name": "Ada",
        "role": "admin",
        "anythingLLM": A_USER,
        "libreChat": LC_USER,
    }


@pytest.mark.parametrize(
    ("anythingllm", "librechat"),
    [
        pytest.param(A, LC, id="both"),
        pytest.param(A, None, id="librechat-missing"),
        pytest.param(None, LC, id="anythingllm-missing"),
        pytest.param(None, None, id="both-missing"),
    ],
)
def test_merged_data_always_has_the_full_camel_case_shape(
    anythingllm: UpstreamSnapshot | None, librechat: UpstreamSnapshot | None
) -> None:
    """Whichever upstreams are present, every section and setting of contract §4 is there."""
    merged = merge(anythingllm, librechat).model_dump(by_alias=True)

    assert set(merged) == {"user", "settings", "workspaces", "conversations"}
    assert set(merged["settings"]) == {"llm", "embedding", "ui", "vectorDb"}
    assert set(merged["settings"]["llm"]) == {"provider", "model", "temperature", "maxTokens"}
    assert set(merged["settings"]["embedding"]) == {"provider", "model"}
    assert set(merged["settings"]["ui"]) == {"theme", "fontSize"}
    assert set(merged["settings"]["vectorDb"]) == {"provider", "settings"}


def test_merged_user_has_the_camel_case_members_of_the_contract() -> None:
    """A known user serialises with the five fields and the `anythingLLM`/`libreChat` members."""
    user = merge(None, LC).model_dump(by_alias=True)["user"]

    assert set(user) == {"id", "username", "email", "name", "role", "anythingLLM", "libreChat"}


def test_shared_state_serialises_with_the_contract_top_level_keys() -> None:
    """A `SharedState` dumps the top-level and source keys of contract §4 in camelCase."""
    state = SharedState(sources={"anythingllm": SourceStatus(status="pending")})

    dumped = state.model_dump(by_alias=True)

    assert set(dumped) == {
        "version",
        "syncTimestamp",
        "user",
        "settings",
        "workspaces",
        "conversations",
        "sources",
    }
    assert dumped["version"] == 0
    assert dumped["syncTimestamp"] is None
    assert dumped["sources"] == {
        "anythingllm": {
            "status": "pending",
            "lastSuccessAt": None,
            "lastAttemptAt": None,
            "lastError": None,
        }
    }


def test_merge_does_not_mutate_its_inputs() -> None:
    """Merging leaves the upstream snapshots exactly as they were."""
    before = (A.model_dump(), LC.model_dump())

    merge(A, LC, LOCAL)

    assert (A.model_dump(), LC.model_dump()) == before
