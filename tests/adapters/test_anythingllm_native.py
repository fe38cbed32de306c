"""AnythingLLM `native` adapter against a fake of AnythingLLM 1.16's real API, built from
recorded-shape fixtures: wrappers, string-only update-env, read-back, login, the key check."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared_state.adapters.anythingllm_auth import AnythingLLMLogin
from shared_state.adapters.anythingllm_native import MODEL_PREF_KEYS, AnythingLLMNative
from shared_state.adapters.http import JsonApi, RetryPolicy
from shared_state.errors import (
    UpstreamAuthError,
    UpstreamRejectedWrite,
    UpstreamResponseInvalid,
)

FIXTURES = Path(__file__).parent / "fixtures" / "anythingllm-1.16"
API_KEY = "XXXXXXX-XXXXXXX-XXXXXXX-XXXXXXX"
SUPPORTED = {"openai", "anthropic", "ollama", "azure", "gemini"}
HTML = "<!doctype html><html><body><div id=root></div></body></html>"


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class FakeAnythingLLM:
    """AnythingLLM 1.16 as its source code answers: API-key routes, update-env that takes
    strings only and stops at the first invalid key, HTML 200 for unknown paths."""

    def __init__(self) -> None:
        self.settings: dict[str, Any] = _fixture("system.json")["settings"]
        self.workspaces: Any = _fixture("workspaces.json")["workspaces"]
        self.valid_key = API_KEY
        self.jwt_valid = True
        self.calls: list[str] = []
        self.updates: list[dict[str, Any]] = []
        self.logins = 0
        self.html_everywhere = False  # as a proxy or a wrong base URL would answer
        self.ignore_updates = False  # answers error: false but applies nothing

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(f"{request.method} {path}")
        if self.html_everywhere:
            return httpx.Response(200, text=HTML, headers={"content-type": "text/html"})
        if path == "/api/request-token":
            return self._login(json.loads(request.content))
        if path == "/api/system/refresh-user":
            if request.headers.get("authorization") != "Bearer jwt-1" or not self.jwt_valid:
                return httpx.Response(
                    200, json={"success": False, "user": None, "message": "Session expired."}
                )
            return httpx.Response(200, json=_fixture("refresh-user.json"))
        if path.startswith("/api/v1/"):
            if request.headers.get("authorization") != f"Bearer {self.valid_key}":
                return httpx.Response(403, json={"error": "No valid api key found."})
            if path == "/api/v1/auth":
                return httpx.Response(200, json={"authenticated": True})
            if path == "/api/v1/system":
                return httpx.Response(200, json={"settings": self.settings})
            if path == "/api/v1/workspaces":
                return httpx.Response(200, json={"workspaces": self.workspaces})
            if path == "/api/v1/system/update-env" and request.method == "POST":
                return self._update_env(json.loads(request.content))
        return httpx.Response(200, text=HTML, headers={"content-type": "text/html"})

    def _login(self, body: dict[str, str]) -> httpx.Response:
        self.logins += 1
        if body == {"username": "admin", "password": "pw"}:
            return httpx.Response(
                200, json={"valid": True, "user": {"id": 1}, "token": "jwt-1", "message": None}
            )
        return httpx.Response(
            200,
            json={
                "user": None,
                "valid": False,
                "token": None,
                "message": "[001] Invalid login credentials.",
            },
        )

    def _update_env(self, body: dict[str, Any]) -> httpx.Response:
        self.updates.append(body)
        if self.ignore_updates:
            return httpx.Response(200, json={"newValues": {}, "error": False})
        if any(not isinstance(value, str) for value in body.values()):
            return httpx.Response(500, text="Internal Server Error")  # `.includes` on a number
        applied: dict[str, str] = {}
        for key, value in body.items():
            if key == "LLMProvider" and value not in SUPPORTED:
                return httpx.Response(
                    200, json={"newValues": applied, "error": f"{value} is not a valid LLM."}
                )
            self.settings[key] = value
            applied[key] = value
        pref = MODEL_PREF_KEYS.get(self.settings["LLMProvider"])
        self.settings["LLMModel"] = self.settings.get(pref or "")
        return httpx.Response(200, json={"newValues": applied, "error": False})


@pytest.fixture
def upstream() -> FakeAnythingLLM:
    return FakeAnythingLLM()


@pytest.fixture
async def client(upstream: FakeAnythingLLM) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url="http://anythingllm.test",
        headers={"Authorization": f"Bearer {API_KEY}"},
        transport=httpx.MockTransport(upstream.handle),
    ) as client:
        yield client


def _adapter(client: httpx.AsyncClient, *, login: bool = False) -> AnythingLLMNative:
    retry = RetryPolicy(attempts=2, wait_initial_s=0, wait_max_s=0, timeout_s=5)
    user_api = None
    if login:
        session = AnythingLLMLogin(
            JsonApi(client, source="anythingllm"), username="admin", password="pw"
        )
        user_api = JsonApi(client, source="anythingllm", retry=retry, credentials=session)
    return AnythingLLMNative(JsonApi(client, source="anythingllm", retry=retry), user_api=user_api)


async def test_fetch_reads_settings_and_workspaces_from_the_developer_api(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """`/api/v1/system` gives provider, model, embedding and vector DB; workspaces keep fields."""
    snapshot = await _adapter(client).fetch()
    assert (snapshot.llm.provider, snapshot.llm.model) == ("openai", "gpt-4o-mini")
    assert (snapshot.llm.temperature, snapshot.llm.max_tokens) == (None, None)
    assert (snapshot.embedding.provider, snapshot.embedding.model) == (
        "native",
        "Xenova/all-MiniLM-L6-v2",
    )
    assert snapshot.vector_db.provider == "lancedb"
    assert snapshot.vector_db.settings is None
    assert snapshot.user is None
    assert snapshot.workspaces is not None
    assert [w["id"] for w in snapshot.workspaces] == [79, 80]
    assert snapshot.workspaces[0]["threads"] == [
        {"user_id": None, "slug": "3f2c9a1e-thread", "name": "Thread"}
    ]
    assert upstream.calls[0] == "GET /api/v1/auth"
    assert "OpenAiKey" not in snapshot.model_dump_json()


async def test_the_key_is_checked_once_not_on_every_sync(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """`GET /api/v1/auth` runs at the first fetch only."""
    adapter = _adapter(client)
    await adapter.fetch()
    await adapter.fetch()
    assert upstream.calls.count("GET /api/v1/auth") == 1


async def test_a_refused_key_is_a_configuration_error_not_retried_at_once(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """A 403 says to check ANYTHINGLLM_API_KEY, and the next fetch does not ask again."""
    upstream.valid_key = "another-key"
    adapter = _adapter(client)
    with pytest.raises(UpstreamAuthError, match="ANYTHINGLLM_API_KEY"):
        await adapter.fetch()
    calls = len(upstream.calls)
    with pytest.raises(UpstreamAuthError, match="next check in"):
        await adapter.fetch()
    assert len(upstream.calls) == calls
    assert upstream.calls == ["GET /api/v1/auth"]


@pytest.mark.parametrize(
    ("provider", "pref_key", "model"),
    [
        ("anthropic", "AnthropicModelPref", "claude-sonnet-4-6"),
        ("ollama", "OllamaLLMModelPref", "llama3.1:8b"),
    ],
)
async def test_without_llm_model_the_active_providers_pref_is_the_model(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM, provider: str, pref_key: str, model: str
) -> None:
    """Older servers lack `LLMModel`: the model is the `*ModelPref` of `LLMProvider`."""
    del upstream.settings["LLMModel"]
    upstream.settings["LLMProvider"] = provider
    upstream.settings[pref_key] = model
    snapshot = await _adapter(client).fetch()
    assert (snapshot.llm.provider, snapshot.llm.model) == (provider, model)


async def test_workspaces_null_is_a_failure_not_an_empty_list(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """AnythingLLM answers `workspaces: null` on a database error: never data."""
    upstream.workspaces = None
    with pytest.raises(UpstreamResponseInvalid, match="null"):
        await _adapter(client).fetch()


async def test_html_for_a_missing_route_is_a_failure(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """The SPA's 200 HTML (as for any path AnythingLLM lacks) is never taken as data."""
    adapter = _adapter(client)
    await adapter.fetch()
    upstream.html_everywhere = True
    with pytest.raises(UpstreamResponseInvalid, match="text/html"):
        await adapter.fetch()


async def test_the_user_comes_from_a_login_when_credentials_are_set(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """With a username and password, the user is read from refresh-user with a cached JWT."""
    adapter = _adapter(client, login=True)
    first = await adapter.fetch()
    await adapter.fetch()
    assert first.user is not None
    assert (first.user["id"], first.user["username"], first.user["role"]) == (1, "admin", "admin")
    assert upstream.logins == 1


async def test_an_expired_session_logs_in_again_once(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """refresh-user's 200 `success: false` makes the session log in again, once."""
    adapter = _adapter(client, login=True)
    await adapter.fetch()
    upstream.jwt_valid = False
    with pytest.raises(UpstreamAuthError):
        await adapter.fetch()
    assert upstream.logins == 2


async def test_a_refused_login_is_an_auth_error_with_anythingllms_reason(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """A wrong password says why (AnythingLLM's fixed message), never the password."""
    session = AnythingLLMLogin(
        JsonApi(client, source="anythingllm"), username="admin", password="nope"
    )
    adapter = AnythingLLMNative(
        JsonApi(client, source="anythingllm"),
        user_api=JsonApi(client, source="anythingllm", credentials=session),
    )
    with pytest.raises(UpstreamAuthError, match="Invalid login credentials") as caught:
        await adapter.fetch()
    assert "nope" not in str(caught.value)


async def test_a_write_sends_strings_model_key_first_and_is_read_back(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """Provider and model go to `LLMProvider` and that provider's `*ModelPref`, as strings."""
    previous = await _adapter(client).write_settings(
        "llm", {"provider": "anthropic", "model": "claude-opus-4"}
    )
    assert previous == {"provider": "openai", "model": "gpt-4o-mini"}
    assert upstream.updates == [{"AnthropicModelPref": "claude-opus-4", "LLMProvider": "anthropic"}]
    assert list(upstream.updates[0]) == ["AnthropicModelPref", "LLMProvider"]
    assert upstream.settings["LLMModel"] == "claude-opus-4"


async def test_a_model_only_write_goes_to_the_current_providers_key(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """Without a provider, the model is the active provider's model."""
    await _adapter(client).write_settings("llm", {"model": "gpt-4.1"})
    assert upstream.updates == [{"OpenAiModelPref": "gpt-4.1"}]


async def test_writing_back_the_previous_values_restores_the_upstream(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """The returned previous values undo the write."""
    adapter = _adapter(client)
    previous = await adapter.write_settings("llm", {"provider": "ollama", "model": "llama3.1"})
    await adapter.write_settings("llm", previous)
    assert (upstream.settings["LLMProvider"], upstream.settings["LLMModel"]) == (
        "openai",
        "gpt-4o-mini",
    )


async def test_update_env_stopping_at_an_invalid_key_is_detected_and_undone(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """The model key lands, the provider is refused: the write fails and the model is put back."""
    with pytest.raises(UpstreamRejectedWrite, match="is not a valid LLM"):
        await _adapter(client).write_settings(
            "llm", {"provider": "cerebras", "model": "llama-3.3-70b"}
        )
    assert upstream.updates[0] == {"CerebrasModelPref": "llama-3.3-70b", "LLMProvider": "cerebras"}
    assert upstream.settings["LLMProvider"] == "openai"
    assert upstream.settings["OpenAiModelPref"] == "gpt-4o-mini"


async def test_a_write_that_reads_back_different_is_a_failure(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """`error: false` is not enough: a value that did not stick fails the write."""
    upstream.ignore_updates = True
    with pytest.raises(UpstreamRejectedWrite, match="did not apply"):
        await _adapter(client).write_settings("llm", {"model": "gpt-4.1"})


async def test_a_provider_without_a_known_model_key_is_refused_before_sending(
    client: httpx.AsyncClient, upstream: FakeAnythingLLM
) -> None:
    """An unknown provider cannot say where its model goes: nothing is sent."""
    with pytest.raises(UpstreamRejectedWrite, match="no model setting"):
        await _adapter(client).write_settings("llm", {"provider": "acme", "model": "m1"})
    assert upstream.updates == []


async def test_temperature_is_not_stored_by_anythingllm() -> None:
    """AnythingLLM has no global temperature or max tokens: only provider and model."""
    assert AnythingLLMNative.stored_fields == {"llm": frozenset({"provider", "model"})}
