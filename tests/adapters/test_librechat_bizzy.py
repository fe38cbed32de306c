"""The bizzy LibreChat adapter on the wire: `GET /api/user/me`, `GET /api/user/settings`,
`GET /api/conversations` into an `UpstreamSnapshot`, and LLM and UI writes to
`POST /api/user/settings` with the model as `provider/model` (contract §7)."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
import respx

from shared_state.adapters.http import JsonApi, RetryPolicy
from shared_state.adapters.librechat_bizzy import LibreChatBizzy
from shared_state.domain.models import (
    EmbeddingValues,
    LlmValues,
    UiValues,
    VectorDbValues,
    WritableSection,
)
from shared_state.errors import (
    UpstreamRejectedWrite,
    UpstreamResponseInvalid,
    UpstreamStatusError,
    UpstreamUnavailable,
)

BASE_URL = "http://librechat.test"
CANARY = "CANARY-lc-90d4"
SECRETS = (f"$2a$10${CANARY}-hash", f"{CANARY}-refresh", f"{CANARY}-totp")


def user_body() -> dict[str, Any]:
    return {
        "id": "665f1c2ab7e4a1d2c3b4a5f6",
        "username": "ada",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "role": "USER",
        "provider": "local",
        "emailVerified": True,
        "password": SECRETS[0],
        "refreshToken": SECRETS[1],
        "totpSecret": SECRETS[2],
    }


def settings_body(**overrides: Any) -> dict[str, Any]:
    return {
        "defaultModelId": "openai/gpt-4o",
        "defaultTemperature": 0.7,
        "defaultMaxTokens": 4096,
        "theme": "dark",
        "fontSize": "medium",
        **overrides,
    }


def conversations_body() -> list[dict[str, Any]]:
    return [
        {
            "conversationId": "c-1",
            "title": "Quarterly plan",
            "endpoint": "openAI",
            "model": "gpt-4o",
            "messageCount": 14,
            "updatedAt": "2026-11-20T09:30:00.000Z",
        },
        {
            "conversationId": "c-2",
            "title": "Llama notes",
            "endpoint": "openrouter",
            "model": "meta-llama/llama-3-70b",
            "messageCount": 3,
            "updatedAt": "2026-11-19T17:05:00.000Z",
        },
    ]


def serve_all(wire: respx.MockRouter, settings: dict[str, Any] | None = None) -> list[respx.Route]:
    """Answer the three reads with the realistic bodies above."""
    return [
        wire.get("/api/user/me").respond(200, json=user_body()),
        wire.get("/api/user/settings").respond(200, json=settings or settings_body()),
        wire.get("/api/conversations").respond(200, json=conversations_body()),
    ]


class FakeLibreChat:
    """A stateful LibreChat settings store behind `httpx.MockTransport`."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.posted: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/api/user/settings":
            return httpx.Response(404, json={"error": "not found"})
        if request.method == "POST":
            body = json.loads(request.content)
            self.posted.append(body)
            self.settings.update(body)
        return httpx.Response(200, json=self.settings)


async def round_trip(
    retry_policy: RetryPolicy, fake: FakeLibreChat, section: WritableSection, values: dict[str, Any]
) -> dict[str, Any]:
    """Write `values`, then write back what the write returned; return that."""
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(fake.handle), base_url=BASE_URL
    ) as client:
        adapter = LibreChatBizzy(JsonApi(client, source="librechat", retry=retry_policy))
        previous = await adapter.write_settings(section, values)
        await adapter.write_settings(section, previous)
    return previous


# --- fetch: the happy path ----------------------------------------------------------------


async def test_fetch_reads_user_settings_and_conversations_into_a_snapshot(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """The three reads become the user, LLM and UI settings, and the conversations."""
    serve_all(librechat_wire)

    snapshot = await librechat.fetch()

    assert snapshot.user == {
        "id": "665f1c2ab7e4a1d2c3b4a5f6",
        "username": "ada",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "role": "USER",
        "provider": "local",
        "emailVerified": True,
    }
    assert snapshot.llm == LlmValues(
        provider="openai", model="gpt-4o", temperature=0.7, max_tokens=4096
    )
    assert snapshot.ui == UiValues(theme="dark", font_size="medium")
    assert snapshot.embedding == EmbeddingValues()
    assert snapshot.vector_db == VectorDbValues()
    assert snapshot.workspaces is None


async def test_fetch_uses_the_conversation_id_as_id(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """Each conversation keeps its fields and gets its `conversationId` as `id`."""
    serve_all(librechat_wire)

    snapshot = await librechat.fetch()

    assert snapshot.conversations is not None
    assert [c["id"] for c in snapshot.conversations] == ["c-1", "c-2"]
    assert snapshot.conversations[0] == {
        "id": "c-1",
        "conversationId": "c-1",
        "title": "Quarterly plan",
        "endpoint": "openAI",
        "model": "gpt-4o",
        "messageCount": 14,
        "updatedAt": "2026-11-20T09:30:00.000Z",
    }


async def test_fetch_keeps_a_conversation_that_only_has_an_id(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """A conversation named by `id` alone keeps that `id` and gains no `conversationId`."""
    serve_all(librechat_wire)
    librechat_wire.get("/api/conversations").respond(200, json=[{"id": "c-9", "title": "Imported"}])

    snapshot = await librechat.fetch()

    assert snapshot.conversations == [{"id": "c-9", "title": "Imported"}]


async def test_fetch_leaves_no_secret_in_the_snapshot(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """The password hash, refresh token and TOTP secret never reach the JSON."""
    serve_all(librechat_wire)

    dumped = (await librechat.fetch()).model_dump_json()

    for secret in SECRETS:
        assert secret not in dumped
    assert CANARY not in dumped
    assert "refreshToken" not in dumped


async def test_fetch_splits_a_model_id_at_the_first_slash_only(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """`openrouter/meta-llama/llama-3-70b` is provider `openrouter`, model `meta-llama/...`."""
    serve_all(librechat_wire, settings_body(defaultModelId="openrouter/meta-llama/llama-3-70b"))

    snapshot = await librechat.fetch()

    assert snapshot.llm.provider == "openrouter"
    assert snapshot.llm.model == "meta-llama/llama-3-70b"


async def test_fetch_reads_a_model_id_without_slash_as_a_model_only(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """A bare `gpt-4o` names the model and leaves the provider to the other sources."""
    serve_all(librechat_wire, settings_body(defaultModelId="gpt-4o"))

    snapshot = await librechat.fetch()

    assert snapshot.llm.provider is None
    assert snapshot.llm.model == "gpt-4o"


async def test_fetch_keeps_a_zero_temperature(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """`defaultTemperature: 0` is a value, not an absence."""
    serve_all(librechat_wire, settings_body(defaultTemperature=0))

    snapshot = await librechat.fetch()

    assert snapshot.llm == LlmValues(
        provider="openai", model="gpt-4o", temperature=0, max_tokens=4096
    )


async def test_fetch_sends_the_clients_authorization_header(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """Every read carries the `Authorization` header the client was built with."""
    routes = serve_all(librechat_wire)

    await librechat.fetch()

    for route in routes:
        assert route.call_count == 1
        assert route.calls.last.request.headers["Authorization"] == "Bearer k"


async def test_fetch_recovers_from_one_transient_server_error(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """A 500 followed by a 200 on the conversations costs one retry and yields the data."""
    serve_all(librechat_wire)
    route = librechat_wire.get("/api/conversations")
    route.side_effect = [httpx.Response(500), httpx.Response(200, json=conversations_body())]

    snapshot = await librechat.fetch()

    assert route.call_count == 2
    assert snapshot.conversations is not None
    assert len(snapshot.conversations) == 2


# --- fetch: failures ----------------------------------------------------------------------


async def test_fetch_retries_a_server_error_then_raises_its_status(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """Conversations that keep answering 500 are asked three times, then fail `fetch()`."""
    serve_all(librechat_wire)
    route = librechat_wire.get("/api/conversations").respond(
        500, json={"message": f"mongo down {CANARY}"}
    )

    with pytest.raises(UpstreamStatusError) as caught:
        await librechat.fetch()

    assert route.call_count == 3
    assert caught.value.status == 500
    assert str(caught.value) == "librechat: GET /api/conversations answered HTTP 500"
    assert CANARY not in str(caught.value)


async def test_fetch_does_not_retry_not_found(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """A 404 on the user is asked once and fails `fetch()` with status 404."""
    serve_all(librechat_wire)
    route = librechat_wire.get("/api/user/me").respond(404, json={"message": CANARY})

    with pytest.raises(UpstreamStatusError) as caught:
        await librechat.fetch()

    assert route.call_count == 1
    assert caught.value.status == 404
    assert str(caught.value) == "librechat: GET /api/user/me answered HTTP 404"


async def test_fetch_retries_a_timeout_then_raises_unavailable(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """A settings read that times out every time fails `fetch()` as `UpstreamUnavailable`."""
    serve_all(librechat_wire)
    route = librechat_wire.get("/api/user/settings").mock(side_effect=httpx.ReadTimeout)

    with pytest.raises(UpstreamUnavailable) as caught:
        await librechat.fetch()

    assert route.call_count == 3
    assert str(caught.value) == "librechat: GET /api/user/settings timed out"


async def test_fetch_connection_error_raises_unavailable(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """A refused connection fails `fetch()` as `UpstreamUnavailable` naming the read."""
    serve_all(librechat_wire)
    librechat_wire.get("/api/user/me").mock(side_effect=httpx.ConnectError)

    with pytest.raises(UpstreamUnavailable) as caught:
        await librechat.fetch()

    assert caught.value.source == "librechat"
    assert str(caught.value) == "librechat: GET /api/user/me failed: ConnectError"


async def test_fetch_html_page_is_invalid_not_data(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """The single-page app's 200 HTML shell is `UpstreamResponseInvalid`, not data."""
    serve_all(librechat_wire)
    librechat_wire.get("/api/conversations").respond(
        200,
        text=f"<!DOCTYPE html><html><head><title>{CANARY}</title></head></html>",
        headers={"Content-Type": "text/html; charset=utf-8"},
    )

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await librechat.fetch()

    assert str(caught.value) == "librechat: GET /api/conversations answered text/html, not JSON"
    assert CANARY not in str(caught.value)


async def test_fetch_malformed_json_is_invalid(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """A truncated JSON user body is `UpstreamResponseInvalid`, its text not shown."""
    serve_all(librechat_wire)
    librechat_wire.get("/api/user/me").respond(
        200,
        content=f'{{"username": "ada", "refreshToken": "{CANARY}'.encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await librechat.fetch()

    assert str(caught.value) == "librechat: GET /api/user/me answered malformed JSON"
    assert CANARY not in str(caught.value)


async def test_fetch_settings_as_a_json_string_is_invalid(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """Settings answered as a JSON string instead of an object are the wrong shape."""
    serve_all(librechat_wire)
    librechat_wire.get("/api/user/settings").respond(200, json=CANARY)

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await librechat.fetch()

    assert str(caught.value) == (
        "librechat: GET /api/user/settings answered an unexpected shape (body: model_type)"
    )
    assert CANARY not in str(caught.value)


async def test_fetch_conversation_without_any_id_is_invalid(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """A conversation with neither `conversationId` nor `id` makes the list the wrong shape."""
    serve_all(librechat_wire)
    librechat_wire.get("/api/conversations").respond(
        200, json=[{"title": CANARY, "messageCount": 2}, *conversations_body()]
    )

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await librechat.fetch()

    assert str(caught.value) == (
        "librechat: GET /api/conversations answered an unexpected shape (0: value_error)"
    )
    assert CANARY not in str(caught.value)


# --- writes -------------------------------------------------------------------------------


async def test_write_llm_sends_the_contract_body(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """The LLM fields go as `defaultModelId: provider/model`, temperature and max tokens."""
    librechat_wire.get("/api/user/settings").respond(200, json=settings_body())
    update = librechat_wire.post("/api/user/settings").respond(200, json=settings_body())

    await librechat.write_settings(
        "llm",
        {
            "provider": "anthropic",
            "model": "claude-3-5-sonnet-latest",
            "temperature": 0.3,
            "max_tokens": 2048,
        },
    )

    assert update.call_count == 1
    request = update.calls.last.request
    assert request.headers["Authorization"] == "Bearer k"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "defaultModelId": "anthropic/claude-3-5-sonnet-latest",
        "defaultTemperature": 0.3,
        "defaultMaxTokens": 2048,
    }
    assert b'"defaultMaxTokens":2048' in request.content


async def test_write_llm_returns_the_previous_values_of_exactly_the_written_fields(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """The previous values come from a settings read made before the POST."""
    librechat_wire.get("/api/user/settings").respond(200, json=settings_body())
    librechat_wire.post("/api/user/settings").respond(200, json=settings_body())

    previous = await librechat.write_settings("llm", {"provider": "anthropic", "temperature": 0})

    assert previous == {"provider": "openai", "temperature": 0.7}
    assert [(c.request.method, c.request.url.path) for c in librechat_wire.calls] == [
        ("GET", "/api/user/settings"),
        ("POST", "/api/user/settings"),
    ]


async def test_write_of_provider_only_keeps_the_current_model(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """A provider-only write joins the new provider with the current model."""
    librechat_wire.get("/api/user/settings").respond(200, json=settings_body())
    update = librechat_wire.post("/api/user/settings").respond(200, json=settings_body())

    await librechat.write_settings("llm", {"provider": "azure"})

    assert json.loads(update.calls.last.request.content) == {"defaultModelId": "azure/gpt-4o"}


async def test_write_of_model_only_keeps_the_current_provider(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """A model-only write joins the current provider with the new model, slashes and all."""
    current = settings_body(defaultModelId="openrouter/meta-llama/llama-3-70b")
    librechat_wire.get("/api/user/settings").respond(200, json=current)
    update = librechat_wire.post("/api/user/settings").respond(200, json=current)

    previous = await librechat.write_settings("llm", {"model": "mistralai/mixtral-8x7b"})

    assert json.loads(update.calls.last.request.content) == {
        "defaultModelId": "openrouter/mistralai/mixtral-8x7b"
    }
    assert previous == {"model": "meta-llama/llama-3-70b"}


async def test_write_of_zero_temperature_sends_zero(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """A temperature of 0 is written as the number 0, alone."""
    librechat_wire.get("/api/user/settings").respond(200, json=settings_body())
    update = librechat_wire.post("/api/user/settings").respond(200, json=settings_body())

    await librechat.write_settings("llm", {"temperature": 0})

    assert update.calls.last.request.content == b'{"defaultTemperature":0}'


async def test_write_ui_sends_theme_and_font_size(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """UI settings go as `theme` and `fontSize`, and the previous ones come back."""
    librechat_wire.get("/api/user/settings").respond(200, json=settings_body())
    update = librechat_wire.post("/api/user/settings").respond(200, json=settings_body())

    previous = await librechat.write_settings("ui", {"theme": "light", "font_size": "large"})

    assert json.loads(update.calls.last.request.content) == {
        "theme": "light",
        "fontSize": "large",
    }
    assert previous == {"theme": "dark", "font_size": "medium"}


async def test_write_is_never_retried(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """A 500 on the settings POST is raised after exactly one call."""
    librechat_wire.get("/api/user/settings").respond(200, json=settings_body())
    update = librechat_wire.post("/api/user/settings").respond(500, json={"message": CANARY})

    with pytest.raises(UpstreamStatusError) as caught:
        await librechat.write_settings("ui", {"theme": "light"})

    assert update.call_count == 1
    assert caught.value.status == 500
    assert str(caught.value) == "librechat: POST /api/user/settings answered HTTP 500"
    assert CANARY not in str(caught.value)


async def test_write_answered_success_false_is_rejected(
    librechat: LibreChatBizzy, librechat_wire: respx.MockRouter
) -> None:
    """`{"success": false}` means the write did not land: `UpstreamRejectedWrite`."""
    librechat_wire.get("/api/user/settings").respond(200, json=settings_body())
    update = librechat_wire.post("/api/user/settings").respond(
        200, json={"success": False, "message": CANARY}
    )

    with pytest.raises(UpstreamRejectedWrite) as caught:
        await librechat.write_settings("ui", {"theme": "light"})

    assert update.call_count == 1
    assert caught.value.source == "librechat"
    assert "POST /api/user/settings" in str(caught.value)
    assert CANARY not in str(caught.value)


async def test_writing_back_previous_llm_values_restores_the_upstream(
    retry_policy: RetryPolicy,
) -> None:
    """Writing the returned previous LLM values undoes the write, model id included."""
    original = settings_body(defaultModelId="openrouter/meta-llama/llama-3-70b")
    fake = FakeLibreChat(copy.deepcopy(original))

    previous = await round_trip(
        retry_policy,
        fake,
        "llm",
        {"provider": "anthropic", "model": "claude-3-5-sonnet-latest", "temperature": 0},
    )

    assert previous == {
        "provider": "openrouter",
        "model": "meta-llama/llama-3-70b",
        "temperature": 0.7,
    }
    assert fake.posted[0] == {
        "defaultModelId": "anthropic/claude-3-5-sonnet-latest",
        "defaultTemperature": 0,
    }
    assert fake.settings == original


async def test_writing_back_previous_ui_values_restores_the_upstream(
    retry_policy: RetryPolicy,
) -> None:
    """Writing the returned previous UI values undoes the write."""
    original = settings_body()
    fake = FakeLibreChat(copy.deepcopy(original))

    previous = await round_trip(retry_policy, fake, "ui", {"theme": "light", "font_size": "large"})

    assert previous == {"theme": "dark", "font_size": "medium"}
    assert fake.posted == [
        {"theme": "light", "fontSize": "large"},
        {"theme": "dark", "fontSize": "medium"},
    ]
    assert fake.settings == original
