"""The bizzy AnythingLLM adapter on the wire: `GET /api/me`, `GET /api/system/settings`,
`GET /api/workspaces` into an `UpstreamSnapshot`, and LLM writes to
`POST /api/system/update` (contract §7)."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
import respx

from shared_state.adapters.anythingllm_bizzy import AnythingLLMBizzy
from shared_state.adapters.http import JsonApi, RetryPolicy
from shared_state.domain.models import EmbeddingValues, LlmValues, UiValues, VectorDbValues
from shared_state.errors import (
    UpstreamRejectedWrite,
    UpstreamResponseInvalid,
    UpstreamStatusError,
    UpstreamUnavailable,
)

BASE_URL = "http://anythingllm.test"
CANARY = "CANARY-allm-51c2"
SECRETS = (f"{CANARY}-pw", f"sk-{CANARY}-openai", f"{CANARY}-auth", f"{CANARY}-vdb")


def user_body() -> dict[str, Any]:
    return {
        "id": 1,
        "username": "ada",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "role": "admin",
        "password": SECRETS[0],
        "createdAt": "2026-08-01T12:00:00.000Z",
    }


def settings_body() -> dict[str, Any]:
    return {
        "LLMProvider": "openai",
        "OpenAiModelPref": "gpt-4o",
        "Temperature": 0.7,
        "MaxTokens": 4096,
        "EmbeddingEngine": "openai",
        "EmbeddingModel": "text-embedding-3-small",
        "VectorDB": "pinecone",
        "VectorDBSettings": {"environment": "us-east-1", "index": "bizzy", "apiKey": SECRETS[3]},
        "OpenAiKey": SECRETS[1],
        "AuthToken": SECRETS[2],
        "MultiUserMode": False,
    }


def workspaces_body() -> list[dict[str, Any]]:
    return [
        {"id": 1, "name": "General", "slug": "general", "openAiTemp": 0.7, "documents": 12},
        {"id": 2, "name": "Engineering Docs", "slug": "engineering-docs", "documents": 48},
        {"name": "Research Notes", "slug": "research-notes", "documents": 7},
    ]


def serve_all(wire: respx.MockRouter) -> dict[str, respx.Route]:
    """Answer the three reads with the realistic bodies above."""
    return {
        "me": wire.get("/api/me").respond(200, json=user_body()),
        "settings": wire.get("/api/system/settings").respond(200, json=settings_body()),
        "workspaces": wire.get("/api/workspaces").respond(200, json=workspaces_body()),
    }


class FakeAnythingLLM:
    """A stateful AnythingLLM settings store behind `httpx.MockTransport`."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.posted: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/api/system/settings":
            return httpx.Response(200, json=self.settings)
        if request.method == "POST" and request.url.path == "/api/system/update":
            body = json.loads(request.content)
            self.posted.append(body)
            self.settings.update(body)
            return httpx.Response(200, json={"success": True})
        return httpx.Response(404, json={"error": "not found"})


# --- fetch: the happy path ----------------------------------------------------------------


async def test_fetch_reads_user_settings_and_workspaces_into_a_snapshot(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """The three reads become the user, LLM, embedding, vector DB and workspaces."""
    serve_all(anythingllm_wire)

    snapshot = await anythingllm.fetch()

    assert snapshot.user == {
        "id": 1,
        "username": "ada",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "role": "admin",
        "createdAt": "2026-08-01T12:00:00.000Z",
    }
    assert snapshot.llm == LlmValues(
        provider="openai", model="gpt-4o", temperature=0.7, max_tokens=4096
    )
    assert snapshot.embedding == EmbeddingValues(provider="openai", model="text-embedding-3-small")
    assert snapshot.vector_db == VectorDbValues(
        provider="pinecone", settings={"environment": "us-east-1", "index": "bizzy"}
    )
    assert snapshot.ui == UiValues()
    assert snapshot.conversations is None


async def test_fetch_leaves_no_secret_in_the_snapshot(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """The password, `OpenAiKey`, `AuthToken` and the vector DB's key never reach the JSON."""
    serve_all(anythingllm_wire)

    dumped = (await anythingllm.fetch()).model_dump_json()

    for secret in SECRETS:
        assert secret not in dumped
    assert CANARY not in dumped
    assert "OpenAiKey" not in dumped
    assert "AuthToken" not in dumped


async def test_fetch_keeps_workspace_ids_and_adds_one_from_the_slug(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """A workspace keeps its fields and `id`; one without an `id` gets its slug as `id`."""
    serve_all(anythingllm_wire)

    snapshot = await anythingllm.fetch()

    assert snapshot.workspaces is not None
    assert [ws["id"] for ws in snapshot.workspaces] == [1, 2, "research-notes"]
    assert snapshot.workspaces[0] == {
        "id": 1,
        "name": "General",
        "slug": "general",
        "openAiTemp": 0.7,
        "documents": 12,
    }
    assert snapshot.workspaces[2]["slug"] == "research-notes"
    assert snapshot.workspaces[2]["documents"] == 7


async def test_fetch_keeps_a_zero_temperature(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """`Temperature: 0` is a value, not an absence."""
    serve_all(anythingllm_wire)
    anythingllm_wire.get("/api/system/settings").respond(
        200, json={**settings_body(), "Temperature": 0}
    )

    snapshot = await anythingllm.fetch()

    assert snapshot.llm == LlmValues(
        provider="openai", model="gpt-4o", temperature=0, max_tokens=4096
    )


async def test_fetch_sends_the_clients_authorization_header(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """Every read carries the `Authorization` header the client was built with."""
    routes = serve_all(anythingllm_wire)

    await anythingllm.fetch()

    for route in routes.values():
        assert route.call_count == 1
        assert route.calls.last.request.headers["Authorization"] == "Bearer k"


async def test_fetch_recovers_from_one_transient_server_error(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """A 500 followed by a 200 on the settings costs one retry and yields the data."""
    serve_all(anythingllm_wire)
    route = anythingllm_wire.get("/api/system/settings")
    route.side_effect = [httpx.Response(500), httpx.Response(200, json=settings_body())]

    snapshot = await anythingllm.fetch()

    assert route.call_count == 2
    assert snapshot.llm.model == "gpt-4o"


# --- fetch: failures ----------------------------------------------------------------------


async def test_fetch_retries_a_server_error_then_raises_its_status(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """A settings read that keeps answering 500 is tried three times, then fails `fetch()`."""
    serve_all(anythingllm_wire)
    route = anythingllm_wire.get("/api/system/settings").respond(
        500, json={"error": f"db down {CANARY}"}
    )

    with pytest.raises(UpstreamStatusError) as caught:
        await anythingllm.fetch()

    assert route.call_count == 3
    assert caught.value.status == 500
    assert str(caught.value) == "anythingllm: GET /api/system/settings answered HTTP 500"
    assert CANARY not in str(caught.value)


async def test_fetch_does_not_retry_not_found(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """A 404 on the workspaces is asked once and fails `fetch()` with status 404."""
    serve_all(anythingllm_wire)
    route = anythingllm_wire.get("/api/workspaces").respond(404, json={"error": CANARY})

    with pytest.raises(UpstreamStatusError) as caught:
        await anythingllm.fetch()

    assert route.call_count == 1
    assert caught.value.status == 404
    assert str(caught.value) == "anythingllm: GET /api/workspaces answered HTTP 404"


async def test_fetch_retries_a_timeout_then_raises_unavailable(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """A user read that times out on every attempt fails `fetch()` as `UpstreamUnavailable`."""
    serve_all(anythingllm_wire)
    route = anythingllm_wire.get("/api/me").mock(side_effect=httpx.ReadTimeout)

    with pytest.raises(UpstreamUnavailable) as caught:
        await anythingllm.fetch()

    assert route.call_count == 3
    assert str(caught.value) == "anythingllm: GET /api/me timed out"


async def test_fetch_connection_error_raises_unavailable(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """A refused connection fails `fetch()` as `UpstreamUnavailable` naming the read."""
    serve_all(anythingllm_wire)
    anythingllm_wire.get("/api/workspaces").mock(side_effect=httpx.ConnectError)

    with pytest.raises(UpstreamUnavailable) as caught:
        await anythingllm.fetch()

    assert caught.value.source == "anythingllm"
    assert str(caught.value) == "anythingllm: GET /api/workspaces failed: ConnectError"


async def test_fetch_html_page_is_invalid_not_data(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """AnythingLLM's 200 HTML page for an unknown path is `UpstreamResponseInvalid`."""
    serve_all(anythingllm_wire)
    anythingllm_wire.get("/api/me").respond(
        200,
        text=f'<!doctype html><html><body><div id="root">{CANARY}</div></body></html>',
        headers={"Content-Type": "text/html; charset=utf-8"},
    )

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await anythingllm.fetch()

    assert str(caught.value) == "anythingllm: GET /api/me answered text/html, not JSON"
    assert CANARY not in str(caught.value)


async def test_fetch_malformed_json_is_invalid(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """A truncated JSON settings body is `UpstreamResponseInvalid`, its text not shown."""
    serve_all(anythingllm_wire)
    anythingllm_wire.get("/api/system/settings").respond(
        200,
        content=f'{{"LLMProvider": "openai", "OpenAiKey": "{CANARY}'.encode(),
        headers={"Content-Type": "application/json"},
    )

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await anythingllm.fetch()

    assert str(caught.value) == "anythingllm: GET /api/system/settings answered malformed JSON"
    assert CANARY not in str(caught.value)


async def test_fetch_settings_as_a_json_string_is_invalid(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """Settings answered as a JSON string instead of an object are the wrong shape."""
    serve_all(anythingllm_wire)
    anythingllm_wire.get("/api/system/settings").respond(200, json=CANARY)

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await anythingllm.fetch()

    assert str(caught.value) == (
        "anythingllm: GET /api/system/settings answered an unexpected shape (body: model_type)"
    )
    assert CANARY not in str(caught.value)


async def test_fetch_workspace_without_id_or_slug_is_invalid(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """A workspace with neither `id` nor `slug` makes the list the wrong shape."""
    serve_all(anythingllm_wire)
    anythingllm_wire.get("/api/workspaces").respond(
        200, json=[*workspaces_body(), {"name": CANARY, "documents": 1}]
    )

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await anythingllm.fetch()

    assert str(caught.value) == (
        "anythingllm: GET /api/workspaces answered an unexpected shape (3: value_error)"
    )
    assert CANARY not in str(caught.value)


async def test_fetch_workspaces_as_an_object_is_invalid(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """Workspaces wrapped in an object instead of answered as an array are the wrong shape."""
    serve_all(anythingllm_wire)
    anythingllm_wire.get("/api/workspaces").respond(200, json={"workspaces": workspaces_body()})

    with pytest.raises(UpstreamResponseInvalid) as caught:
        await anythingllm.fetch()

    assert str(caught.value) == (
        "anythingllm: GET /api/workspaces answered an unexpected shape (body: list_type)"
    )


# --- writes -------------------------------------------------------------------------------


async def test_write_llm_sends_the_contract_body_with_numbers_as_numbers(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """All four LLM fields go to `POST /api/system/update` under the design's names."""
    anythingllm_wire.get("/api/system/settings").respond(200, json=settings_body())
    update = anythingllm_wire.post("/api/system/update").respond(200, json={"success": True})

    await anythingllm.write_settings(
        "llm",
        {
            "provider": "anthropic",
            "model": "claude-3-5-sonnet-latest",
            "temperature": 0.2,
            "max_tokens": 8192,
        },
    )

    assert update.call_count == 1
    request = update.calls.last.request
    assert request.headers["Authorization"] == "Bearer k"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "LLMProvider": "anthropic",
        "OpenAiModelPref": "claude-3-5-sonnet-latest",
        "Temperature": 0.2,
        "MaxTokens": 8192,
    }
    assert b'"Temperature":0.2' in request.content
    assert b'"MaxTokens":8192' in request.content


async def test_write_returns_the_previous_values_of_exactly_the_written_fields(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """The previous values come from a settings read made before the POST."""
    anythingllm_wire.get("/api/system/settings").respond(200, json=settings_body())
    anythingllm_wire.post("/api/system/update").respond(200, json={"success": True})

    previous = await anythingllm.write_settings("llm", {"model": "gpt-4o-mini", "max_tokens": 2048})

    assert previous == {"model": "gpt-4o", "max_tokens": 4096}
    assert [call.request.url.path for call in anythingllm_wire.calls] == [
        "/api/system/settings",
        "/api/system/update",
    ]


async def test_write_of_a_subset_sends_only_those_fields(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """A temperature-only write sends only `Temperature`, and 0 is sent as the number 0."""
    anythingllm_wire.get("/api/system/settings").respond(200, json=settings_body())
    update = anythingllm_wire.post("/api/system/update").respond(200, json={"success": True})

    previous = await anythingllm.write_settings("llm", {"temperature": 0})

    assert update.calls.last.request.content == b'{"Temperature":0}'
    assert previous == {"temperature": 0.7}


async def test_write_is_never_retried(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """A 500 on the update is raised after exactly one POST."""
    anythingllm_wire.get("/api/system/settings").respond(200, json=settings_body())
    update = anythingllm_wire.post("/api/system/update").respond(500, json={"error": CANARY})

    with pytest.raises(UpstreamStatusError) as caught:
        await anythingllm.write_settings("llm", {"model": "gpt-4o-mini"})

    assert update.call_count == 1
    assert caught.value.status == 500
    assert str(caught.value) == "anythingllm: POST /api/system/update answered HTTP 500"
    assert CANARY not in str(caught.value)


async def test_write_answered_success_false_is_rejected(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """`{"success": false}` means the write did not land: `UpstreamRejectedWrite`."""
    anythingllm_wire.get("/api/system/settings").respond(200, json=settings_body())
    update = anythingllm_wire.post("/api/system/update").respond(
        200, json={"success": False, "error": CANARY}
    )

    with pytest.raises(UpstreamRejectedWrite) as caught:
        await anythingllm.write_settings("llm", {"model": "gpt-4o-mini"})

    assert update.call_count == 1
    assert caught.value.source == "anythingllm"
    assert "POST /api/system/update" in str(caught.value)
    assert CANARY not in str(caught.value)


async def test_write_that_cannot_read_the_settings_posts_nothing(
    anythingllm: AnythingLLMBizzy, anythingllm_wire: respx.MockRouter
) -> None:
    """Without the previous values there is no undo, so a failed settings read stops the write."""
    anythingllm_wire.get("/api/system/settings").respond(404)
    update = anythingllm_wire.post("/api/system/update").respond(200, json={"success": True})

    with pytest.raises(UpstreamStatusError) as caught:
        await anythingllm.write_settings("llm", {"model": "gpt-4o-mini"})

    assert caught.value.status == 404
    assert update.call_count == 0


async def test_writing_back_the_previous_values_restores_the_upstream(
    retry_policy: RetryPolicy,
) -> None:
    """Writing the returned previous values undoes the write, secrets and other keys intact."""
    original = settings_body()
    fake = FakeAnythingLLM(copy.deepcopy(original))
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(fake.handle), base_url=BASE_URL
    ) as client:
        adapter = AnythingLLMBizzy(JsonApi(client, source="anythingllm", retry=retry_policy))

        previous = await adapter.write_settings(
            "llm",
            {
                "provider": "anthropic",
                "model": "claude-3-5-sonnet-latest",
                "temperature": 0,
                "max_tokens": 8192,
            },
        )
        assert fake.settings["LLMProvider"] == "anthropic"
        assert fake.settings["Temperature"] == 0

        await adapter.write_settings("llm", previous)

    assert previous == {
        "provider": "openai",
        "model": "gpt-4o",
        "temperature": 0.7,
        "max_tokens": 4096,
    }
    assert fake.settings == original
    assert fake.posted[1] == {
        "LLMProvider": "openai",
        "OpenAiModelPref": "gpt-4o",
        "Temperature": 0.7,
        "MaxTokens": 4096,
    }
