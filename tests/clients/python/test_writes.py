"""The client's writes: wire names, If-Match, Idempotency-Key, retries (MockTransport)."""

from __future__ import annotations

import json
from typing import Any, get_type_hints

import httpx
import pytest

from shared_state.api.schemas import LlmSettingsUpdate, SyncAnswer, UiSettingsUpdate
from shared_state.client import (
    AsyncSharedStateClient,
    LlmFields,
    SharedStateClient,
    SharedStateClientError,
    UiFields,
)
from shared_state.domain.models import LlmSettings, UiSettings
from tests.clients.python.wire import API, BASE, SETTINGS, SOURCES, Recorder, json_answer, state

LLM = {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.2, "maxTokens": 8192}
UI = {"theme": "dark", "fontSize": "large"}


def _body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def test_llm_keywords_go_out_under_the_wire_names() -> None:
    """`max_tokens` is sent as `maxTokens`; the answer is the new `settings.llm`."""
    service = Recorder(json_answer(LLM))
    with SharedStateClient(BASE, transport=service.transport) as client:
        written = client.update_llm_settings(model="gpt-4o-mini", max_tokens=8192)
    assert isinstance(written, LlmSettings)
    assert written.max_tokens == 8192
    assert (service.last.method, str(service.last.url)) == ("POST", f"{API}/llm-settings")
    assert _body(service.last) == {"model": "gpt-4o-mini", "maxTokens": 8192}


def test_ui_keywords_go_out_under_the_wire_names() -> None:
    service = Recorder(json_answer(UI))
    with SharedStateClient(BASE, transport=service.transport) as client:
        written = client.update_ui_settings(theme="dark", font_size="large")
    assert isinstance(written, UiSettings)
    assert written.font_size == "large"
    assert str(service.last.url) == f"{API}/ui-settings"
    assert _body(service.last) == {"theme": "dark", "fontSize": "large"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"maxTokens": 10}, "unexpected keyword argument 'maxTokens'"),
        ({"colour": "red"}, "unexpected keyword argument 'colour'"),
        ({}, "needs at least one of: provider, model, temperature, max_tokens"),
    ],
)
def test_unknown_or_no_keywords_are_a_type_error_before_any_request(
    fields: dict[str, Any], message: str
) -> None:
    service = Recorder()
    with (
        SharedStateClient(BASE, transport=service.transport) as client,
        pytest.raises(TypeError, match=message),
    ):
        client.update_llm_settings(**fields)
    assert service.requests == []


def test_the_keyword_types_list_exactly_the_apis_fields() -> None:
    """The typed keywords cannot drift from the service's write bodies."""
    assert set(get_type_hints(LlmFields)) == set(LlmSettingsUpdate.model_fields)
    assert set(get_type_hints(UiFields)) == set(UiSettingsUpdate.model_fields)


def test_values_are_left_to_the_service_to_judge() -> None:
    """An out-of-range value is sent; the service's 422 says what is wrong."""
    refused = {"detail": [{"type": "less_than_equal", "loc": ["body", "temperature"], "msg": "x"}]}
    service = Recorder(json_answer(refused, 422))
    with (
        SharedStateClient(BASE, transport=service.transport) as client,
        pytest.raises(SharedStateClientError) as caught,
    ):
        client.update_llm_settings(temperature=3)
    assert _body(service.last) == {"temperature": 3}
    assert caught.value.status == 422


def test_if_match_sends_the_given_etag() -> None:
    service = Recorder(json_answer(UI))
    with SharedStateClient(BASE, transport=service.transport) as client:
        client.update_ui_settings(theme="dark", if_match='W/"abc-settings-3"')
    assert service.last.headers["if-match"] == 'W/"abc-settings-3"'


def test_without_if_match_none_is_sent() -> None:
    service = Recorder(json_answer(UI))
    with SharedStateClient(BASE, transport=service.transport) as client:
        client.update_ui_settings(theme="dark")
    assert "if-match" not in service.last.headers


@pytest.mark.parametrize(("read", "body"), [("get_settings", SETTINGS), ("get_state", state())])
def test_if_match_true_sends_the_etag_of_the_last_settings_or_state_read(
    read: str, body: Any
) -> None:
    service = Recorder(
        json_answer(state()["workspaces"], etag='W/"workspaces-tag"'),
        json_answer(body, etag='W/"read-tag"'),
        json_answer(state()["workspaces"], etag='W/"workspaces-tag-2"'),
        json_answer(LLM),
    )
    with SharedStateClient(BASE, transport=service.transport) as client:
        client.get_workspaces()
        getattr(client, read)()
        client.get_workspaces()  # not a tag If-Match accepts
        client.update_llm_settings(model="gpt-4o-mini", if_match=True)
    assert service.last.headers["if-match"] == 'W/"read-tag"'


def test_if_match_true_after_a_304_sends_that_etag() -> None:
    service = Recorder(
        json_answer(SETTINGS, etag='W/"s-1"'),
        json_answer(None, 304, etag='W/"s-1"'),
        json_answer(LLM),
    )
    with SharedStateClient(BASE, transport=service.transport) as client:
        client.get_settings()
        client.get_settings()
        client.update_llm_settings(model="m", if_match=True)
    assert service.last.headers["if-match"] == 'W/"s-1"'


def test_if_match_true_without_a_read_is_an_error_before_any_request() -> None:
    service = Recorder()
    with (
        SharedStateClient(BASE, transport=service.transport) as client,
        pytest.raises(ValueError, match="get_settings"),
    ):
        client.update_llm_settings(model="m", if_match=True)
    assert service.requests == []


def test_each_call_has_its_own_idempotency_key() -> None:
    service = Recorder(json_answer(LLM), json_answer(LLM), json_answer(UI))
    with SharedStateClient(BASE, transport=service.transport) as client:
        client.update_llm_settings(model="m")
        client.update_llm_settings(model="m")
        client.update_ui_settings(theme="dark")
    keys = [request.headers["idempotency-key"] for request in service.requests]
    assert len(set(keys)) == 3
    assert all(1 <= len(key) <= 255 and key.isascii() and key.isprintable() for key in keys)


def test_a_retry_after_a_dropped_connection_sends_the_same_key_and_body() -> None:
    """The service carries out a write once per key, so the retry is safe."""
    service = Recorder(
        httpx.ReadError("connection reset"),
        httpx.ConnectError("refused"),
        json_answer(LLM),
    )
    with SharedStateClient(BASE, transport=service.transport, retries=2) as client:
        written = client.update_llm_settings(model="gpt-4o-mini", if_match='W/"t"')
    assert written.model == "gpt-4o-mini"
    assert len(service.requests) == 3
    assert len({r.headers["idempotency-key"] for r in service.requests}) == 1
    assert {r.content for r in service.requests} == {b'{"model":"gpt-4o-mini"}'}
    assert {r.headers["if-match"] for r in service.requests} == {'W/"t"'}


def test_retries_end_with_a_network_error() -> None:
    service = Recorder(*[httpx.ConnectError("refused")] * 2)
    with (
        SharedStateClient(BASE, transport=service.transport, retries=1) as client,
        pytest.raises(SharedStateClientError) as caught,
    ):
        client.update_ui_settings(theme="dark")
    assert caught.value.code == "network_error"
    assert len(service.requests) == 2


def test_an_error_answer_is_never_retried() -> None:
    failed = {"detail": "The write failed.", "code": "upstream_write_failed", "results": {}}
    service = Recorder(json_answer(failed, 502))
    with (
        SharedStateClient(BASE, transport=service.transport) as client,
        pytest.raises(SharedStateClientError),
    ):
        client.update_llm_settings(model="m")
    assert len(service.requests) == 1


def test_sync_posts_and_returns_the_sync_answer() -> None:
    answer = {"version": 8, "changed": ["settings"], "sources": SOURCES, "durationMs": 8.5}
    service = Recorder(json_answer(answer))
    with SharedStateClient(BASE, transport=service.transport) as client:
        report = client.sync()
    assert isinstance(report, SyncAnswer)
    assert (report.version, report.changed, report.duration_ms) == (8, ["settings"], 8.5)
    assert (service.last.method, str(service.last.url)) == ("POST", f"{API}/sync")


async def test_the_async_client_writes_alike() -> None:
    service = Recorder(
        json_answer(SETTINGS, etag='W/"s-1"'),
        httpx.ReadError("reset"),
        json_answer(LLM),
        json_answer(UI),
        json_answer({"version": 8, "changed": [], "sources": SOURCES, "durationMs": 1.0}),
    )
    async with AsyncSharedStateClient(BASE, transport=service.transport) as client:
        await client.get_settings()
        llm = await client.update_llm_settings(max_tokens=8192, if_match=True)
        ui = await client.update_ui_settings(font_size="large")
        report = await client.sync()
    assert (llm.max_tokens, ui.font_size, report.version) == (8192, "large", 8)
    first, retry = service.requests[1], service.requests[2]
    assert first.headers["idempotency-key"] == retry.headers["idempotency-key"]
    assert retry.headers["if-match"] == 'W/"s-1"'
    assert _body(retry) == {"maxTokens": 8192}
    assert _body(service.requests[3]) == {"fontSize": "large"}
